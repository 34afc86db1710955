package report

import "sort"

// The QoS metrics of Chen, Toueg and Aguilera ("On the quality of service
// of failure detectors", 2002) for the accuracy of a failure detector
// watching a live peer. They are pure functions of the observation window
// and the mistakes: no clock is read.

// MistakesPerConnHour returns n mistakes over windowS seconds of observed
// connection time as a rate per connection-hour; 0 for an empty window.
func MistakesPerConnHour(windowS float64, n int) float64 {
	if windowS <= 0 {
		return 0
	}
	return float64(n) * 3600 / windowS
}

// MeanRecurrence returns the mean mistake recurrence time T_MR: the mean
// time between the starts of consecutive mistakes of one time line. It is
// nil with fewer than two mistakes.
func MeanRecurrence(mistakes []Mistake) *float64 {
	return pooledRecurrence([][]Mistake{mistakes})
}

// pooledRecurrence is T_MR over several independent time lines: the mean
// of every gap between consecutive starts within a line.
func pooledRecurrence(lines [][]Mistake) *float64 {
	var sum float64
	gaps := 0
	for _, line := range lines {
		starts := make([]float64, len(line))
		for i, m := range line {
			starts[i] = m.StartS
		}
		sort.Float64s(starts)
		for i := 1; i < len(starts); i++ {
			sum += starts[i] - starts[i-1]
			gaps++
		}
	}
	if gaps == 0 {
		return nil
	}
	v := sum / float64(gaps)
	return &v
}

// MeanDuration returns the mean mistake duration T_M: the mean time from
// a wrong suspicion to trusting the peer again. It is nil without mistakes.
func MeanDuration(mistakes []Mistake) *float64 {
	if len(mistakes) == 0 {
		return nil
	}
	v := totalMistakeTime(mistakes) / float64(len(mistakes))
	return &v
}

// QueryAccuracy returns P_A, the probability that the detector's output at
// a random instant of the window is correct: 1 − (time spent in mistakes /
// window), clamped to [0, 1]. It is 1 for an empty window.
func QueryAccuracy(windowS float64, mistakes []Mistake) float64 {
	if windowS <= 0 {
		return 1
	}
	pa := 1 - totalMistakeTime(mistakes)/windowS
	switch {
	case pa < 0:
		return 0
	case pa > 1:
		return 1
	}
	return pa
}

func totalMistakeTime(mistakes []Mistake) float64 {
	var sum float64
	for _, m := range mistakes {
		if d := m.EndS - m.StartS; d > 0 {
			sum += d
		}
	}
	return sum
}

// ComputeQoS returns every metric for mistakes on one time line observed
// for windowS seconds.
func ComputeQoS(windowS float64, mistakes []Mistake) QoS {
	return QoS{
		WindowS:          windowS,
		MistakesPerHour:  MistakesPerConnHour(windowS, len(mistakes)),
		MistakeRecurS:    MeanRecurrence(mistakes),
		MistakeDurationS: MeanDuration(mistakes),
		QueryAccuracy:    QueryAccuracy(windowS, mistakes),
	}
}

// Summarise fills c.QoS from c.Mistakes and c.ObservedConnS; it sets it to
// nil when nothing was observed. Mistakes of different samples lie on
// different time lines (Mistake.Sample), so T_MR pools only the gaps
// within each sample. The rate counts max(FalsePositives, len(Mistakes)),
// since a false positive may have been counted without an interval.
func (c *Cell) Summarise() {
	if c.ObservedConnS <= 0 {
		c.QoS = nil
		return
	}
	bySample := map[int][]Mistake{}
	var order []int
	for _, m := range c.Mistakes {
		if _, ok := bySample[m.Sample]; !ok {
			order = append(order, m.Sample)
		}
		bySample[m.Sample] = append(bySample[m.Sample], m)
	}
	lines := make([][]Mistake, 0, len(order))
	for _, s := range order {
		lines = append(lines, bySample[s])
	}
	n := max(c.FalsePositives, len(c.Mistakes))
	q := QoS{
		WindowS:          c.ObservedConnS,
		MistakesPerHour:  MistakesPerConnHour(c.ObservedConnS, n),
		MistakeRecurS:    pooledRecurrence(lines),
		MistakeDurationS: MeanDuration(c.Mistakes),
		QueryAccuracy:    QueryAccuracy(c.ObservedConnS, c.Mistakes),
	}
	c.QoS = &q
}

// Summarise calls Cell.Summarise on every cell.
func (r *Report) Summarise() {
	for i := range r.Cells {
		r.Cells[i].Summarise()
	}
}
