// Package suites holds what halfopen's Ginkgo suites share: running a matrix
// of cells through the harness's bounded pool of fresh labs, recording every
// sample in a gmeasure experiment and the v1 report, and asserting what
// theory says of each cell. Each suite lives in a directory below:
//
//	[peer host] ==veth== [router host] ==veth== [watcher host]
//	                    (forwarding, nftables, conntrack,
//	                     optional Toxiproxy process)
//
// Suites that need the lab carry Label("netns") and skip, with the
// preflight's one sentence, on a machine that cannot run it.
package suites

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// Tolerance is added on both sides of a predicted range when a suite
// asserts that a detected sample falls inside it: process wake-ups and
// scheduling on a busy 2-core machine, not the kernel's timers.
var Tolerance = 150 * time.Millisecond

// RequireLab skips the current spec with the preflight's sentence when the
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

// RunCells runs the cells through a fresh run's pool, writing the report at
// path sample by sample, and returns the resolved cells with their samples.
// The run is torn down when the calling node ends, even on failure or
// interrupt; a gmeasure experiment named after the report holds every
// detection time.
//
// finish, if given, may add to the report (a frontier) before it is closed.
func RunCells(ctx context.Context, name string, configs []harness.CellConfig, pool int, finish ...func([]*harness.Cell, *report.Report)) []*harness.Cell {
	configs, err := harness.Shard(configs, os.Getenv("HALFOPEN_SHARD"))
	Expect(err).NotTo(HaveOccurred())
	if len(configs) == 0 {
		Skip("this shard holds no cell of " + name)
	}
	path := ReportPath(name)
	run := harness.NewRun()
	DeferCleanup(func(context.Context) error { return run.Close() }, NodeTimeout(30*time.Second))
	w, err := report.Create(path, &report.Report{
		Schema: report.SchemaV1, Profile: profile(), Started: time.Now().UTC(), Seed: 42,
		Environment: report.Environment{Kernel: harness.Kernel(), Go: harness.GoVersion(), Halfopen: harness.VersionString()},
	})
	Expect(err).NotTo(HaveOccurred())
	if s := os.Getenv("HALFOPEN_SHARD"); s != "" {
		Expect(w.Update(func(r *report.Report) { r.Shard = s })).To(Succeed())
	}
	m, err := harness.NewMatrix(run, configs, harness.Options{Pool: pool, Seed: 42, Report: w, Progress: func(p harness.Progress) {
		// Streamed as it lands under `ginkgo -v` (make test-faults).
		GinkgoWriter.Println(name + " " + p.String())
	}})
	Expect(err).NotTo(HaveOccurred())
	Expect(m.Run(ctx)).To(Succeed())
	for _, fn := range finish {
		Expect(w.Update(func(r *report.Report) { fn(m.Cells(), r) })).To(Succeed())
	}
	Expect(w.Close()).To(Succeed())
	// What the harness writes, the validating reader must accept.
	_, err = report.Read(path)
	Expect(err).NotTo(HaveOccurred(), "the suite's own report does not pass the reader")
	exp := gmeasure.NewExperiment(name)
	for _, c := range m.Cells() {
		if c.Kind != report.KindDetection {
			if c.Kind == report.KindDisturbance {
				exp.RecordValue("false positives", float64(c.FalsePositives), gmeasure.Annotation(c.Describe()))
			}
			continue
		}
		for _, s := range c.Samples {
			if s.Detected {
				exp.RecordDuration("detect", time.Duration(*s.Seconds*float64(time.Second)), gmeasure.Annotation(c.Describe()))
			}
		}
	}
	if q, _ := m.CalibrationMs(); q != nil {
		exp.RecordValue("calibration p99", q.P99, gmeasure.Units("ms"))
	}
	AddReportEntry(exp.Name, exp)
	GinkgoWriter.Printf("report: %s\n", path)
	return m.Cells()
}

func profile() string {
	if p := os.Getenv("PROFILE"); p != "" {
		return p
	}
	return "quick"
}

// Find returns the cell for a detector, fault and side.
func Find(cells []*harness.Cell, detector, fault string, side harness.Side) *harness.Cell {
	for _, c := range cells {
		if c.Config.Detector == detector && c.Config.Fault == fault && c.Config.Side == side {
			return c
		}
	}
	if os.Getenv("HALFOPEN_SHARD") != "" {
		Skip(fmt.Sprintf("cell %s × %s × %s belongs to another shard", detector, fault, side))
	}
	Fail(fmt.Sprintf("no cell %s × %s × %s", detector, fault, side))
	return nil
}

// ExpectTheory asserts what theory says of a detection cell: no sample is
// an error; when theory says "never", every sample is censored and none is a
// number; otherwise every sample is detected, inside the predicted range
// widened by Tolerance on each side, with one of the predicted reasons.
func ExpectTheory(c *harness.Cell) {
	GinkgoHelper()
	Expect(c.Samples).NotTo(BeEmpty(), "cell %s has no samples", c.Describe())
	for i, s := range c.Samples {
		Expect(s.Error).To(BeEmpty(), "sample %d of %s", i, c.Describe())
		switch c.Expect {
		case "never":
			Expect(s.Detected).To(BeFalse(), "sample %d of %s: theory says a silent peer is never detected, but it decided %q after %v s", i, c.Describe(), s.Reason, s.Seconds)
			Expect(s.Seconds).To(BeNil())
			Expect(s.Reason).To(Equal("budget"))
		case "detect":
			Expect(s.Detected).To(BeTrue(), "sample %d of %s: not detected within %v (%s)", i, c.Describe(), c.Budget, s.Reason)
			lo := c.Prediction.Lo - Tolerance
			hi := c.Prediction.Hi + Tolerance
			got := time.Duration(*s.Seconds * float64(time.Second))
			Expect(got).To(And(BeNumerically(">=", lo), BeNumerically("<=", hi)),
				"sample %d of %s: %v outside the predicted [%v, %v] ± %v (%s)", i, c.Describe(), got, c.Prediction.Lo, c.Prediction.Hi, Tolerance, c.Prediction.Rule)
			Expect(slices.Contains(c.Prediction.Reasons, s.Reason)).To(BeTrue(),
				"sample %d of %s: reason %q, theory allows %v", i, c.Describe(), s.Reason, c.Prediction.Reasons)
		}
	}
}
