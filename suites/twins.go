package suites

import (
	"os"
	"os/exec"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/harness"
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
func ExpectTwin(ref, twin *harness.Cell, tolerance time.Duration) {
	GinkgoHelper()
	ExpectTheory(twin)
	for i, s := range twin.Record().Samples {
		if ref.Expect == report.ExpectNever {
			Expect(s.Detected).To(BeFalse(), "sample %d of %s decided %q, where %s never does", i, twin.Describe(), s.Reason, ref.Describe())
			continue
		}
		Expect(s.Detected).To(BeTrue(), "sample %d of %s: not detected within %v (%s)", i, twin.Describe(), twin.Budget, s.Reason)
		got := time.Duration(*s.Seconds * float64(time.Second))
		lo, hi := ref.Prediction.Lo-tolerance, ref.Prediction.Hi+tolerance
		Expect(got).To(And(BeNumerically(">=", lo), BeNumerically("<=", hi)),
			"sample %d of %s: %v outside its twin %s's predicted [%v, %v] ± %v", i, twin.Describe(), got, ref.Describe(), ref.Prediction.Lo, ref.Prediction.Hi, tolerance)
	}
	if ref.Expect == report.ExpectNever {
		return
	}
	mr, mt := medianSeconds(ref), medianSeconds(twin)
	width := ref.Prediction.Hi - ref.Prediction.Lo + tolerance
	Expect(time.Duration((mr-mt)*float64(time.Second)).Abs()).To(BeNumerically("<=", width),
		"median %s %.3f s against %s %.3f s: more than %v apart", twin.Describe(), mt, ref.Describe(), mr, width)
}

// ExpectCensored asserts that no sample of a detection cell decided.
func ExpectCensored(c *harness.Cell) {
	GinkgoHelper()
	rec := c.Record()
	Expect(rec.Samples).NotTo(BeEmpty(), "cell %s has no samples", c.Describe())
	for i, s := range rec.Samples {
		Expect(s.Error).To(BeEmpty(), "sample %d of %s", i, c.Describe())
		Expect(s.Detected).To(BeFalse(), "sample %d of %s decided %q, where theory says it never does", i, c.Describe(), s.Reason)
	}
}

// medianSeconds is the nearest-rank median of a cell's detected samples.
func medianSeconds(c *harness.Cell) float64 {
	var xs []float64
	for _, s := range c.Record().Samples {
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

// Executable reports whether path is an executable file.
func Executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
