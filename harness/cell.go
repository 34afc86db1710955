package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/spec"
	"github.com/halfopen/halfopen/tcprules"
)

// MaxRandomIdle bounds the seeded random idle time before a fault.
const MaxRandomIdle = 1500 * time.Millisecond

// CellConfig is one cell of a matrix as the user asks for it: a detector
// against a fault on one side.
type CellConfig struct {
	Detector string
	Fault    string
	Side     protocol.Side
	Samples  int
	// Budget is how long a sample waits for a decision; zero derives it from
	// the prediction.
	Budget time.Duration
	// Idle fixes the idle time before the fault when FixedIdle is set;
	// otherwise each sample draws it from its seed in [0, MaxRandomIdle].
	Idle      time.Duration
	FixedIdle bool
	// Sysctls are set in every namespace of each of the cell's labs.
	Sysctls map[string]string
	// Port is the listening end's port in each lab (0: topo.ListenPort,
	// 7000): a service's {port}, HALFOPEN_ADDR's port.
	Port uint16
	// Phase aims the fault at a state of the connection: "" or
	// tcprules.PhaseIdle sweeps the idle range, tcprules.PhaseInFlight
	// lands it while a request is unacknowledged.
	Phase tcprules.Phase
}

// Cell is a resolved cell: its parsed specs, what theory expects of it and
// its budget. Its samples live in the run's report, once; Record reads them.
type Cell struct {
	Config     CellConfig
	Detector   Detector
	DetSpec    spec.Spec
	Fault      Fault
	FaultSpec  spec.Spec
	Effect     Effect
	Kind       report.Kind
	Prediction Prediction
	// Expect is what theory says of this cell.
	Expect report.Expectation
	Budget time.Duration
	// WatcherSysctls are written in the watcher's namespace for the
	// detector: its sysctl-backed parameters, then its sysctlNeeder's.
	WatcherSysctls map[string]string

	record func() report.Cell
}

// expectedDuration is how long a sample of c is expected to keep its lab
// after the fault: a disturbance's window and tail; the end of the
// predicted range of a cell expected to decide; the budget otherwise.
func (c *Cell) expectedDuration() time.Duration {
	if c.Kind == report.KindDisturbance {
		var window time.Duration
		if w, ok := c.Fault.(Windowed); ok {
			window = w.Window()
		}
		return window + c.observeTail()
	}
	if c.Expect == report.ExpectDetect && !c.Prediction.Never {
		return min(c.Prediction.Hi, c.Budget)
	}
	return c.Budget
}

// Resolve parses and checks a cell without touching the machine, so that
// bad input is refused before any lab exists.
func Resolve(c CellConfig) (*Cell, error) {
	if c.Side == "" {
		c.Side = protocol.SideClient
	}
	if _, err := protocol.ParseSide(string(c.Side)); err != nil {
		return nil, err
	}
	if c.Samples <= 0 {
		c.Samples = 1
	}
	if c.Budget < 0 || c.Idle < 0 {
		return nil, errors.New("budget and idle must not be negative")
	}
	phase, err := tcprules.ParsePhase(string(c.Phase))
	if err != nil {
		return nil, err
	}
	c.Phase = phase
	for k := range c.Sysctls {
		if _, err := sysctlPath(k); err != nil {
			return nil, err
		}
	}
	// A detector's kernel parameter that the spec leaves out is what the
	// watcher's namespace will have: the cell's sysctl, or the kernel's
	// default for a new namespace.
	namespace := func(key string) string {
		if v, ok := c.Sysctls[key]; ok {
			return v
		}
		return namespaceDefault(key)
	}
	b, err := detectors.build(c.Detector, namespace)
	if err != nil {
		return nil, err
	}
	det := b.value.(Detector)
	watcher := maps.Clone(b.sysctls)
	for k, v := range b.sysctls {
		if b.given[k] {
			if err := agree(b.spec, k, v, c.Sysctls); err != nil {
				return nil, err
			}
		}
	}
	if sn, ok := det.(sysctlNeeder); ok {
		for k, v := range sn.Sysctls() {
			if err := agree(b.spec, k, v, c.Sysctls); err != nil {
				return nil, err
			}
			watcher[k] = v
		}
	}
	flt, fsp, err := NewFault(c.Fault)
	if err != nil {
		return nil, err
	}
	cell := &Cell{Config: c, Detector: det, DetSpec: b.spec, Fault: flt, FaultSpec: fsp, Effect: flt.Effect(), WatcherSysctls: watcher}
	cell.Prediction, cell.Expect, cell.Kind = theory(det, flt)
	cell.Budget = c.Budget
	if cell.Budget == 0 {
		cell.Budget = defaultBudget(cell.Kind, cell.Prediction)
	}
	return cell, nil
}

// agree refuses a detector that would write a kernel parameter the cell's
// own sysctls set to something else: one of the two would be silently lost.
func agree(det spec.Spec, key, value string, cellSysctls map[string]string) error {
	if v, ok := cellSysctls[key]; ok && v != value {
		return fmt.Errorf("detector %s sets %s=%s in the watcher's namespace, but the cell's sysctls (--sysctl) set %s=%s; give the value once", det, key, value, key, v)
	}
	return nil
}

// Key is the cell's key in reports; an in-flight cell's carries its phase.
func (c *Cell) Key() report.CellKey {
	return report.KeyOf(c.DetSpec.String(), c.FaultSpec.String(), string(c.Config.Side), c.Kind).InPhase(string(c.Config.Phase))
}

// Describe is a one-line summary of a cell for progress output.
func (c *Cell) Describe() string {
	parts := []string{c.DetSpec.String(), c.FaultSpec.String(), string(c.Config.Side)}
	if c.Config.Phase == tcprules.PhaseInFlight {
		parts = append(parts, string(c.Config.Phase))
	}
	return strings.Join(parts, " × ")
}

// Record returns what the run measured of the cell so far: its samples,
// mistakes, false positives, observed time, overhead and sysctls, from the
// run's report. A cell that belongs to no matrix has an empty record.
func (c *Cell) Record() report.Cell {
	if c.record == nil {
		return report.Cell{}
	}
	return c.record()
}

// shortID is 8 hex digits of the cell's key, for file names.
func (c *Cell) shortID() string {
	sum := sha256.Sum256([]byte(c.Key().String()))
	return hex.EncodeToString(sum[:4])
}

// sysctlNeeder is a detector that needs kernel parameters beyond its
// sysctl-backed ones; they are written last, and one that differs from the
// cell's explicit sysctls is refused.
type sysctlNeeder interface{ Sysctls() map[string]string }
