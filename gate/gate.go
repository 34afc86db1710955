package gate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega/gmeasure"

	_ "github.com/halfopen/halfopen/detectors"
	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/version"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/roles"
	"github.com/halfopen/halfopen/spec"
	"github.com/halfopen/halfopen/tcprules"
	// The faults a cell names, and the built-in echo peer.
)

// Main is TestMain for a gate suite: a process the harness started as a
// role or an agent runs as one and exits; otherwise the tests run, a
// Ginkgo suite among them failing when it measured no cell (see Suite's
// AllowEmpty), and the report is completed, and read back, after them.
func Main(m *testing.M) {
	roles.RunIfRole()
	harness.MaybeRunAgent()
	if err := harness.EnterUserNamespace(); err != nil {
		fmt.Fprintln(os.Stderr, "gate:", err)
		os.Exit(2)
	}
	ginkgo.ReportAfterSuite("a gate suite measures at least one cell", func(r ginkgo.Report) {
		if why := measuredNothing(r); why != "" {
			ginkgo.Fail(why)
		}
	})
	code := m.Run()
	if err := closeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "gate:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Cell is one measurement: a watcher role against a peer, under a fault,
// on a side. Every field but Watcher and Fault has a default, stated at
// the field.
type Cell struct {
	// Watcher is your role, the handle Register (a Go role), Program (a
	// protocol v1 program) or Detector (one of halfopen's detectors)
	// returned: your client (SideClient) or your server (SideServer).
	Watcher Role
	// Peer is what the watcher talks to: Echo (the zero Peer), Self (the
	// role's own Peer) or a real server's handle from Service.
	Peer Peer
	// Fault is what happens to the peer or the path: Blackhole(),
	// RouterRestart(2*time.Second), ..., or ParseFault's result.
	Fault Fault
	// Side is which end your watcher is (zero: SideClient, it dials).
	Side Side
	// Samples is how many fresh labs measure the cell (zero:
	// DefaultSamples).
	Samples int
	// Budget is how long a sample waits for a decision, from the fault;
	// a sample still undecided then is censored. Zero derives it from the
	// role's prediction (protocol.Watcher.Predict): the predicted end
	// plus half of it, at least 1.5 s more; NeverBudget when the role
	// predicts that it never decides. For a disturbance (RouterRestart,
	// a Fault with a window) Budget is instead the tail watched after the
	// fault heals (zero: the predicted end, at least 2 s, at most 30
	// s): every decision in the window and the tail is a false
	// positive. Result.Budget tells what a measured cell used.
	Budget time.Duration
	// Config goes to the role in HALFOPEN_CONFIG (protocol.Config) and
	// names the cell in the report; keys and values may not hold ',', '='
	// or ':'.
	Config map[string]string
	// Sysctls are set in each lab's namespaces ("net.ipv4.tcp_retries2":
	// "5"); zero: a new namespace's kernel defaults.
	Sysctls map[string]string
	// Phase aims the fault at a state of the connection: "" or PhaseIdle
	// lands it a seeded time (up to 1.5 s) after the last exchange;
	// PhaseInFlight lands it while the role's request is unacknowledged
	// (after the role calls Connected and writes it), where keepalive is
	// inert and only the retransmission timer, TCP_USER_TIMEOUT or the
	// library's own deadline can end the wait. An in-flight cell also
	// names its phase in the role's config (protocol.PhaseKey), so that
	// the role predicts for it and the report tells it from the idle
	// cell.
	Phase Phase
	// Port is the port the listening end (your server, a Service's
	// "{port}", HALFOPEN_ADDR) uses in each lab's own namespaces; zero is
	// Port, 7000.
	Port uint16
	// Seed reproduces a run's fault instants and idle times: the cells
	// measured together (a table, MeasureAll, RunAll) share one run and
	// so one seed. Zero is the harness's default seed, so an unchanged
	// gate draws the same instants every run.
	Seed int64
}

// name is the cell's short name in messages: role × fault.
func (c Cell) name() string {
	return fmt.Sprintf("%s × %s", c.Watcher.name, c.Fault.spec)
}

// detector is the cell's detector spec: role:name=...,peer=...,<config>,
// or a Detector's own spec.
func (c Cell) detector() (string, error) {
	if c.Watcher.err != nil {
		return "", c.Watcher.err
	}
	if c.Watcher.name == "" {
		return "", fmt.Errorf("the cell has no Watcher: give it the Role gate.Register returned")
	}
	if c.Fault.spec == "" {
		return "", fmt.Errorf("the cell has no Fault: give it one such as gate.Blackhole()")
	}
	if c.Watcher.detector != "" {
		return c.builtinDetector()
	}
	sp := spec.Spec{Name: "role", Params: map[string]string{"name": c.Watcher.name, "peer": c.Peer.Name()}}
	taken := []string{"name", "peer", protocol.PhaseKey}
	if c.Watcher.program != "" {
		// A program is halfopen's external detector; a real server is its
		// peer service:NAME.
		peer := c.Peer.Name()
		if peer != Echo.name && peer != Self.name {
			peer = "service:" + peer
		}
		if strings.ContainsAny(c.Watcher.program, ",=:") {
			return "", fmt.Errorf("program %q: its path may not hold ',', '=' or ':'", c.Watcher.program)
		}
		sp = spec.Spec{Name: "external", Params: map[string]string{"cmd": c.Watcher.program, "peer": peer, "privileged": strconv.FormatBool(c.Watcher.privileged)}}
		taken = []string{"cmd", "peer", "privileged", protocol.PhaseKey}
	}
	for k, v := range c.Config {
		if slices.Contains(taken, k) {
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

// builtinDetector is a Detector cell's spec: the detector's own, with the
// cell's Peer as its peer parameter when the Peer is not Echo.
func (c Cell) builtinDetector() (string, error) {
	if len(c.Config) > 0 {
		return "", fmt.Errorf("detector %q takes its parameters in its spec, not in the cell's Config", c.Watcher.detector)
	}
	switch c.Phase {
	case "", tcprules.PhaseIdle, tcprules.PhaseInFlight:
	default:
		return "", fmt.Errorf("phase %q is neither %q nor %q", c.Phase, tcprules.PhaseIdle, tcprules.PhaseInFlight)
	}
	if c.Peer.Name() == Echo.name {
		return c.Watcher.detector, nil
	}
	sp, err := spec.Parse(c.Watcher.detector)
	if err != nil {
		return "", fmt.Errorf("detector %q: %w", c.Watcher.detector, err)
	}
	if _, given := sp.Params["peer"]; given {
		return "", fmt.Errorf("detector %q names its peer in its spec and the cell names another, %s: give it once", c.Watcher.detector, c.Peer.Name())
	}
	peer := c.Peer.Name()
	if peer != Self.name {
		peer = "service:" + peer
	}
	sp.Params["peer"] = peer
	if _, err := harness.CanonicalDetector(sp.String()); err != nil {
		return "", fmt.Errorf("detector %q with the peer %s: %w", c.Watcher.detector, c.Peer.Name(), err)
	}
	return sp.String(), nil
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
	record(r.Describe, r)
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

// measuredNothing says why a suite that otherwise passed measured nothing
// (a focus or label filter that chose none, specs that returned early), so
// that it fails rather than pass unmeasured; "" when a spec measured a
// cell, the suite failed anyway, or it allows an empty run
// (Suite.AllowEmpty).
func measuredNothing(r ginkgo.Report) string {
	if !r.SuiteSucceeded || r.SuiteConfig.DryRun || gateSuite.AllowEmpty {
		return ""
	}
	for _, sr := range r.SpecReports {
		for _, e := range sr.ReportEntries {
			if e.Name == measuredEntry {
				return ""
			}
		}
	}
	return fmt.Sprintf("gate: the suite measured no cell (%d of %d specs chosen by its filters ran), so it cannot pass: widen --focus/--label-filter to a gate.DescribeTable entry or a spec that calls gate.Measure", r.PreRunStats.SpecsThatWillRun, r.PreRunStats.TotalSpecs)
}

// record marks the running spec as one that measured a cell, and puts
// the result's samples in gmeasure, one value per sample, under name (the
// table entry's name, or the cell's description), shown under -v or when
// the spec fails.
func record(name string, r *Result) {
	ginkgo.AddReportEntry(measuredEntry, r.Describe, ginkgo.ReportEntryVisibilityNever)
	exp := gmeasure.NewExperiment(name)
	for _, s := range r.Samples {
		switch {
		case s.Error != "":
		case r.Disturbance:
			exp.RecordValue("false positives", float64(s.FalsePositives), gmeasure.Annotation(s.Reason))
		case s.Detected:
			exp.RecordDuration("detect", s.After, gmeasure.Annotation(s.Reason))
		default:
			exp.RecordValue("censored", 1)
		}
	}
	ginkgo.AddReportEntry(exp.Name, exp, ginkgo.ReportEntryVisibilityFailureOrVerbose)
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
		record(r.Describe, r)
		ginkgo.GinkgoWriter.Println(r)
	}
	return out
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
// cell is the error, before anything is measured, and so is a cell given
// twice (the same detector, fault, side and phase): a cell is measured
// once.
func RunAll(ctx context.Context, cells ...Cell) ([]*Result, error) {
	out, err := runAll(ctx, cells, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// runAll is RunAll, with a progress callback for each sample. When the
// run began, it returns what was measured even with an error (the run
// interrupted, a sample the report could not keep, a run that did not
// close cleanly).
func runAll(ctx context.Context, cells []Cell, progress func(harness.Progress)) (out []*Result, err error) {
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
			return nil, fmt.Errorf("gate cell %s: seed %d, but the cells measured together share one run and its seed, %d", c.name(), c.Seed, seed)
		}
		if c.Seed != 0 {
			seed = c.Seed
		}
		cfg, err := c.config()
		if err != nil {
			return nil, err
		}
		configs[i] = cfg
	}
	w, logs, err := sharedReport()
	if err != nil {
		return nil, err
	}
	run := harness.NewRun()
	defer func() {
		if cerr := run.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("gate: close the run: %w", cerr))
		}
	}()
	m, err := harness.NewMatrix(run, configs, harness.Options{Report: w, LogDir: logs, Seed: seed, Progress: progress})
	if err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	first := map[report.CellKey]int{}
	for i, hc := range m.Cells() {
		if j, dup := first[hc.Key()]; dup {
			return nil, fmt.Errorf("gate: cells %s and %s are the same cell, %s: give it once", cells[j].name(), cells[i].name(), hc.Describe())
		}
		first[hc.Key()] = i
	}
	runErr := m.Run(ctx)
	out = make([]*Result, len(cells))
	for i, hc := range m.Cells() {
		out[i] = newResult(cells[i], hc)
	}
	if runErr != nil {
		return out, fmt.Errorf("gate: %w", runErr)
	}
	return out, nil
}

// config is the harness's configuration of the cell, checked: bad input
// is one sentence naming the cell.
func (c Cell) config() (harness.CellConfig, error) {
	det, err := c.detector()
	if err != nil {
		return harness.CellConfig{}, fmt.Errorf("gate cell %s: %w", c.name(), err)
	}
	samples := c.Samples
	if samples == 0 {
		samples = DefaultSamples
	}
	return harness.CellConfig{Detector: det, Fault: c.Fault.spec, Side: c.Side, Samples: samples, Budget: c.Budget, Sysctls: c.Sysctls, Phase: c.Phase, Port: c.Port}, nil
}

// Suite is what a gate suite says of itself, given to RunSpecs among
// Ginkgo's arguments; every field is optional.
type Suite struct {
	// Report names the suite's report suite-REPORT.json in
	// $HALFOPEN_REPORT_DIR (zero: suite-gates-NAME.json, NAME as the
	// package doc says).
	Report string
	// Profile is recorded as the report's profile (zero: "gate").
	Profile string
	// AllowEmpty lets the suite pass when its filters, or its shard, leave
	// it nothing to measure, as a suite run among others (ginkgo -r with
	// a label filter that chooses another suite's specs) must. Zero: a
	// suite that measured no cell fails, rather than pass unmeasured.
	AllowEmpty bool
}

// The settings RunSpecs was given (Suite), and the report they name.
var gateSuite Suite

// The one report of a gate suite, written sample by sample.
var gateReport struct {
	sync.Mutex
	w    *report.Writer
	logs string
	// temp is the temporary directory the report went to when
	// $HALFOPEN_REPORT_DIR was not set ("" otherwise): removed when the
	// suite ends.
	temp string
}

// sharedReport opens the suite's report on first use: suite-REPORT.json
// (Suite.Report), else suite-gates-NAME.json (gateName), in
// $HALFOPEN_REPORT_DIR, or in a temporary directory that Main removes when
// the suite ends. A run sharded by HALFOPEN_SHARD records its shard.
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
		gateReport.temp = dir
	}
	profile := "gate"
	if gateSuite.Profile != "" {
		profile = gateSuite.Profile
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("gate: report directory: %w", err)
	}
	w, err := report.Create(filepath.Join(dir, "suite-"+reportName()+".json"), &report.Report{
		Schema: report.SchemaV1, Profile: profile, Started: time.Now().UTC(), Shard: os.Getenv(shardEnv),
		Environment: version.Environment(),
	})
	if err != nil {
		return nil, "", fmt.Errorf("gate: %w", err)
	}
	gateReport.w, gateReport.logs = w, filepath.Join(dir, "logs")
	return w, gateReport.logs, nil
}

// reportName names the suite's report, suite-NAME.json, and its progress
// lines: Suite.Report, else gates-NAME (gateName), else gates.
func reportName() string {
	if gateSuite.Report != "" {
		return gateSuite.Report
	}
	if n := gateName(); n != "" {
		return "gates-" + n
	}
	return "gates"
}

// closeReport closes the suite's report, and reads it back: a report the
// reader refuses is an error of the suite's. A report in a temporary
// directory goes with it.
func closeReport() error {
	gateReport.Lock()
	defer gateReport.Unlock()
	if gateReport.w == nil {
		return nil
	}
	err := gateReport.w.Close()
	if err == nil {
		if _, rerr := report.Read(gateReport.w.Path()); rerr != nil {
			err = fmt.Errorf("the suite's own report does not pass the reader: %w", rerr)
		}
	}
	if gateReport.temp != "" {
		if rerr := os.RemoveAll(gateReport.temp); rerr != nil && err == nil {
			err = fmt.Errorf("remove the report's temporary directory: %w", rerr)
		}
	}
	return err
}

// AddFrontier adds a point to the suite's tolerance-against-detection
// frontier (report.Report.Frontier, plotted by `halfopen report`): the
// longest disturbance a configuration survived against the time it took
// to detect a death, as a claim over a sweep of cells (Claim) finds it.
// Call it from inside a spec; a report that cannot take it fails the spec.
func AddFrontier(p report.FrontierPoint) {
	ginkgo.GinkgoHelper()
	w, _, err := sharedReport()
	if err == nil {
		err = w.Update(func(r *report.Report) { r.Frontier = append(r.Frontier, p) })
	}
	if err != nil {
		ginkgo.Fail(fmt.Sprintf("gate: add %s to the frontier: %v", p.Detector, err))
	}
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
