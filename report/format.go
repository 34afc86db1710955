package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// This file is the one place that turns numbers into text for people:
// every renderer (Markdown, HTML, SVG labels, compare) formats a duration
// with FormatSeconds or FormatRange and a count with formatCount, so a
// report never shows float noise such as 2.5549990800000002s.

// FormatSeconds formats a duration given in seconds as people read it:
// three significant digits in the largest unit below a minute ("108 ms",
// "2.55 s", "450 µs"), whole minutes and seconds below an hour
// ("11 min 15 s") and hours and minutes above ("2 h 11 min"). +Inf is
// "∞", NaN "–".
func FormatSeconds(s float64) string {
	switch {
	case math.IsNaN(s):
		return "–"
	case math.IsInf(s, 1):
		return "∞"
	case math.IsInf(s, -1):
		return "−∞"
	case s < 0:
		return "−" + FormatSeconds(-s)
	case s == 0:
		return "0 s"
	}
	// Each unit's branch checks the value after rounding, so 0.99996 s is
	// "1 s", not "1000 ms", and 59.99 s is "1 min".
	if v := sig3(s * 1e9); s < 1e-6 && v < 1000 {
		return trimFloat(v) + " ns"
	}
	if v := sig3(s * 1e6); s < 1e-3 && v < 1000 {
		return trimFloat(v) + " µs"
	}
	if v := sig3(s * 1e3); s < 1 && v < 1000 {
		return trimFloat(v) + " ms"
	}
	if v := sig3(s); v < 60 {
		return trimFloat(v) + " s"
	}
	if whole := math.Round(s); whole < 3600 {
		m, sec := int(whole)/60, int(whole)%60
		if sec == 0 {
			return fmt.Sprintf("%d min", m)
		}
		return fmt.Sprintf("%d min %d s", m, sec)
	}
	mins := int(math.Round(s / 60))
	h, m := mins/60, mins%60
	if m == 0 {
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d h %d min", h, m)
}

// FormatRange formats a range of seconds, sharing the unit when both ends
// have the same one ("3–4 s", "0–50 ms"), and one value when lo == hi.
func FormatRange(lo, hi float64) string {
	a, b := FormatSeconds(lo), FormatSeconds(hi)
	if a == b {
		return a
	}
	if lo == 0 {
		return "0–" + b
	}
	na, ua, okA := splitUnit(a)
	nb, ub, okB := splitUnit(b)
	if okA && okB && ua == ub {
		return na + "–" + nb + " " + ub
	}
	return a + " – " + b
}

// splitUnit splits "2.55 s" into "2.55" and "s"; it fails on compound
// texts such as "11 min 15 s".
func splitUnit(s string) (num, unit string, ok bool) {
	num, unit, ok = strings.Cut(s, " ")
	if !ok || strings.Contains(unit, " ") {
		return "", "", false
	}
	return num, unit, true
}

// sig3 rounds v > 0 to three significant digits.
func sig3(v float64) float64 {
	if v <= 0 {
		return v
	}
	e := math.Floor(math.Log10(v))
	scale := math.Pow(10, 2-e)
	return math.Round(v*scale) / scale
}

// trimFloat prints v without an exponent and without trailing zeros.
func trimFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', 6, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// formatCount formats a count-like quantity (packets, bytes, rates): whole
// from 100 on, three significant digits below.
func formatCount(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case v < 0:
		return "−" + formatCount(-v)
	}
	return trimFloat(sig3(v))
}

// formatMillis formats a quantity given in milliseconds as a duration.
func formatMillis(ms float64) string { return FormatSeconds(ms / 1000) }

// formatPercent formats a fraction of one as a percentage with at most
// three significant digits ("0.12 %").
func formatPercent(v float64) string { return formatCount(v) + " %" }
