// Package suites holds what halfopen's Ginkgo suites share: one suite main,
// a matrix of cells measured through the harness's bounded pool of fresh
// labs, every sample recorded once in the v1 report and in a gmeasure
// experiment, and matchers for what theory says of each cell. Each suite
// lives in a directory below:
//
//	[peer host] ==veth== [router host] ==veth== [watcher host]
//	                    (forwarding, nftables, conntrack,
//	                     optional Toxiproxy process)
//
// A suite declares its cells as DescribeTable entries (Suite.Entries) and
// its claims across cells (Suite.It), each naming the cells it needs and
// labelled with the detector family, fault family and side. Before the
// specs run, the suite main previews which specs the focus and label
// filters choose and measures exactly the cells those need, all in one
// pool, in the background; each spec waits for its own cells. So
//
//	go tool ginkgo --label-filter='keepalive && host-crash' ./suites/...
//
// measures only those cells. Suites that need the lab carry Label("netns")
// and skip, with the preflight's one sentence, on a machine that cannot
// run it.
package suites

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"

	_ "github.com/halfopen/halfopen/detectors"
	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/hostsnap"
	"github.com/halfopen/halfopen/internal/version"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/spec"
	// Every suite measures the registered detectors and faults.
)

// Main is every suite's TestMain: the harness re-executes the test binary
// inside the lab's hosts as its agents (watcher, peer, toxiproxy), so agent
// mode is dispatched before any test runs.
func Main(m *testing.M) {
	harness.MaybeRunAgent()
	os.Exit(m.Run())
}

// Suite is one Ginkgo suite's matrix.
type Suite struct {
	name string
	pool int
	// Before runs in BeforeSuite, after the lab check, before any lab
	// (building the C examples, say).
	Before func()
	// Finish may add to the report (a frontier) before it is closed; it
	// sees the cells that were measured.
	Finish func(cells []*harness.Cell, r *report.Report)

	needs map[string][]harness.CellConfig // spec text → the cells it needs

	// Set by the run.
	chosen  []harness.CellConfig
	run     *harness.Run
	matrix  *harness.Matrix
	writer  *report.Writer
	path    string
	snap    *hostsnap.Snapshot
	cancel  context.CancelFunc
	done    chan struct{}
	runErr  error
	mu      sync.Mutex
	pending map[report.CellKey]int // samples still to come
	ready   map[report.CellKey]chan struct{}
	cells   map[report.CellKey]*harness.Cell
}

// New declares a suite whose report is suite-<name>.json; pool is the
// number of labs at once (0: the harness's default).
func New(name string, pool int) *Suite {
	return &Suite{name: name, pool: pool, needs: map[string][]harness.CellConfig{}}
}

// CellLabels are a cell's Ginkgo labels: the detector's and the fault's names,
// the first word of each (a family: "keepalive", "heartbeat", "host",
// "toxiproxy"), and the side.
func CellLabels(c harness.CellConfig) Labels {
	set := map[string]bool{string(c.Side): true}
	for _, s := range []string{c.Detector, c.Fault} {
		name := spec.Name(s)
		set[name] = true
		if family, _, ok := strings.Cut(name, "-"); ok {
			set[family] = true
		}
	}
	var out Labels
	for l := range set {
		out = append(out, l)
	}
	return out
}

// describe is the text of a cell's entry.
func describe(c harness.CellConfig) string {
	return c.Detector + " × " + c.Fault + " × " + string(c.Side)
}

// Entries returns one DescribeTable entry per cell, labelled, whose
// parameters are the context and the measured cell.
func (s *Suite) Entries(configs []harness.CellConfig) []TableEntry {
	var out []TableEntry
	for _, c := range configs {
		text := describe(c)
		s.need(text, c)
		out = append(out, Entry(text, CellLabels(c), c))
	}
	return out
}

// Table declares a DescribeTable that measures each cell and asserts on it.
func (s *Suite) Table(description string, configs []harness.CellConfig, assert func(c *harness.Cell), decorations ...any) bool {
	args := []any{func(ctx SpecContext, cfg harness.CellConfig) {
		assert(s.Await(ctx, cfg)[0])
	}}
	args = append(args, decorations...)
	for _, e := range s.Entries(configs) {
		args = append(args, e)
	}
	return DescribeTable(description, args...)
}

// It declares a claim across cells: it runs when its cells are measured,
// and gets them in the order given.
func (s *Suite) It(text string, configs []harness.CellConfig, body func(cells []*harness.Cell), decorations ...any) bool {
	s.need(text, configs...)
	set := map[string]bool{}
	var labels Labels
	for _, c := range configs {
		for _, l := range CellLabels(c) {
			if !set[l] {
				set[l] = true
				labels = append(labels, l)
			}
		}
	}
	args := append([]any{labels, func(ctx SpecContext) { body(s.Await(ctx, configs...)) }}, decorations...)
	return It(text, args...)
}

// need notes the cells a spec needs. The tree is built twice (once to
// preview, once to run), so a text may come again; spec texts are unique
// within a suite (Ginkgo's own leaf texts key the preview).
func (s *Suite) need(text string, configs ...harness.CellConfig) {
	s.needs[text] = configs
}

// Run is a suite's main: it previews which specs the filters choose,
// registers the set-up that measures their cells, and runs the specs.
func Run(t *testing.T, s *Suite, description string, args ...any) {
	RegisterFailHandler(Fail)
	preview := PreviewSpecs(description, args...)
	seen := map[report.CellKey]bool{}
	for _, sr := range preview.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt || sr.State != types.SpecStatePassed {
			continue
		}
		for _, c := range s.needs[sr.LeafNodeText] {
			cell, err := harness.Resolve(c)
			if err != nil {
				t.Fatalf("suite %s: %v", s.name, err)
			}
			if k := cell.Key(); !seen[k] {
				seen[k] = true
				s.chosen = append(s.chosen, c)
			}
		}
	}
	BeforeSuite(s.start)
	AfterSuite(func(ctx SpecContext) { s.finish(ctx) }, NodeTimeout(5*time.Minute))
	RunSpecs(t, description, args...)
}

// start builds the run and the matrix of the chosen cells and measures them
// in the background.
func (s *Suite) start() {
	if len(s.chosen) == 0 {
		return
	}
	RequireLab()
	if s.Before != nil {
		s.Before()
	}
	var err error
	s.snap, err = hostsnap.Take()
	Expect(err).NotTo(HaveOccurred())
	configs, err := harness.Shard(s.chosen, os.Getenv("HALFOPEN_SHARD"))
	Expect(err).NotTo(HaveOccurred())
	for i := range configs {
		configs[i].Samples = max(configs[i].Samples, 1)
	}
	run := harness.NewRun()
	s.run = run
	DeferCleanup(func(context.Context) error { return run.Close() }, NodeTimeout(30*time.Second))
	s.path = ReportPath(s.name)
	s.writer, err = report.Create(s.path, &report.Report{
		Schema: report.SchemaV1, Profile: Profile(), Started: time.Now().UTC(), Seed: 42, Shard: os.Getenv("HALFOPEN_SHARD"),
		Environment: version.Environment(),
	})
	Expect(err).NotTo(HaveOccurred())
	s.pending, s.ready, s.cells = map[report.CellKey]int{}, map[report.CellKey]chan struct{}{}, map[report.CellKey]*harness.Cell{}
	s.done = make(chan struct{})
	if len(configs) == 0 {
		close(s.done)
		return
	}
	s.matrix, err = harness.NewMatrix(run, configs, harness.Options{Pool: s.pool, Seed: 42, Report: s.writer, Progress: s.progress})
	Expect(err).NotTo(HaveOccurred())
	for _, c := range s.matrix.Cells() {
		k := c.Key()
		s.cells[k], s.pending[k], s.ready[k] = c, c.Config.Samples, make(chan struct{})
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	DeferCleanup(cancel)
	go func() {
		defer close(s.done)
		s.runErr = s.matrix.Run(ctx)
	}()
}

// progress streams each sample as it lands (under `ginkgo -v`, make
// test-faults) and wakes the specs whose cell is complete.
func (s *Suite) progress(p harness.Progress) {
	GinkgoWriter.Println(s.name + " " + p.String())
	if p.Cell == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := p.Cell.Key()
	if s.pending[k]--; s.pending[k] == 0 {
		close(s.ready[k])
	}
}

// Await waits until every sample of the given cells is measured (or the
// run ends) and returns the cells, whose Record holds their samples.
func (s *Suite) Await(ctx context.Context, configs ...harness.CellConfig) []*harness.Cell {
	GinkgoHelper()
	if s.done == nil {
		Skip("the suite measured nothing: " + s.name)
	}
	out := make([]*harness.Cell, 0, len(configs))
	for _, cfg := range configs {
		c, err := harness.Resolve(cfg)
		Expect(err).NotTo(HaveOccurred())
		k := c.Key()
		s.mu.Lock()
		ready, ok := s.ready[k]
		s.mu.Unlock()
		if !ok {
			if os.Getenv("HALFOPEN_SHARD") != "" {
				Skip(fmt.Sprintf("cell %s belongs to another shard", k))
			}
			Fail(fmt.Sprintf("cell %s was not measured", k))
		}
		select {
		case <-ready:
		case <-s.done:
		case <-ctx.Done():
			// An interrupt (^C, or Ginkgo's --timeout) stops the
			// measuring too: nothing would wait for what it measures.
			s.cancel()
			Fail(fmt.Sprintf("interrupted while waiting for %s: %v", k, context.Cause(ctx)))
		}
		out = append(out, s.cells[k])
	}
	return out
}

// finish waits for the run, closes and checks the report, records the
// numbers in gmeasure, and proves the host's namespace untouched and no lab
// left behind, whatever the specs found.
func (s *Suite) finish(ctx context.Context) {
	if s.done == nil {
		return
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done
	}
	Expect(s.runErr).NotTo(HaveOccurred(), "the run of %s", s.name)
	if s.matrix != nil {
		if s.Finish != nil {
			// Finish reads the cells' records, which the writer serves
			// under its lock: it works on a copy, written back whole.
			r := s.writer.Snapshot()
			s.Finish(s.matrix.Cells(), r)
			Expect(s.writer.Update(func(w *report.Report) { *w = *r })).To(Succeed())
		}
		s.gmeasure()
	}
	Expect(s.writer.Close()).To(Succeed())
	_, err := report.Read(s.path)
	Expect(err).NotTo(HaveOccurred(), "the suite's own report does not pass the reader")
	GinkgoWriter.Printf("report: %s\n", s.path)
	// The run ends here, not in the later cleanup, so that what it leaves
	// (its reaper included) can be looked for.
	if s.run != nil {
		Expect(s.run.Close()).To(Succeed())
	}
	Eventually(hostsnap.OwnLeftovers).WithContext(ctx).WithTimeout(10*time.Second).Should(BeEmpty(), "labs left behind")
	after, err := hostsnap.Take()
	Expect(err).NotTo(HaveOccurred())
	Expect(after.Diff(s.snap)).To(BeEmpty(), "the host's own namespace changed")
}

// gmeasure records every detection time and false-positive count.
func (s *Suite) gmeasure() {
	exp := gmeasure.NewExperiment(s.name)
	for _, c := range s.matrix.Cells() {
		rec := c.Record()
		switch c.Kind {
		case report.KindDisturbance:
			exp.RecordValue("false positives", float64(rec.FalsePositives), gmeasure.Annotation(c.Describe()))
		case report.KindDetection:
			for _, smp := range rec.Samples {
				if smp.Detected {
					exp.RecordDuration("detect", time.Duration(*smp.Seconds*float64(time.Second)), gmeasure.Annotation(c.Describe()))
				}
			}
		}
	}
	if q, _ := s.matrix.CalibrationMs(); q != nil {
		exp.RecordValue("calibration p99", q.P99, gmeasure.Units("ms"))
	}
	AddReportEntry(exp.Name, exp)
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

// ExpectTheory asserts that every sample of a cell is what its theory
// says, by the one judge (report.Cell.JudgeSample), the same that colours
// the report's overview and that halfopen check and the gate matchers
// ask: no sample is an error; each detected sample is inside its own
// forecast or the cell's range, widened by report.PredictionTolerance,
// with a reason the cell declares; a censored sample only where theory
// (or its forecast) says so. A cell whose theory makes no claim is
// measured, not judged.
func ExpectTheory(c *harness.Cell) {
	GinkgoHelper()
	rec := c.Record()
	Expect(rec.Samples).NotTo(BeEmpty(), "cell %s has no samples", c.Describe())
	if c.Kind != report.KindDetection {
		Fail(fmt.Sprintf("cell %s is a %s cell with expectation %q: ExpectTheory is for detection cells", c.Describe(), c.Kind, c.Expect))
	}
	for i, s := range rec.Samples {
		v := rec.JudgeSample(s)
		Expect(v.Agrees).To(BeTrue(), "sample %d of %s %s (%s)", i, c.Describe(), v.Why, c.Prediction.Rule)
	}
}
