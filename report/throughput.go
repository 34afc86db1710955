package report

import "fmt"

// Throughput says how well a run overlapped its samples' waiting: a sample
// spends nearly all its life waiting for a kernel timer or a heart-beat, so
// many run at once, and the samples' summed durations over the wall time
// the run took measuring is how many waited at once on average.
type Throughput struct {
	Samples int     // samples measured (errors left out)
	SummedS float64 // their summed durations, seconds (SampleDurationS)
	WallS   float64 // the wall time the runs took measuring, seconds (Environment.WallS)
}

// Ratio is SummedS/WallS, or 0 when no wall time was recorded.
func (t Throughput) Ratio() float64 {
	if t.WallS <= 0 {
		return 0
	}
	return t.SummedS / t.WallS
}

// SampleDurationS is how long a sample of c kept its lab measuring: the
// observation window of a disturbance, the detection time of a detected
// sample, the budget of a censored one; 0 for a sample that failed.
func (c *Cell) SampleDurationS(s Sample) float64 {
	switch {
	case s.Error != "":
		return 0
	case c.Kind == KindDisturbance:
		return s.WindowS
	case s.Detected && s.Seconds != nil:
		return *s.Seconds
	}
	return c.BudgetS
}

// Throughput sums the durations of every sample of r against the wall time
// its runs recorded. Cells without samples (scale cells) add nothing.
func (r *Report) Throughput() Throughput {
	t := Throughput{WallS: r.Environment.WallS}
	for i := range r.Cells {
		t.Add(&r.Cells[i])
	}
	return t
}

// Add counts the samples of c that did not fail, and their durations.
func (t *Throughput) Add(c *Cell) {
	for _, s := range c.Samples {
		if s.Error == "" {
			t.Samples++
			t.SummedS += c.SampleDurationS(s)
		}
	}
}

// String says the throughput in one line, e.g. "2160 samples, their
// durations summed 6150 s in 615 s of measuring: 10.0 at once"; without a
// recorded wall time it says so.
func (t Throughput) String() string {
	s := fmt.Sprintf("%d samples, their durations summed %s", t.Samples, FormatSeconds(t.SummedS))
	if t.WallS <= 0 {
		return s + " (no wall time recorded)"
	}
	return s + fmt.Sprintf(" in %s of measuring: %.1f at once", FormatSeconds(t.WallS), t.Ratio())
}
