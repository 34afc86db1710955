package suites

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// disturbance returns a disturbance cell's record and its fault's window,
// failing the spec when the cell is not a disturbance or has no sample.
func disturbance(r *gate.Result) (report.Cell, time.Duration) {
	GinkgoHelper()
	rec := r.Record()
	Expect(rec.Kind).To(Equal(report.KindDisturbance), "cell %s is not a disturbance", r.Describe)
	Expect(rec.Samples).NotTo(BeEmpty(), "cell %s has no samples", r.Describe)
	f, _, err := harness.NewFault(rec.Fault)
	Expect(err).NotTo(HaveOccurred(), "cell %s", r.Describe)
	var window time.Duration
	if w, ok := f.(harness.Windowed); ok {
		window = w.Window()
	}
	return rec, window
}

// ExpectSurvived asserts what a disturbance cell must show when its
// detector tolerates the disturbance: no sample is an error, no decision
// was made (zero false positives), and the connection was observed for at
// least the disturbance window in every sample.
func ExpectSurvived(r *gate.Result) {
	GinkgoHelper()
	rec, window := disturbance(r)
	// The claim is judged as a theory "survive" would be.
	claim := rec
	claim.Expect = report.ExpectSurvive
	for i, s := range rec.Samples {
		v := claim.JudgeSample(s)
		Expect(v.Agrees).To(BeTrue(), "sample %d of %s %s (%s%s)", i, r.Describe, v.Why, s.Reason, firstMistake(rec, i))
		Expect(s.Reason).To(Equal("survived"), "sample %d of %s", i, r.Describe)
		Expect(s.WindowS).To(BeNumerically(">=", window.Seconds()), "sample %d of %s: observed %v s, shorter than the window %v", i, r.Describe, s.WindowS, window)
	}
	Expect(rec.FalsePositives).To(BeZero())
	Expect(rec.ObservedConnS).To(BeNumerically(">=", float64(len(rec.Samples))*window.Seconds()))
}

// firstMistake says when sample i's first false positive began, after the
// disturbance started, or "" when none was recorded.
func firstMistake(rec report.Cell, i int) string {
	for _, m := range rec.Mistakes {
		if m.Sample == i {
			return ", the first " + report.FormatSeconds(m.StartS) + " into the disturbance"
		}
	}
	return ""
}

// ExpectFalsePositives asserts that a disturbance cell's detector wrongly
// dropped the healthy connection in every sample, that each mistake was
// recorded with when it began and ended (the watcher reconnected), and
// that the connection was observed throughout.
func ExpectFalsePositives(r *gate.Result) {
	GinkgoHelper()
	rec, _ := disturbance(r)
	// The claim is judged as a theory "false-positives" would be.
	claim := rec
	claim.Expect = report.ExpectFalsePositives
	for i, s := range rec.Samples {
		v := claim.JudgeSample(s)
		Expect(v.Agrees).To(BeTrue(), "sample %d of %s %s", i, r.Describe, v.Why)
		Expect(s.FalsePositives).To(BeNumerically(">=", 1), "sample %d of %s: the disturbance outlasts the detector's tolerance, but it survived", i, r.Describe)
		Expect(s.WindowS).To(BeNumerically(">", 0))
	}
	Expect(len(rec.Mistakes)).To(BeNumerically(">=", len(rec.Samples)))
	for _, m := range rec.Mistakes {
		Expect(m.EndS).To(BeNumerically(">=", m.StartS), "mistake %+v of %s", m, r.Describe)
	}
	Expect(rec.FalsePositives).To(BeNumerically(">=", len(rec.Samples)))
}

// ExpectDisturbanceTheory asserts what theory says of a disturbance cell
// (harness disturbanceTheory), by the one judge (gate.AgreeWithTheory,
// report.Cell.JudgeSample) for every sample, then what was observed: that
// it survives, or makes false positives in every sample, each with its
// window and mistakes; where theory makes no claim, only that every
// sample was measured.
func ExpectDisturbanceTheory(r *gate.Result) {
	GinkgoHelper()
	rec, _ := disturbance(r)
	for i, s := range rec.Samples {
		v := rec.JudgeSample(s)
		Expect(v.Agrees).To(BeTrue(), "sample %d of %s %s%s", i, r.Describe, v.Why, firstMistake(rec, i))
	}
	switch rec.Expect {
	case report.ExpectSurvive:
		ExpectSurvived(r)
	case report.ExpectFalsePositives:
		ExpectFalsePositives(r)
	}
}

// ExpectCellTheory is ExpectTheory for a detection cell and
// ExpectDisturbanceTheory for a disturbance: every cell of a matrix
// judged as its theory says.
func ExpectCellTheory(r *gate.Result) {
	GinkgoHelper()
	if r.Disturbance {
		ExpectDisturbanceTheory(r)
		return
	}
	ExpectTheory(r)
}
