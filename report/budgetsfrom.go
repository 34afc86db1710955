package report

import (
	"fmt"
	"strings"

	"github.com/halfopen/halfopen/spec"
)

// NewBudgets makes a Budgets from entries that a caller built instead of
// reading a budgets file (a gate file names a watcher where a budgets file
// names a detector): each entry's detector and fault are checked and put in
// canonical form, its side and kind checked, and an empty name made from
// its pattern, as ParseBudgets does. An error is an *InputError naming file
// and the entry's Line.
func NewBudgets(file string, entries []Budget) (*Budgets, error) {
	b := &Budgets{File: file}
	for i, e := range entries {
		bad := func(format string, args ...any) error {
			return &InputError{File: file, Line: e.Line, Msg: fmt.Sprintf("budget %d "+format, append([]any{i + 1}, args...)...)}
		}
		e.Name = strings.TrimSpace(e.Name)
		var err error
		if strings.TrimSpace(e.Detector) == "" {
			return nil, bad("has no detector")
		}
		if e.Detector, err = spec.Canonical(e.Detector); err != nil {
			return nil, bad("has a bad detector: %v", err)
		}
		if strings.TrimSpace(e.Fault) == "" {
			return nil, bad("has no fault")
		}
		if e.Fault, err = spec.Canonical(e.Fault); err != nil {
			return nil, bad("has a bad fault: %v", err)
		}
		if e.Side != "" && !isOneOf(e.Side, knownSides) {
			return nil, bad("has side %q; the known sides are client and server", e.Side)
		}
		if e.Kind != "" && !isOneOf(e.Kind, knownKinds) {
			return nil, bad("has kind %q; the known kinds are detection, disturbance, calibration and scale", e.Kind)
		}
		if e.Name == "" {
			e.Name = e.defaultName()
		}
		b.Budgets = append(b.Budgets, e)
	}
	return b, nil
}
