package report

import (
	"strings"
	"testing"
)

func TestSampleDuration(t *testing.T) {
	detection := &Cell{Kind: KindDetection, BudgetS: 8}
	disturbance := &Cell{Kind: KindDisturbance, BudgetS: 8}
	for _, tc := range []struct {
		name string
		cell *Cell
		s    Sample
		want float64
	}{
		{"a detection lasts until the decision", detection, detected(3.25), 3.25},
		{"a censored sample lasts its budget", detection, censored(), 8},
		{"a disturbance lasts its window", disturbance, Sample{WindowS: 12, FalsePositives: 1}, 12},
		{"a failed sample measured nothing", detection, failed("lab: EPERM"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cell.SampleDurationS(tc.s); got != tc.want {
				t.Errorf("SampleDurationS = %g, want %g", got, tc.want)
			}
		})
	}
}

func TestThroughput(t *testing.T) {
	r := &Report{Environment: Environment{WallS: 2}, Cells: []Cell{
		{Kind: KindDetection, BudgetS: 8, Samples: []Sample{detected(3), censored(), failed("x")}},
		{Kind: KindDisturbance, Samples: []Sample{{WindowS: 9}}},
		{Kind: KindScale, Scale: &Scale{Conns: 100}},
	}}
	got := r.Throughput()
	if got.Samples != 3 || got.SummedS != 20 || got.Ratio() != 10 {
		t.Errorf("throughput %+v (ratio %g), want 3 samples summing 20 s over 2 s: 10", got, got.Ratio())
	}
	if s := got.String(); !strings.Contains(s, "3 samples") || !strings.Contains(s, "10.0 at once") {
		t.Errorf("String() = %q", s)
	}
	if (Throughput{SummedS: 5}).Ratio() != 0 || !strings.Contains((Throughput{Samples: 1}).String(), "no wall time") {
		t.Error("without a wall time there is no ratio")
	}
}

// Merged shards measured one after the other add their wall times, and the
// calibration of the whole is bounded from above per quantile.
func TestMergeThroughputAndCalibration(t *testing.T) {
	a, b := shards(t)
	a.Environment.WallS, b.Environment.WallS = 10, 30
	a.Environment.Pool, b.Environment.Pool = 12, 30
	a.Environment.CPUIdle, b.Environment.CPUIdle = "polling", "halting (no PM QoS request)"
	a.Environment.CalibrationErrorMs = &Quantiles{P50: 0.1, P99: 0.9, Max: 4, N: 100}
	b.Environment.CalibrationErrorMs = &Quantiles{P50: 0.2, P99: 0.5, Max: 7, N: 300}
	a.Environment.Calibration = []CalibrationProbe{{Name: "fin", ErrorMs: Quantiles{P99: 0.3, N: 3}}}
	b.Environment.Calibration = []CalibrationProbe{{Name: "fin", ErrorMs: Quantiles{P99: 0.4, N: 2}}, {Name: "scheduled", ErrorMs: Quantiles{P99: 1, N: 9}}}
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	e := m.Environment
	if e.WallS != 40 || e.Pool != 30 {
		t.Errorf("wall %g s, pool %d; want 40 s and 30", e.WallS, e.Pool)
	}
	if e.CPUIdle != "polling; halting (no PM QoS request)" {
		t.Errorf("idle CPUs %q", e.CPUIdle)
	}
	if q := *e.CalibrationErrorMs; q != (Quantiles{P50: 0.2, P99: 0.9, Max: 7, N: 400}) {
		t.Errorf("calibration %+v", q)
	}
	if len(e.Calibration) != 2 || e.Calibration[0].ErrorMs != (Quantiles{P99: 0.4, N: 5}) {
		t.Errorf("probes %+v", e.Calibration)
	}
	if a.Environment.Calibration[0].ErrorMs.N != 3 {
		t.Error("Merge modified its input")
	}
}

// Without histograms, what Merge gives is a bound never below the
// quantile of the errors pooled.
func TestMergedQuantilesWithoutHistogramsBoundThePooledOnes(t *testing.T) {
	xs := []float64{0.1, 0.2, 0.3, 5, 0.1, 0.1, 0.4}
	ys := []float64{0.9, 0.8, 0.7, 0.6, 0.1, 2}
	bound := mergeQuantiles(QuantilesOf(xs), QuantilesOf(ys))
	pooled := QuantilesOf(append(append([]float64(nil), xs...), ys...))
	if pooled.P50 > bound.P50 || pooled.P99 > bound.P99 || pooled.Max != bound.Max || pooled.N != bound.N {
		t.Errorf("pooled %+v, bound %+v", pooled, bound)
	}
}
