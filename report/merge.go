package report

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Merge joins the shards of one run into one report. Cells with the same
// key (canonical detector and fault, side, kind) concatenate their samples
// and mistakes and sum their false positives and observed connection time;
// their overhead is averaged, weighted by its window; the other fields come
// from the first shard that has the cell. The environment is the first
// report's, with the sysctls of all, the wall time during which at least
// one part measured (the union of their spans: parts run at once), the
// largest pool, each calibration quantile that of all the parts' errors
// together (from their histograms; from parts without one, the largest of
// the parts', a bound from above: mergeQuantiles), and every
// different account of idle CPUs; Started is the earliest, Complete is
// true only if every shard is complete, and Shard is empty. The QoS of
// a merged cell is recomputed. Different schemas, a sysctl set to
// different values, or forecasts counted in different kernel ticks
// (Environment.ForecastTick) are an *InputError. The inputs are not
// modified.
func Merge(reports ...*Report) (*Report, error) {
	if len(reports) == 0 {
		return nil, &InputError{Msg: "merge needs at least one report"}
	}
	for i, r := range reports {
		if r.Schema != SchemaV1 {
			return nil, &InputError{Msg: fmt.Sprintf("report %d has schema %q, not %q, so it cannot be merged", i+1, r.Schema, SchemaV1)}
		}
	}
	out := cloneReport(reports[0])
	out.Shard = ""
	out.Cells = nil
	out.Frontier = nil
	if out.Environment.Sysctls == nil {
		out.Environment.Sysctls = map[string]string{}
	}
	from := map[string]int{}
	for k := range out.Environment.Sysctls {
		from[k] = 1
	}
	index := map[CellKey]int{}
	var spans []Span
	var unplacedS float64
	for i, r := range reports {
		s, u := measuringSpans(r)
		spans, unplacedS = append(spans, s...), unplacedS+u
		if i > 0 {
			if r.Started.Before(out.Started) {
				out.Started = r.Started
			}
			keys := make([]string, 0, len(r.Environment.Sysctls))
			for k := range r.Environment.Sysctls {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v := r.Environment.Sysctls[k]
				if old, ok := out.Environment.Sysctls[k]; ok && old != v {
					return nil, &InputError{Msg: fmt.Sprintf("reports %d and %d set sysctl %s to %q and %q, so they are not shards of one run", from[k], i+1, k, old, v)}
				}
				out.Environment.Sysctls[k] = v
				from[k] = i + 1
			}
		}
		if i > 0 {
			if a, b := out.Environment.ForecastTick(), r.Environment.ForecastTick(); a.HZ != b.HZ {
				return nil, &InputError{Msg: fmt.Sprintf("report %d forecast in a %d Hz kernel tick, the reports before it in %d Hz, so they are not shards of one run", i+1, b.HZ, a.HZ)}
			}
			mergeEnvironment(&out.Environment, &r.Environment)
		}
		out.Complete = out.Complete && r.Complete
		out.Frontier = append(out.Frontier, r.Frontier...)
		for ci := range r.Cells {
			c := cloneCell(&r.Cells[ci])
			k := c.Key()
			j, ok := index[k]
			if !ok {
				index[k] = len(out.Cells)
				out.Cells = append(out.Cells, c)
				continue
			}
			mergeCell(&out.Cells[j], &c)
		}
	}
	var measuredS float64
	out.Environment.Spans, measuredS = unionOfSpans(spans)
	out.Environment.WallS = measuredS + unplacedS
	return out, nil
}

// mergePrivilege gives dst every different privilege mode of the parts,
// joined by "; ", and every thing one of them went without.
func mergePrivilege(dst, src *Environment) {
	if src.Privilege == nil {
		return
	}
	if dst.Privilege == nil {
		dst.Privilege = &Privilege{}
	}
	p := dst.Privilege
	if !slices.Contains(strings.Split(p.Mode, "; "), src.Privilege.Mode) {
		if p.Mode != "" {
			p.Mode += "; "
		}
		p.Mode += src.Privilege.Mode
	}
	for _, d := range src.Privilege.Degraded {
		if !slices.Contains(p.Degraded, d) {
			p.Degraded = append(p.Degraded, d)
		}
	}
}

// mergeEnvironment adds src's pool, calibration, idle CPUs and
// privilege to dst's, and its tick where dst recorded none (see Merge).
func mergeEnvironment(dst, src *Environment) {
	mergePrivilege(dst, src)
	if dst.Tick == nil && src.Tick != nil {
		t := *src.Tick
		dst.Tick = &t
	}
	dst.Pool = max(dst.Pool, src.Pool)
	for k, n := range src.PoolTicks {
		if dst.PoolTicks == nil {
			dst.PoolTicks = map[string]int{}
		}
		dst.PoolTicks[k] += n
	}
	if src.CPUIdle != "" && !strings.Contains(dst.CPUIdle, src.CPUIdle) {
		if dst.CPUIdle != "" {
			dst.CPUIdle += "; "
		}
		dst.CPUIdle += src.CPUIdle
	}
	if src.CalibrationErrorMs != nil {
		if dst.CalibrationErrorMs == nil {
			q := *src.CalibrationErrorMs
			dst.CalibrationErrorMs = &q
		} else {
			q := mergeQuantiles(*dst.CalibrationErrorMs, *src.CalibrationErrorMs)
			dst.CalibrationErrorMs = &q
		}
	}
	mergeProbe(dst, src)
	for _, sp := range src.Calibration {
		found := false
		for i := range dst.Calibration {
			if dst.Calibration[i].Name == sp.Name {
				dst.Calibration[i].ErrorMs = mergeQuantiles(dst.Calibration[i].ErrorMs, sp.ErrorMs)
				found = true
			}
		}
		if !found {
			dst.Calibration = append(dst.Calibration, sp)
		}
	}
}

// mergeCell adds src's samples to dst, each on its own time line.
func mergeCell(dst, src *Cell) {
	legacy := mergeOverhead(dst.Overhead, src.Overhead)
	for i, s := range src.Samples {
		var mistakes []Mistake
		for _, m := range src.Mistakes {
			if m.Sample == i {
				mistakes = append(mistakes, m)
			}
		}
		dst.Add(s, mistakes)
	}
	if dst.Overhead == nil || !hasCounters(dst.Samples) {
		// Reports from before per-sample counters carry only their rates.
		dst.Overhead = legacy
	}
	if dst.Note == "" {
		dst.Note = src.Note
	} else if src.Note != "" && !strings.Contains(dst.Note, src.Note) {
		dst.Note += " " + src.Note
	}
	for _, reason := range src.Reasons {
		if !isOneOf(reason, dst.Reasons) {
			dst.Reasons = append(dst.Reasons, reason)
		}
	}
}

func hasCounters(samples []Sample) bool {
	for _, s := range samples {
		if s.Packets > 0 || s.WatcherCPUS > 0 {
			return true
		}
	}
	return false
}

// mergeOverhead averages two overheads weighted by their windows (equal
// weights when a window is unknown).
func mergeOverhead(a, b *Overhead) *Overhead {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	wa, wb := a.WindowS, b.WindowS
	if wa <= 0 || wb <= 0 {
		wa, wb = 1, 1
	}
	mix := func(x, y float64) float64 { return (x*wa + y*wb) / (wa + wb) }
	return &Overhead{
		PacketsPerConnMin: mix(a.PacketsPerConnMin, b.PacketsPerConnMin),
		BytesPerConnMin:   mix(a.BytesPerConnMin, b.BytesPerConnMin),
		WatcherCPUPercent: mix(a.WatcherCPUPercent, b.WatcherCPUPercent),
		WindowS:           a.WindowS + b.WindowS,
	}
}
