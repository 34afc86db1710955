package report

import (
	"slices"
	"time"
)

// Span is a stretch of wall time during which a run measured: from Start,
// WallS seconds long.
type Span struct {
	Start time.Time `json:"start"`
	WallS float64   `json:"wall_s"`
}

func (s Span) end() time.Time {
	return s.Start.Add(time.Duration(s.WallS * float64(time.Second)))
}

// measuringSpans is the wall time r measured, as spans: those it records
// (a merged report's), or else its own, from its start for its WallS. A
// report without a start (written before Started was recorded) has none:
// its WallS cannot be placed on the clock, so unplaced returns it instead.
func measuringSpans(r *Report) (spans []Span, unplaced float64) {
	e := &r.Environment
	switch {
	case len(e.Spans) > 0:
		return e.Spans, e.unplacedWallS()
	case r.Started.IsZero():
		return nil, e.WallS
	case e.WallS > 0:
		return []Span{{Start: r.Started, WallS: e.WallS}}, 0
	}
	return nil, 0
}

// unplacedWallS is the part of a merged report's WallS that none of its
// spans holds: that of parts written without a start.
func (e *Environment) unplacedWallS() float64 {
	var placed float64
	for _, s := range e.Spans {
		placed += s.WallS
	}
	return max(0, e.WallS-placed)
}

// unionOfSpans joins spans that overlap or touch, in order of their start,
// and returns the disjoint spans and their summed length in seconds: the
// wall time during which at least one of them measured.
func unionOfSpans(spans []Span) ([]Span, float64) {
	if len(spans) == 0 {
		return nil, 0
	}
	sorted := slices.Clone(spans)
	slices.SortFunc(sorted, func(a, b Span) int { return a.Start.Compare(b.Start) })
	out := []Span{sorted[0]}
	for _, s := range sorted[1:] {
		last := &out[len(out)-1]
		if s.Start.After(last.end()) {
			out = append(out, s)
			continue
		}
		if end := s.end(); end.After(last.end()) {
			last.WallS = end.Sub(last.Start).Seconds()
		}
	}
	var total float64
	for _, s := range out {
		total += s.WallS
	}
	return out, total
}
