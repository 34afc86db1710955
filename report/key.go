package report

import (
	"fmt"

	"github.com/halfopen/halfopen/spec"
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
}

// KeyOf returns the key of a detector, fault, side and kind.
func KeyOf(detector, fault, side string, kind Kind) CellKey {
	return CellKey{Detector: spec.IdentityOf(detector), Fault: spec.IdentityOf(fault), Side: side, Kind: kind}
}

// Key returns the cell's key.
func (c *Cell) Key() CellKey {
	k := KeyOf(c.Detector, c.Fault, c.Side, c.Kind)
	if c.Scale != nil {
		k.Variant = c.Scale.Variant()
	}
	return k
}

// String returns "detector / fault / side / kind".
func (k CellKey) String() string {
	side := k.Side
	if side == "" {
		side = "-"
	}
	if k.Variant != "" {
		return fmt.Sprintf("%s / %s / %s / %s %s", k.Detector, k.Fault, side, k.Kind, k.Variant)
	}
	return fmt.Sprintf("%s / %s / %s / %s", k.Detector, k.Fault, side, k.Kind)
}
