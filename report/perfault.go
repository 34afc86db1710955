package report

import (
	"fmt"
	"strings"

	"github.com/halfopen/halfopen/tcprules"
)

// cellAnchor is the fragment id of a cell's details.
func cellAnchor(i int) string { return fmt.Sprintf("c%d", i) }

// faultGroup is the cells of one fault on one side, in the order they were
// measured: the unit of the per-fault details.
type faultGroup struct {
	Side  string
	Fault string
	Kind  Kind
	Phase string // "" for idle
	Cells []int
}

// faultGroups returns the report's cells grouped by side, kind and fault,
// in the order of the overview's matrices, then the cells no matrix shows
// (calibration), grouped alike in the order of the report: every cell is
// in exactly one group.
func faultGroups(r *Report, ms []matrix) []faultGroup {
	var out []faultGroup
	type key struct {
		side, fault string
		kind        Kind
		phase       string
	}
	index := map[key]int{}
	add := func(k key) {
		if _, ok := index[k]; !ok {
			index[k] = len(out)
			out = append(out, faultGroup{Side: k.side, Fault: k.fault, Kind: k.kind, Phase: k.phase})
		}
	}
	for _, m := range ms {
		for _, row := range m.Rows {
			add(key{m.Side, row.Fault, row.Kind, row.Phase})
		}
	}
	for i := range r.Cells {
		c := &r.Cells[i]
		k := key{c.Side, c.Fault, c.Kind, c.Phase}
		add(k)
		out[index[k]].Cells = append(out[index[k]].Cells, i)
	}
	return out
}

// heading says what a group is: its fault, its side and its kind.
func (g faultGroup) heading(lb *labeller) string {
	parts := []string{}
	if g.Fault != "" {
		parts = append(parts, faultTitle(lb, g.Fault, g.Phase))
	}
	if g.Side != "" {
		parts = append(parts, "watcher is the "+g.Side)
	}
	return strings.Join(append(parts, kindTitle(g.Kind)), " · ")
}

// groupAnchor is the fragment id of a fault group's section.
func groupAnchor(side, fault, phase string, kind Kind) string {
	if phase != "" {
		fault += "-" + phase
	}
	var b strings.Builder
	b.WriteString("f-" + side + "-" + string(kind[:min(len(kind), 3)]) + "-")
	for _, r := range strings.ToLower(fault) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// samplesText lists a cell's samples as people read them.
func samplesText(c *Cell) string {
	parts := make([]string, 0, len(c.Samples))
	for _, s := range c.Samples {
		switch {
		case s.Error != "":
			parts = append(parts, "error")
		case s.Detected && s.Seconds != nil:
			parts = append(parts, FormatSeconds(*s.Seconds))
		case c.Kind == KindDisturbance:
			if s.FalsePositives > 0 {
				parts = append(parts, fmt.Sprintf("✗%d", s.FalsePositives))
			} else {
				parts = append(parts, "ok")
			}
		default:
			parts = append(parts, "> "+FormatSeconds(c.BudgetS))
		}
	}
	return strings.Join(parts, ", ")
}

// predictedRange returns a cell's predicted range as text, "never" when
// theory predicts no detection.
func predictedRange(c *Cell) string {
	if c.PredictedS == nil {
		if c.Kind == KindDisturbance {
			return "survives"
		}
		return "never"
	}
	return FormatRange(c.PredictedS[0], c.PredictedS[1])
}

// faultTitle is a fault's label with its phase when that is not idle:
// "blackhole · in-flight".
func faultTitle(lb *labeller, fault, phase string) string {
	if phase == "" || phase == string(tcprules.PhaseIdle) {
		return lb.of(fault)
	}
	return lb.of(fault) + " · " + phase
}
