package report

import (
	"math"
	"sort"
)

// Histogram counts a distribution of milliseconds in bins of two
// significant digits of microseconds (1 µs wide below 100 µs, 10 µs below
// 1 ms, 100 µs below 10 ms, and so on), so that the parts of one run (its
// suites and gates, each with its own probe) merge into the quantiles of
// all their values together rather than a bound on them: a quantile read
// from it is the upper edge of the bin that holds the value of its rank,
// at most 1 % (or 1 µs) above the value itself.
type Histogram struct {
	// UpperUs holds the bins' upper edges in µs, ascending; Counts the
	// values in each (none is zero).
	UpperUs []int64 `json:"upper_us"`
	Counts  []int   `json:"counts"`
}

// binUpperUs is the upper edge, in µs, of the bin holding ms.
func binUpperUs(ms float64) int64 {
	us := int64(math.Ceil(ms*1000 - 1e-9))
	if us < 100 {
		return max(us, 0)
	}
	step := int64(1)
	for us/step >= 100 {
		step *= 10
	}
	return (us + step - 1) / step * step
}

// HistogramOf bins values (milliseconds); nil for none.
func HistogramOf(xs []float64) *Histogram {
	if len(xs) == 0 {
		return nil
	}
	counts := map[int64]int{}
	for _, x := range xs {
		counts[binUpperUs(x)]++
	}
	return histogramFromCounts(counts)
}

// histogramFromCounts orders the bins of counts (upper edge in µs →
// values) by their edge.
func histogramFromCounts(counts map[int64]int) *Histogram {
	h := &Histogram{}
	for up := range counts {
		h.UpperUs = append(h.UpperUs, up)
	}
	sort.Slice(h.UpperUs, func(i, j int) bool { return h.UpperUs[i] < h.UpperUs[j] })
	for _, up := range h.UpperUs {
		h.Counts = append(h.Counts, counts[up])
	}
	return h
}

// holds says whether h is a well-formed histogram of n values: edges
// ascending, as many counts as edges, each positive, summing to n.
func (h *Histogram) holds(n int) bool {
	if h == nil || n <= 0 || len(h.UpperUs) != len(h.Counts) {
		return false
	}
	sum := 0
	for i, c := range h.Counts {
		if c <= 0 || (i > 0 && h.UpperUs[i] <= h.UpperUs[i-1]) {
			return false
		}
		sum += c
	}
	return sum == n
}

// plus is the histogram of both sets of values.
func (h *Histogram) plus(o *Histogram) *Histogram {
	counts := map[int64]int{}
	for _, g := range []*Histogram{h, o} {
		for i, up := range g.UpperUs {
			counts[up] += g.Counts[i]
		}
	}
	return histogramFromCounts(counts)
}

// quantile is the nearest-rank q-quantile (NearestRank's rank) of the n
// values h holds, in milliseconds: its bin's upper edge.
func (h *Histogram) quantile(q float64, n int) float64 {
	rank := min(max(int(math.Ceil(q*float64(n)-1e-9)), 1), n)
	seen := 0
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			return float64(h.UpperUs[i]) / 1000
		}
	}
	return float64(h.UpperUs[len(h.UpperUs)-1]) / 1000
}

// MergeableQuantilesOf is QuantilesOf with the values' histogram, for the
// quantiles that the parts of a run merge (the harness's error, the
// probe's).
func MergeableQuantilesOf(xs []float64) Quantiles {
	q := QuantilesOf(xs)
	q.Hist = HistogramOf(xs)
	return q
}

// mergeQuantiles summarises two parts' values together. With both
// histograms, the quantiles are those of all the values (to the bin: at
// most 1 % or 1 µs above); without, each quantile is the larger of the
// two, a bound from above (in each part at least that share of values is
// at most its quantile, so in the union too). Max is exact either way.
func mergeQuantiles(a, b Quantiles) Quantiles {
	if a.Hist.holds(a.N) && b.Hist.holds(b.N) {
		h, n := a.Hist.plus(b.Hist), a.N+b.N
		return Quantiles{P50: h.quantile(0.50, n), P99: h.quantile(0.99, n), Max: max(a.Max, b.Max), N: n, Hist: h}
	}
	return Quantiles{P50: max(a.P50, b.P50), P99: max(a.P99, b.P99), Max: max(a.Max, b.Max), N: a.N + b.N}
}
