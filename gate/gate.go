// Package gate lets the author of a connection pool, an RPC client or a
// server gate their library on detection budgets from an ordinary Ginkgo
// suite in their own repository: "our client notices a dead server within
// 5 s, and never drops a healthy connection during a 2 s router restart".
//
//	[peer host: your server, a real one   ] ==veth== [router: the fault] ==veth== [watcher host: your client]
//	[  (a Service) or a Go role, or echo  ]                                        [  (a Go role)            ]
//
// Each side runs as its own process inside its own network namespace: the
// test binary re-executed as a registered role (Register), or a real server
// started unmodified (Service). Measure puts one cell (a watcher, a peer, a
// fault, a side) through fresh labs, sample by sample, and returns what was
// measured; the matchers (DetectWithin, NeverDetect, Survive, GiveUpWith)
// assert it with messages that name the cell and its samples. Every sample
// also goes to gmeasure and to the v1 report (suite-gates.json in
// $HALFOPEN_REPORT_DIR), which halfopen's report, compare and gate commands
// read.
//
// A suite dispatches roles first. Run as root it makes its labs in the
// machine's namespaces; run by an ordinary user (plain `go test`) Main
// re-executes it as root of a user namespace of its own and makes the labs
// there, or fails with one sentence where the kernel refuses:
//
//	func TestMain(m *testing.M) { gate.Main(m) }
package gate

import (
	"context"
	"fmt"
	"github.com/halfopen/halfopen/internal/version"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega/gmeasure"

	// The faults a cell names, and the built-in echo peer.
	_ "github.com/halfopen/halfopen/detectors"
	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/roles"
	"github.com/halfopen/halfopen/spec"
	"github.com/halfopen/halfopen/tcprules"
)

// Main is TestMain for a gate suite: a process the harness started as a
// role or an agent runs as one and exits; otherwise the tests run, and the
// report is completed after them.
func Main(m *testing.M) {
	roles.RunIfRole()
	harness.MaybeRunAgent()
	if err := harness.EnterUserNamespace(); err != nil {
		fmt.Fprintln(os.Stderr, "gate:", err)
		os.Exit(2)
	}
	code := m.Run()
	if err := closeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "gate:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Register makes a Go role known by its name: a watcher, your client (or
// your server, for side server), whose Watch returns the moment your library
// gives up on its peer, with the reason; and, if it sets Peer, its own peer.
// Call it from init or TestMain; a duplicate name panics.
func Register(name string, w protocol.Watcher) { roles.Register(name, w) }

// Service registers a real server as a peer that cells name by its Name
// (Cell.Peer). Register it in init or TestMain.
func Service(s harness.Service) { harness.RegisterService(s) }

// Cell is one measurement: a watcher role against a peer, under a fault,
// on a side.
type Cell struct {
	// Watcher is a role registered with Register: your client (side
	// client) or your server (side server).
	Watcher string
	// Peer is "" or "builtin" (halfopen's echo peer), "self" (the role's own
	// Peer), or the Name of a Service.
	Peer string
	// Fault is a fault spec: "blackhole", "host-crash", "router-restart:outage=2s".
	Fault string
	// Side is which end your watcher is (default client: it dials).
	Side protocol.Side
	// Samples per cell (default 3); Budget is how long a sample waits for a
	// decision (default: from the role's prediction, its end plus half of
	// it and at least 1.5 s more; 3 s when it predicts that the role never
	// decides; a disturbance observes its own window instead).
	Samples int
	Budget  time.Duration
	// Config goes to the role in HALFOPEN_CONFIG (and names the cell).
	Config map[string]string
	// Sysctls are set in the lab's namespaces.
	Sysctls map[string]string
	// Phase aims the fault at a state of the connection: "" or
	// tcprules.PhaseIdle lands it a seeded time after the last exchange;
	// tcprules.PhaseInFlight lands it while the role's request is
	// unacknowledged (after the role calls Connected and writes it), where
	// keepalive is inert and only the retransmission timer, TCP_USER_TIMEOUT
	// or the library's own deadline can end the wait. An in-flight cell
	// also names its phase in the role's config (protocol.PhaseKey), so
	// that the role predicts for it and the report and budgets tell it
	// from the idle cell.
	Phase tcprules.Phase
	// Seed reproduces a run's fault instants (harness.Options.Seed): the
	// cells measured together (RunAll) share one run and so one seed; 0
	// is the default seed.
	Seed int64
}

// detector is the cell's detector spec: role:name=...,peer=...,<config>.
func (c Cell) detector() (string, error) {
	peer := c.Peer
	if peer == "" {
		peer = "builtin"
	}
	sp := spec.Spec{Name: "role", Params: map[string]string{"name": c.Watcher, "peer": peer}}
	for k, v := range c.Config {
		if k == "name" || k == "peer" || k == protocol.PhaseKey {
			return "", fmt.Errorf("config key %q is taken by the cell itself", k)
		}
		if strings.ContainsAny(k+v, ",=:") {
			return "", fmt.Errorf("config %s=%s: keys and values may not hold ',', '=' or ':'", k, v)
		}
		sp.Params[k] = v
	}
	switch c.Phase {
	case "", tcprules.PhaseIdle:
	case tcprules.PhaseInFlight:
		sp.Params[protocol.PhaseKey] = string(c.Phase)
	default:
		return "", fmt.Errorf("phase %q is neither %q nor %q", c.Phase, tcprules.PhaseIdle, tcprules.PhaseInFlight)
	}
	return sp.String(), nil
}

// Result is what Measure measured of a cell.
type Result struct {
	// Cell is the resolved cell: its spec, its prediction and its budget.
	Cell *harness.Cell
	// Record holds its samples, mistakes and false positives, as the v1
	// report has them.
	Record report.Cell
}

// String names the cell and lists its samples, for failure messages.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (budget %v)", r.Cell.Describe(), r.Cell.Budget)
	for i, s := range r.Record.Samples {
		fmt.Fprintf(&b, "\n  sample %d: %s", i, s.Summary())
		if s.FalsePositives > 0 {
			fmt.Fprintf(&b, " (%d false positives)", s.FalsePositives)
		}
	}
	return b.String()
}

// Measure puts the cell through fresh labs, one per sample, several at
// once, and returns what was measured, from inside a Ginkgo spec: bad
// input fails the spec at once with one sentence, and so does a machine
// that cannot run a lab (the preflight's sentence: not root, no user
// namespaces, a missing capability), never a skip: a gate that did not
// measure cannot pass. The samples go to gmeasure.
func Measure(ctx context.Context, c Cell) *Result {
	ginkgo.GinkgoHelper()
	requireLab()
	r, err := Run(ctx, c)
	if err != nil {
		ginkgo.Fail(err.Error())
	}
	record(r)
	return r
}

// preflight checks that this machine can run a lab; a test swaps it.
var preflight = harness.Preflight

// labError is the one sentence of a gate that cannot build its lab.
func labError(err error) error {
	return fmt.Errorf("gate: cannot measure, so the gate fails rather than pass unmeasured: %w", err)
}

// requireLab fails the running spec, with the preflight's sentence, on a
// machine that cannot run a lab.
func requireLab() {
	ginkgo.GinkgoHelper()
	if err := preflight(); err != nil {
		ginkgo.Fail(labError(err).Error())
	}
}

// measuredEntry names the (invisible) report entry each measured cell
// adds to its spec, by which a suite that measured nothing is found.
const measuredEntry = "halfopen gate: measured"

// A gate suite whose specs measured no cell (a focus or label filter that
// chose none, specs that returned early) fails: it would pass unmeasured.
var _ = ginkgo.ReportAfterSuite("a gate suite measures at least one cell", func(r ginkgo.Report) {
	if why := measuredNothing(r); why != "" {
		ginkgo.Fail(why)
	}
})

// measuredNothing says why a suite that otherwise passed measured nothing,
// or "" when a spec measured a cell or the suite failed anyway.
func measuredNothing(r ginkgo.Report) string {
	if !r.SuiteSucceeded {
		return ""
	}
	for _, sr := range r.SpecReports {
		for _, e := range sr.ReportEntries {
			if e.Name == measuredEntry {
				return ""
			}
		}
	}
	return fmt.Sprintf("gate: the suite measured no cell (%d of %d specs chosen by its filters ran), so it cannot pass: widen --focus/--label-filter to a spec that calls gate.Measure", r.PreRunStats.SpecsThatWillRun, r.PreRunStats.TotalSpecs)
}

// record puts a result's samples in gmeasure, as a report entry of the
// running spec.
func record(r *Result) {
	ginkgo.AddReportEntry(measuredEntry, r.Cell.Describe(), ginkgo.ReportEntryVisibilityNever)
	exp := gmeasure.NewExperiment(r.Cell.Describe())
	for _, s := range r.Record.Samples {
		if s.Detected && s.Seconds != nil && r.Cell.Kind == report.KindDetection {
			exp.RecordDuration("detect", time.Duration(*s.Seconds*float64(time.Second)))
		}
	}
	if r.Cell.Kind == report.KindDisturbance {
		exp.RecordValue("false positives", float64(r.Record.FalsePositives))
	}
	ginkgo.AddReportEntry(exp.Name, exp)
}

// MeasureAll measures the cells together in one run (RunAll) from inside a
// Ginkgo spec, and returns their results in order, as Measure does for one
// (failing, never skipping, on a machine that cannot run a lab).
func MeasureAll(ctx context.Context, cells ...Cell) []*Result {
	ginkgo.GinkgoHelper()
	requireLab()
	out, err := RunAll(ctx, cells...)
	if err != nil {
		ginkgo.Fail(err.Error())
	}
	for _, r := range out {
		record(r)
		ginkgo.GinkgoWriter.Println(r)
	}
	return out
}

// Fastest is the quickest decision of the result's samples, in seconds,
// +Inf when none decided.
func (r *Result) Fastest() float64 {
	best := math.Inf(1)
	for _, s := range r.Record.Samples {
		if s.Detected && s.Seconds != nil {
			best = min(best, *s.Seconds)
		}
	}
	return best
}

// Run is Measure for plain Go tests and programs: it returns bad input and
// a machine that cannot run a lab as the error.
func Run(ctx context.Context, c Cell) (*Result, error) {
	out, err := RunAll(ctx, c)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// RunAll measures the cells together, in one run: every sample in a fresh
// lab, as many labs at once as the harness's pool finds it can keep
// accurate (sized by measurement, with its latency probe and calibration
// labs), and returns their results in the cells' order. Bad input in any
// cell is the error, before anything is measured.
func RunAll(ctx context.Context, cells ...Cell) ([]*Result, error) {
	if err := preflight(); err != nil {
		return nil, labError(err)
	}
	if len(cells) == 0 {
		return nil, fmt.Errorf("gate: no cells to measure")
	}
	configs := make([]harness.CellConfig, len(cells))
	var seed int64
	for i, c := range cells {
		if c.Seed != 0 && seed != 0 && c.Seed != seed {
			return nil, fmt.Errorf("gate cell %s × %s: seed %d, but the cells measured together share one run and its seed, %d", c.Watcher, c.Fault, c.Seed, seed)
		}
		if c.Seed != 0 {
			seed = c.Seed
		}
		det, err := c.detector()
		if err != nil {
			return nil, fmt.Errorf("gate cell %s × %s: %w", c.Watcher, c.Fault, err)
		}
		samples := c.Samples
		if samples == 0 {
			samples = 3
		}
		configs[i] = harness.CellConfig{Detector: det, Fault: c.Fault, Side: c.Side, Samples: samples, Budget: c.Budget, Sysctls: c.Sysctls, Phase: c.Phase}
	}
	w, logs, err := sharedReport()
	if err != nil {
		return nil, err
	}
	run := harness.NewRun()
	defer run.Close()
	m, err := harness.NewMatrix(run, configs, harness.Options{Report: w, LogDir: logs, Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	if err := m.Run(ctx); err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	out := make([]*Result, len(cells))
	for i, cell := range m.Cells() {
		out[i] = &Result{Cell: cell, Record: cell.Record()}
	}
	return out, nil
}

// The one report of a gate suite, written sample by sample.
var gateReport struct {
	sync.Mutex
	w    *report.Writer
	logs string
}

// sharedReport opens the suite's report on first use: suite-gates.json in
// $HALFOPEN_REPORT_DIR, or a temporary file.
func sharedReport() (*report.Writer, string, error) {
	gateReport.Lock()
	defer gateReport.Unlock()
	if gateReport.w != nil {
		return gateReport.w, gateReport.logs, nil
	}
	dir := os.Getenv("HALFOPEN_REPORT_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "halfopen-gate-"); err != nil {
			return nil, "", fmt.Errorf("gate: report directory: %w", err)
		}
	}
	name := "gates"
	if n := os.Getenv("HALFOPEN_GATE_NAME"); n != "" {
		name = "gates-" + n
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("gate: report directory: %w", err)
	}
	w, err := report.Create(filepath.Join(dir, "suite-"+name+".json"), &report.Report{
		Schema: report.SchemaV1, Profile: "gate", Started: time.Now().UTC(),
		Environment: version.Environment(),
	})
	if err != nil {
		return nil, "", fmt.Errorf("gate: %w", err)
	}
	gateReport.w, gateReport.logs = w, filepath.Join(dir, "logs")
	return w, gateReport.logs, nil
}

func closeReport() error {
	gateReport.Lock()
	defer gateReport.Unlock()
	if gateReport.w == nil {
		return nil
	}
	return gateReport.w.Close()
}

// sortedReasons lists the reasons of the detected samples.
func sortedReasons(rec report.Cell) []string {
	set := map[string]bool{}
	for _, s := range rec.Samples {
		if s.Detected {
			set[s.Reason] = true
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}
