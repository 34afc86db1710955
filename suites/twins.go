package suites

import (
	"os/exec"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/report"
)

// BuildExamples builds the C example detectors with `make -C dir` and fails
// the spec with make's output if it cannot.
func BuildExamples(dir string) {
	GinkgoHelper()
	out, err := exec.Command("make", "-C", dir).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "make -C %s: %s", dir, out)
}

// ExpectTwin asserts that an implementation of a strategy in another
// language (twin) does what halfopen's own detector (ref) does on the same
// fault and side. The twin is judged first by its own theory, by the one
// judge (ExpectTheory), exactly as the report's overview judges it, so the
// suite and the overview cannot disagree; then against ref: when ref's
// theory says "never", no detection; otherwise every sample detected
// inside ref's predicted range widened by tolerance on each side, and the
// two medians no further apart than the range's width plus tolerance.
func ExpectTwin(ref, twin *gate.Result, tolerance time.Duration) {
	GinkgoHelper()
	ExpectTheory(twin)
	rec := ref.Record()
	var predLo, predHi time.Duration
	if p := rec.PredictedS; p != nil {
		predLo, predHi = seconds(p[0]), seconds(p[1])
	}
	for i, s := range twin.Samples {
		if rec.Expect == report.ExpectNever {
			Expect(s.Detected).To(BeFalse(), "sample %d of %s decided %q, where %s never does", i, twin.Describe, s.Reason, ref.Describe)
			continue
		}
		Expect(s.Detected).To(BeTrue(), "sample %d of %s: not detected within %v (%s)", i, twin.Describe, twin.Budget, s.Reason)
		lo, hi := predLo-tolerance, predHi+tolerance
		Expect(s.After).To(And(BeNumerically(">=", lo), BeNumerically("<=", hi)),
			"sample %d of %s: %v outside its twin %s's predicted [%v, %v] ± %v", i, twin.Describe, s.After, ref.Describe, predLo, predHi, tolerance)
	}
	if rec.Expect == report.ExpectNever {
		return
	}
	mr, mt := medianSeconds(ref), medianSeconds(twin)
	width := predHi - predLo + tolerance
	Expect(seconds(mr-mt).Abs()).To(BeNumerically("<=", width),
		"median %s %.3f s against %s %.3f s: more than %v apart", twin.Describe, mt, ref.Describe, mr, width)
}

// medianSeconds is the nearest-rank median of a cell's detected samples.
func medianSeconds(r *gate.Result) float64 {
	var xs []float64
	for _, s := range r.Record().Samples {
		if s.Seconds != nil {
			xs = append(xs, *s.Seconds)
		}
	}
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	return report.NearestRank(xs, 0.5)
}

// seconds is s seconds as a duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
