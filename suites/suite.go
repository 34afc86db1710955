// Package suites holds what halfopen's Ginkgo suites share beyond the gate
// API they are written in: each suite is a gate.DescribeTable of cells,
// built-in detectors (gate.Detector) in fresh labs,
//
//	[peer host] ==veth== [router host] ==veth== [watcher host]
//	                    (forwarding, nftables, conntrack,
//	                     optional Toxiproxy process)
//
// judged by gate's matchers and by the assertions here that only the
// suites make (a twin against its reference, a disturbance survived or
// paid for), each over a *gate.Result found by its entry's name. Run
// runs a suite: its report is suite-NAME.json, its profile $PROFILE, and
// around it the host's own namespace is proved untouched and no lab left
// behind. The entries a filter chooses, and only those, are measured, so
//
//	go tool ginkgo --label-filter='keepalive && host-crash' ./suites/...
//
// measures only those cells (gate labels each entry with its detector,
// fault, their families and its side).
package suites

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/hostsnap"
	"github.com/halfopen/halfopen/report"
)

// Seed is the seed of every suite's run: the same fault instants and idle
// times every run.
const Seed = 42

// MeasureTimeout is every suite's table's measuring timeout, given to
// gate.DescribeTable: long enough that the suite's own --timeout (make
// test-faults: 60 min) bounds the measuring, as it bounds every spec,
// rather than gate.DefaultTableTimeout.
var MeasureTimeout = NodeTimeout(24 * time.Hour)

// Run runs one of halfopen's suites, its report suite-name.json in
// $HALFOPEN_REPORT_DIR with the profile $PROFILE: gate.RunSpecs, with a
// BeforeSuite that runs before (building the C examples, say) and
// snapshots the host's own namespace, and an AfterSuite that proves it
// unchanged and no lab of this process left behind, whatever the specs
// found. A filter that chooses none of the suite's entries (ginkgo -r
// choosing another suite's) passes it empty.
func Run(t *testing.T, name, description string, before ...func()) {
	var snap *hostsnap.Snapshot
	BeforeSuite(func() {
		for _, b := range before {
			b()
		}
		var err error
		snap, err = hostsnap.Take()
		Expect(err).NotTo(HaveOccurred())
	})
	AfterSuite(func(ctx SpecContext) {
		Eventually(hostsnap.OwnLeftovers).WithContext(ctx).WithTimeout(10*time.Second).Should(BeEmpty(), "labs left behind")
		after, err := hostsnap.Take()
		Expect(err).NotTo(HaveOccurred())
		Expect(after.Diff(snap)).To(BeEmpty(), "the host's own namespace changed")
	}, NodeTimeout(time.Minute))
	gate.RunSpecs(t, description, gate.Suite{Report: name, Profile: Profile(), AllowEmpty: true})
}

// Cell is a suite's cell: the detector det (a built-in one, or
// external:cmd=...) watching through fault on side, Samples(3) samples,
// the suites' Seed.
func Cell(det, fault string, side gate.Side) gate.Cell {
	return gate.Cell{Watcher: gate.Detector(det), Fault: gate.MustFault(fault), Side: side, Samples: Samples(3), Seed: Seed}
}

// Name is a cell's entry name: "detector × fault × side", the detector's
// spec as given.
func Name(c gate.Cell) string {
	side := c.Side
	if side == "" {
		side = gate.SideClient
	}
	return c.Watcher.Name() + " × " + c.Fault.String() + " × " + string(side)
}

// Entries are a suite's table entries, one per cell, in the order first
// added: a cell added again (the same Name) keeps the cell it was first
// added with and gains the new matchers and checks, so that a cell two
// claims read is measured once and judged by both.
type Entries struct {
	names []string
	cells map[string]gate.Cell
	args  map[string][]any
}

// Add adds the cell, with gate.Entry's arguments (matchers, checks,
// decorators), and returns its entry's name. The entry's spec is located
// where the cell was first added.
func (e *Entries) Add(c gate.Cell, args ...any) string {
	name := Name(c)
	if e.cells == nil {
		e.cells, e.args = map[string]gate.Cell{}, map[string][]any{}
	}
	if _, ok := e.cells[name]; !ok {
		e.names = append(e.names, name)
		e.cells[name] = c
		e.args[name] = []any{types.NewCodeLocation(1)}
	}
	e.args[name] = append(e.args[name], args...)
	return name
}

// List returns the entries, for gate.DescribeTable.
func (e *Entries) List() []gate.TableEntry {
	out := make([]gate.TableEntry, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, gate.Entry(n, e.cells[n], e.args[n]...))
	}
	return out
}

// RequireLab skips the current node with the preflight's sentence when the
// machine cannot run a lab.
func RequireLab() {
	if err := harness.Preflight(); err != nil {
		Skip(err.Error())
	}
}

// ReportPath returns where a suite writes its v1 report: $HALFOPEN_REPORT_DIR
// (the Makefile's reports/) or a temporary directory removed after the suite.
func ReportPath(name string) string {
	dir := os.Getenv("HALFOPEN_REPORT_DIR")
	if dir == "" {
		dir = GinkgoT().TempDir()
	}
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	return filepath.Join(dir, "suite-"+name+".json")
}

// Samples returns the samples per cell for this profile: $HALFOPEN_SAMPLES,
// or def.
func Samples(def int) int {
	if n, err := strconv.Atoi(os.Getenv("HALFOPEN_SAMPLES")); err == nil && n > 0 {
		return n
	}
	return def
}

// Profile returns the suite profile: $PROFILE, or "quick".
func Profile() string {
	if p := os.Getenv("PROFILE"); p != "" {
		return p
	}
	return "quick"
}

// Measured asserts that every sample of a cell was measured, and judges
// nothing else: for a cell the suite measures without a verdict.
func Measured(r *gate.Result) {
	GinkgoHelper()
	Expect(r.Samples).NotTo(BeEmpty(), "cell %s has no samples", r.Describe)
	for i, s := range r.Samples {
		Expect(s.Error).To(BeEmpty(), "sample %d of %s", i, r.Describe)
	}
}

// ExpectTheory asserts that a detection cell's every sample is what its
// theory says, by the one judge (gate.AgreeWithTheory, which asks
// report.Cell.JudgeSample, as the report's overview and halfopen check
// do): no sample is an error; each detected sample is inside its own
// forecast or the cell's range, widened by report.PredictionTolerance,
// with a reason the cell declares; a censored sample only where theory
// (or its forecast) says so. A cell whose theory makes no claim is
// measured, not judged. A disturbance cell fails it: its theory is
// ExpectDisturbanceTheory's.
func ExpectTheory(r *gate.Result) {
	GinkgoHelper()
	rec := r.Record()
	if rec.Kind != report.KindDetection {
		Fail(fmt.Sprintf("cell %s is a %s cell with expectation %q: ExpectTheory is for detection cells", r.Describe, rec.Kind, rec.Expect))
	}
	Expect(r).To(gate.AgreeWithTheory(), "(%s)", rec.PredictedRule)
}
