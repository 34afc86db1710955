package report

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func nearPtr(p *float64, want float64, wantNil bool) bool {
	if wantNil {
		return p == nil
	}
	return p != nil && near(*p, want)
}

func TestComputeQoS(t *testing.T) {
	tests := []struct {
		name     string
		window   float64
		mistakes []Mistake
		perHour  float64
		tmr      float64
		tmrNil   bool
		tm       float64
		tmNil    bool
		pa       float64
	}{
		{name: "no mistakes", window: 3600, perHour: 0, tmrNil: true, tmNil: true, pa: 1},
		{name: "one mistake", window: 3600, mistakes: []Mistake{{StartS: 10, EndS: 12}},
			perHour: 1, tmrNil: true, tm: 2, pa: 1 - 2.0/3600},
		// starts 10, 110, 410: gaps 100 and 300; durations 1, 3, 2.
		{name: "three mistakes", window: 1800, mistakes: []Mistake{{StartS: 10, EndS: 11}, {StartS: 110, EndS: 113}, {StartS: 410, EndS: 412}},
			perHour: 6, tmr: 200, tm: 2, pa: 1 - 6.0/1800},
		{name: "unsorted", window: 1800, mistakes: []Mistake{{StartS: 410, EndS: 412}, {StartS: 10, EndS: 11}, {StartS: 110, EndS: 113}},
			perHour: 6, tmr: 200, tm: 2, pa: 1 - 6.0/1800},
		{name: "instant mistakes", window: 60, mistakes: []Mistake{{StartS: 5, EndS: 5}, {StartS: 35, EndS: 35}},
			perHour: 120, tmr: 30, tm: 0, pa: 1},
		{name: "wrong all the time", window: 10, mistakes: []Mistake{{StartS: 0, EndS: 10}},
			perHour: 360, tmrNil: true, tm: 10, pa: 0},
		{name: "empty window", window: 0, mistakes: []Mistake{{StartS: 0, EndS: 1}},
			perHour: 0, tmrNil: true, tm: 1, pa: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := ComputeQoS(tt.window, tt.mistakes)
			if q.WindowS != tt.window || !near(q.MistakesPerHour, tt.perHour) || !near(q.QueryAccuracy, tt.pa) {
				t.Errorf("window %v rate %v P_A %v, want %v %v %v", q.WindowS, q.MistakesPerHour, q.QueryAccuracy, tt.window, tt.perHour, tt.pa)
			}
			if !nearPtr(q.MistakeRecurS, tt.tmr, tt.tmrNil) {
				t.Errorf("T_MR %v, want %v (nil %v)", q.MistakeRecurS, tt.tmr, tt.tmrNil)
			}
			if !nearPtr(q.MistakeDurationS, tt.tm, tt.tmNil) {
				t.Errorf("T_M %v, want %v (nil %v)", q.MistakeDurationS, tt.tm, tt.tmNil)
			}
		})
	}
}

func TestCellSummarise(t *testing.T) {
	r := testdataReport(t)
	c := &r.Cells[2]
	c.Summarise()
	// 2 mistakes in 240 s: 30 per hour; starts 30.2 and 45.2; durations 0.7
	// and 0.3.
	q := c.QoS
	if q == nil || !near(q.MistakesPerHour, 30) || !nearPtr(q.MistakeRecurS, 15, false) || !nearPtr(q.MistakeDurationS, 0.5, false) || !near(q.QueryAccuracy, 1-1.0/240) {
		t.Errorf("QoS %+v", q)
	}

	// Mistakes of two samples lie on two time lines: the gaps are 10 (sample
	// 0) and 30 (sample 1), never the 5 between 5 and 10 of different lines.
	c = &Cell{ObservedConnS: 120, FalsePositives: 5, Samples: []Sample{{}, {}}, Mistakes: []Mistake{
		{StartS: 10, EndS: 11, Sample: 0}, {StartS: 5, EndS: 6, Sample: 1},
		{StartS: 20, EndS: 21, Sample: 0}, {StartS: 35, EndS: 36, Sample: 1},
	}}
	c.Summarise()
	if !nearPtr(c.QoS.MistakeRecurS, 20, false) {
		t.Errorf("pooled T_MR %v, want 20", *c.QoS.MistakeRecurS)
	}
	// A false positive counted without an interval still counts in the rate.
	if !near(c.QoS.MistakesPerHour, 5*3600/120.0) {
		t.Errorf("rate %v, want %v", c.QoS.MistakesPerHour, 5*3600/120.0)
	}

	c = &Cell{QoS: &QoS{}}
	c.Summarise()
	if c.QoS != nil {
		t.Error("a cell with no observed time kept a QoS")
	}
}

func TestQuantilesOfIsNearestRank(t *testing.T) {
	q := QuantilesOf([]float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10})
	if q.P50 != 5 || q.P99 != 10 || q.Max != 10 || q.N != 10 {
		t.Errorf("quantiles = %+v, want p50 5 (rank 5 of 10), p99 10, max 10", q)
	}
}
