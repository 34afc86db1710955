package report

import (
	"math/rand/v2"
	"testing"
)

func TestHistogramBins(t *testing.T) {
	for _, tc := range []struct {
		ms   float64
		want int64
	}{
		{0, 0},
		{0.0004, 1},
		{0.05, 50},
		{0.0999, 100},
		{0.1, 100},
		{0.1234, 130},
		{0.999, 1000},
		{1.2345, 1300},
		{38.786681, 39000},
		{87.285, 88000},
	} {
		if got := binUpperUs(tc.ms); got != tc.want {
			t.Errorf("binUpperUs(%g) = %d µs, want %d", tc.ms, got, tc.want)
		}
	}
}

// The parts of a run merged by their histograms give the quantiles of all
// their values, to the bin, where the largest of the parts' quantiles
// lets a small part with a few late values speak for the run (machine C,
// 06:16 run: a 31 s gate's 581 datagrams had p99 0.866 ms, while every
// other part's p99 was 0.39–0.54 ms).
func TestMergedQuantilesAreThoseOfAllValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]float64, 30000)
	for i := range big {
		big[i] = 0.15 + rng.ExpFloat64()*0.06
	}
	small := make([]float64, 580)
	for i := range small {
		small[i] = 0.15 + rng.ExpFloat64()*0.06
		if i%60 == 0 {
			small[i] = 0.9 + rng.Float64()*4
		}
	}
	a, b := shards(t)
	a.Environment.ProbeUnloadedMs = &Quantiles{P50: 0.16, P99: 0.34, N: 1000}
	b.Environment.ProbeUnloadedMs = &Quantiles{P50: 0.16, P99: 0.34, N: 1000}
	qa, qb := MergeableQuantilesOf(big), MergeableQuantilesOf(small)
	a.Environment.ProbeLoadedMs, b.Environment.ProbeLoadedMs = &qa, &qb
	a.Environment.CalibrationErrorMs, b.Environment.CalibrationErrorMs = &qa, &qb
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	all := QuantilesOf(append(append([]float64(nil), big...), small...))
	for name, got := range map[string]*Quantiles{"loaded probe": m.Environment.ProbeLoadedMs, "harness error": m.Environment.CalibrationErrorMs} {
		if got.N != all.N || got.Max != all.Max {
			t.Errorf("%s: n %d, max %g; want %d, %g", name, got.N, got.Max, all.N, all.Max)
		}
		if want := float64(binUpperUs(all.P99)) / 1000; got.P99 != want {
			t.Errorf("%s: p99 %g ms, want %g (the pooled %g to its bin)", name, got.P99, want, all.P99)
		}
		if want := float64(binUpperUs(all.P50)) / 1000; got.P50 != want {
			t.Errorf("%s: p50 %g ms, want %g (the pooled %g to its bin)", name, got.P50, want, all.P50)
		}
	}
	if qb.P99 <= m.Environment.ProbeLoadedMs.P99+0.1 {
		t.Fatalf("the test's small part has p99 %g, not far above the run's %g", qb.P99, m.Environment.ProbeLoadedMs.P99)
	}
	if inc, ok := m.Environment.ProbeIncreaseMs(); !ok || inc > 0.3 {
		t.Errorf("the run's increase is %g ms (ok %t): the small part's tail was taken for the run's", inc, ok)
	}
	if qa.Hist.holds(qa.N+1) || (&Histogram{UpperUs: []int64{2, 1}, Counts: []int{1, 1}}).holds(2) {
		t.Error("a histogram is taken for one of a different count, or with edges out of order")
	}
}
