package report

import (
	"math"
	"sort"
)

// Stats summarises a cell's samples. Quantiles are nearest-rank: the
// q-quantile of n sorted values is the value of rank ceil(q·n) (1-based),
// so it is always a measured value, never an interpolation.
type Stats struct {
	N        int // every sample
	Detected int // samples that decided, with a time
	Censored int // samples that did not decide within the budget (no error)
	Errors   int // samples the harness could not measure

	// P50, P95 and Max are over the detected samples only, in seconds;
	// nil when none detected.
	P50, P95, Max *float64

	// CensoredP50 and CensoredP95 rank every sample without an error,
	// censored ones as slower than any detected one; +Inf means the
	// quantile lies among the censored samples ("> budget"). NaN when
	// there is no such sample.
	CensoredP50, CensoredP95 float64

	// Reasons counts the reasons of the detected samples.
	Reasons map[string]int
}

// Stats computes the cell's statistics.
func (c *Cell) Stats() Stats {
	st := Stats{N: len(c.Samples), Reasons: map[string]int{}}
	var times []float64
	for _, s := range c.Samples {
		switch {
		case s.Error != "":
			st.Errors++
		case s.Detected && s.Seconds != nil:
			st.Detected++
			times = append(times, *s.Seconds)
			st.Reasons[s.Reason]++
		default:
			st.Censored++
		}
	}
	sort.Float64s(times)
	if len(times) > 0 {
		p50, p95, max := NearestRank(times, 0.50), NearestRank(times, 0.95), times[len(times)-1]
		st.P50, st.P95, st.Max = &p50, &p95, &max
	}
	all := censoredValues(times, st.Censored)
	st.CensoredP50 = NearestRank(all, 0.50)
	st.CensoredP95 = NearestRank(all, 0.95)
	return st
}

// censoredValues returns the sorted times followed by one +Inf per
// censored sample.
func censoredValues(sorted []float64, censored int) []float64 {
	all := make([]float64, 0, len(sorted)+censored)
	all = append(all, sorted...)
	for range censored {
		all = append(all, math.Inf(1))
	}
	return all
}

// NearestRank returns the q-quantile (0 ≤ q ≤ 1) of sorted values by the
// nearest-rank method: the value of 1-based rank ceil(q·n), and the
// minimum for q = 0. It returns NaN for no values.
func NearestRank(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(q*float64(n) - 1e-9))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

func sortFloats(xs []float64) { sort.Float64s(xs) }

// QuantilesOf summarises values (milliseconds) by the same nearest-rank
// rule as every other quantile in a report.
func QuantilesOf(xs []float64) Quantiles {
	if len(xs) == 0 {
		return Quantiles{}
	}
	s := append([]float64(nil), xs...)
	sortFloats(s)
	return Quantiles{P50: NearestRank(s, 0.50), P99: NearestRank(s, 0.99), Max: s[len(s)-1], N: len(s)}
}
