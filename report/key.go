package report

import (
	"fmt"

	"github.com/halfopen/halfopen/spec"
	"github.com/halfopen/halfopen/tcprules"
)

// CellKey identifies a cell: the same key in two reports is the same
// measurement. Its specs are in their identity form (spec.Spec.Identity:
// keys sorted, durations in Go's form), so that "1s" and "1000ms" are one
// key; it is the only key by which reports, merges, comparisons, gates and
// suites find a cell.
type CellKey struct {
	Detector string `json:"detector"`
	Fault    string `json:"fault"`
	Side     string `json:"side"`
	Kind     Kind   `json:"kind"`
	// Variant tells apart cells of one detector, fault and side that
	// differ in something else: a scale cell's design and connection
	// count ("epoll/10000"). Empty for every other kind.
	Variant string `json:"variant,omitempty"`
	// Phase is the state a cell's faults were aimed at: "in-flight", or
	// empty for the idle sweep, so that reports made before phases existed
	// keep their keys.
	Phase string `json:"phase,omitempty"`
}

// KeyOf returns the key of a detector, fault, side and kind.
func KeyOf(detector, fault, side string, kind Kind) CellKey {
	return CellKey{Detector: spec.IdentityOf(detector), Fault: spec.IdentityOf(fault), Side: side, Kind: kind}
}

// InPhase returns the key of the same cell with its faults aimed at phase:
// the idle phase (or "") is the key without a phase.
func (k CellKey) InPhase(phase string) CellKey {
	if phase == string(tcprules.PhaseIdle) {
		phase = ""
	}
	k.Phase = phase
	return k
}

// Key returns the cell's key.
func (c *Cell) Key() CellKey {
	k := KeyOf(c.Detector, c.Fault, c.Side, c.Kind).InPhase(c.Phase)
	if c.Scale != nil {
		k.Variant = c.Scale.Variant()
	}
	return k
}

// CellInPhase is Report.Cell for a cell whose faults were aimed at phase
// ("" or "idle": the idle sweep, the same cell as Report.Cell's).
func (r *Report) CellInPhase(detector, fault, side string, kind Kind, phase string) *Cell {
	key := KeyOf(detector, fault, side, kind).InPhase(phase)
	if key.Phase == "" {
		return r.Cell(detector, fault, side, kind)
	}
	for i := range r.Cells {
		if r.Cells[i].Key() == key {
			return &r.Cells[i]
		}
	}
	r.Cells = append(r.Cells, Cell{Detector: detector, Fault: fault, Side: side, Kind: kind, Phase: key.Phase, Samples: []Sample{}})
	return &r.Cells[len(r.Cells)-1]
}

// String returns "detector / fault / side / kind".
func (k CellKey) String() string {
	side := k.Side
	if side == "" {
		side = "-"
	}
	if k.Phase != "" {
		side += " " + k.Phase
	}
	if k.Variant != "" {
		return fmt.Sprintf("%s / %s / %s / %s %s", k.Detector, k.Fault, side, k.Kind, k.Variant)
	}
	return fmt.Sprintf("%s / %s / %s / %s", k.Detector, k.Fault, side, k.Kind)
}
