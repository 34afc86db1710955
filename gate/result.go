package gate

import (
	"fmt"
	"math"
	"os"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// Result is what was measured of a cell: the cell as given, what it
// resolved to (its description, its budget), and its samples. The
// matchers (DetectWithin, NeverDetect, Survive, GiveUpWith, ...) judge
// it; String lists it for failure messages.
type Result struct {
	// Entry is the table entry's name (Entry), or "" for a cell measured
	// by Measure, MeasureAll, Run or RunAll.
	Entry string
	// Cell is the cell as given.
	Cell Cell
	// Describe is the cell's canonical description, as the report keys
	// it: "role:name=...,peer=... × fault × side".
	Describe string
	// Disturbance says the fault is a disturbance (a window that heals):
	// its samples count false positives instead of deciding.
	Disturbance bool
	// Budget is the budget the cell used, its default resolved (see
	// Cell.Budget); for a disturbance, the tail watched after it heals,
	// zero when derived.
	Budget time.Duration
	// Samples are the cell's samples, in order.
	Samples []Sample
	// FalsePositives counts a disturbance's wrong decisions, all samples.
	FalsePositives int

	// rec is the cell's record in the v1 report, which the judge reads.
	rec report.Cell
}

// Sample is one measured sample of a cell.
type Sample struct {
	// Detected says the watcher decided within the budget, After the
	// fault, with Reason; a censored sample has Reason "budget".
	Detected bool
	After    time.Duration
	Reason   string
	// Error says why the sample could not be measured ("" when it was).
	Error string
	// FalsePositives counts a disturbance sample's wrong decisions.
	FalsePositives int
	// Window is how long a disturbance sample was watched: the fault's
	// window and the tail after it.
	Window time.Duration
	// Idle is the time between the last exchange and the fault.
	Idle time.Duration
	// Phase is the state the fault met the connection in.
	Phase Phase
	// Seed is the sample's own seed (the report's, for reproducing it).
	Seed int64
}

// newResult reads a measured cell.
func newResult(c Cell, hc *harness.Cell) *Result {
	return fromRecord(c, hc.Describe(), hc.Budget, hc.Record())
}

// fromRecord is the result of a cell described so, with its budget and
// its record.
func fromRecord(c Cell, describe string, budget time.Duration, rec report.Cell) *Result {
	r := &Result{Cell: c, Describe: describe, Disturbance: rec.Kind == report.KindDisturbance,
		Budget: budget, FalsePositives: rec.FalsePositives, rec: rec}
	for _, s := range rec.Samples {
		smp := Sample{Detected: s.Detected, Reason: s.Reason, Error: s.Error, FalsePositives: s.FalsePositives,
			Window: seconds(s.WindowS), Idle: seconds(s.IdleS), Phase: s.Phase, Seed: s.Seed}
		if s.Seconds != nil {
			smp.After = seconds(*s.Seconds)
		}
		r.Samples = append(r.Samples, smp)
	}
	return r
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Record is the cell's record as the v1 report has it (samples with their
// forecasts and states, mistakes, overhead, sysctls), for what the fields
// above leave out.
func (r *Result) Record() report.Cell { return r.rec }

// budgetNote says what bounded the cell's samples: a budget, or, for a
// disturbance, the window it watched.
func (r *Result) budgetNote() string {
	if !r.Disturbance {
		return fmt.Sprintf("budget %v", r.Budget)
	}
	var lo, hi time.Duration
	for i, s := range r.Samples {
		if i == 0 || s.Window < lo {
			lo = s.Window
		}
		hi = max(hi, s.Window)
	}
	switch {
	case hi == 0:
		return "a disturbance, watched through its window and a tail after it"
	case lo == hi:
		return fmt.Sprintf("a disturbance, watched %v per sample: its window and the tail after it", hi.Round(time.Millisecond))
	}
	return fmt.Sprintf("a disturbance, watched %v–%v per sample: its window and the tail after it", lo.Round(time.Millisecond), hi.Round(time.Millisecond))
}

// String names the cell and lists its samples, for failure messages.
func (r *Result) String() string {
	var b strings.Builder
	if r.Entry != "" {
		fmt.Fprintf(&b, "%s: ", r.Entry)
	}
	fmt.Fprintf(&b, "%s (%s)", r.Describe, r.budgetNote())
	for i, s := range r.rec.Samples {
		fmt.Fprintf(&b, "\n  sample %d: %s", i, s.Summary())
		if s.FalsePositives > 0 {
			fmt.Fprintf(&b, " (%d false positives)", s.FalsePositives)
		}
	}
	return b.String()
}

// Fastest is the quickest decision of the result's samples, in seconds,
// +Inf when none decided.
func (r *Result) Fastest() float64 {
	best := math.Inf(1)
	for _, s := range r.Samples {
		if s.Detected {
			best = min(best, s.After.Seconds())
		}
	}
	return best
}

// suiteName is the description a suite gave RunSpecs (gate.RunSpecs).
var suiteName string

// gateName names the suite's report, suite-gates-NAME.json: the
// HALFOPEN_GATE_NAME override, else the last element of the gate's
// module path (github.com/acme/redisgate: "redisgate"), else the
// description given to RunSpecs, else nothing (suite-gates.json).
func gateName() string {
	if n := os.Getenv("HALFOPEN_GATE_NAME"); n != "" {
		return n
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path != "" && bi.Main.Path != "github.com/halfopen/halfopen" && bi.Main.Path != "command-line-arguments" {
		return path.Base(bi.Main.Path)
	}
	return slug(suiteName)
}

// slug is s in lower case with runs of anything but letters and digits
// turned into one '-'.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
