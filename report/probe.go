package report

import "fmt"

// HarnessErrorLimitMs is the mark the harness's error is held under at
// p99, where the machine's unloaded baseline leaves room for it.
const HarnessErrorLimitMs = 1.0

// ProbeIncreaseLimitMs is the most the load may add to the probe's p99
// over the machine's unloaded baseline; the pool grows only while the
// increase is within half of it (harness/pool.go), so the absolute mark
// holds where the baseline leaves that half under it.
const ProbeIncreaseLimitMs = 0.3

// ProbeIncreaseMs is the load's increase of the probe's p99 over the
// machine's unloaded baseline, when both were measured.
func (e *Environment) ProbeIncreaseMs() (float64, bool) {
	if e.ProbeUnloadedMs == nil || e.ProbeLoadedMs == nil {
		return 0, false
	}
	return e.ProbeLoadedMs.P99 - e.ProbeUnloadedMs.P99, true
}

// ProbeNote is one sentence on what the harness's error was held to on
// this machine, or "" before the baseline is measured: the absolute mark,
// or, where the machine's own baseline leaves it no room, the increase.
func (e *Environment) ProbeNote() string {
	b := e.ProbeUnloadedMs
	if b == nil {
		return ""
	}
	if b.P99 > HarnessErrorLimitMs {
		return fmt.Sprintf("This machine's unloaded probe p99 (%s) is itself above %s, so the harness's error is held to an increase of at most %s over it, not to %s.",
			formatMillis(b.P99), formatMillis(HarnessErrorLimitMs), formatMillis(ProbeIncreaseLimitMs), formatMillis(HarnessErrorLimitMs))
	}
	if b.P99+ProbeIncreaseLimitMs/2 > HarnessErrorLimitMs {
		return fmt.Sprintf("This machine's unloaded probe p99 (%s) leaves less than %s under %s, so the harness's error is held to an increase of at most %s over it, not to %s.",
			formatMillis(b.P99), formatMillis(ProbeIncreaseLimitMs/2), formatMillis(HarnessErrorLimitMs), formatMillis(ProbeIncreaseLimitMs), formatMillis(HarnessErrorLimitMs))
	}
	return ""
}

// ProbeText is the unloaded baseline and the loaded probe side by side,
// each with its n, and the increase.
func (e *Environment) ProbeText() string {
	if e.ProbeUnloadedMs == nil {
		return "not measured"
	}
	s := "unloaded " + quantilesText(*e.ProbeUnloadedMs)
	if e.ProbeLoadedMs != nil {
		s += " · loaded " + quantilesText(*e.ProbeLoadedMs)
	}
	if inc, ok := e.ProbeIncreaseMs(); ok {
		s += fmt.Sprintf(" · p99 increase %s (limit %s)", formatMillis(inc), formatMillis(ProbeIncreaseLimitMs))
	}
	return s
}

func cloneQuantiles(q *Quantiles) *Quantiles {
	if q == nil {
		return nil
	}
	c := *q
	return &c
}

// mergeProbe merges src's probe baseline and loaded probe into dst's. The
// parts of one run share the baseline measured before any of them (or
// measured their own); of two, the lower p99 is kept, so that the increase
// over it is not understated. The loaded probe's quantiles are those of
// all the parts' datagrams together (mergeQuantiles).
func mergeProbe(dst, src *Environment) {
	if b := src.ProbeUnloadedMs; b != nil && (dst.ProbeUnloadedMs == nil || b.P99 < dst.ProbeUnloadedMs.P99) {
		dst.ProbeUnloadedMs = cloneQuantiles(b)
	}
	if l := src.ProbeLoadedMs; l != nil {
		if dst.ProbeLoadedMs == nil {
			dst.ProbeLoadedMs = cloneQuantiles(l)
		} else {
			q := mergeQuantiles(*dst.ProbeLoadedMs, *l)
			dst.ProbeLoadedMs = &q
		}
	}
}
