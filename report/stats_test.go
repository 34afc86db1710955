package report

import (
	"math"
	"testing"
)

func TestNearestRank(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{xs, 0, 1},
		{xs, 0.5, 5},   // rank ceil(5) = 5
		{xs, 0.95, 10}, // rank ceil(9.5) = 10
		{xs, 0.9, 9},   // rank ceil(9) = 9, not 10: no float drift
		{xs, 1, 10},
		{[]float64{4}, 0.5, 4},
		{[]float64{1, 2, 3}, 0.5, 2},
		{[]float64{1, 2, 3, 4}, 0.5, 2},
		{[]float64{1, 2, math.Inf(1)}, 0.95, math.Inf(1)},
	}
	for _, tt := range tests {
		if got := NearestRank(tt.xs, tt.q); got != tt.want {
			t.Errorf("NearestRank(%v, %v) = %v, want %v", tt.xs, tt.q, got, tt.want)
		}
	}
	if got := NearestRank(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("NearestRank(nil) = %v, want NaN", got)
	}
}

func TestCellStats(t *testing.T) {
	r := testdataReport(t)
	tests := []struct {
		cell                          int
		n, detected, censored, errors int
		p50, p95, max                 float64
		cp50, cp95                    float64
		reasons                       map[string]int
	}{
		// 3.004 3.207 3.318 3.512 3.766 3.981
		{0, 6, 6, 0, 0, 3.318, 3.981, 3.981, 3.318, 3.981, map[string]int{"ETIMEDOUT": 6}},
		// 0.417 0.451 0.532 0.598, censored, error
		{1, 6, 4, 1, 1, 0.451, 0.598, 0.598, 0.532, math.Inf(1), map[string]int{"heartbeat-timeout": 4}},
	}
	for _, tt := range tests {
		st := r.Cells[tt.cell].Stats()
		if st.N != tt.n || st.Detected != tt.detected || st.Censored != tt.censored || st.Errors != tt.errors {
			t.Errorf("cell %d: n %d detected %d censored %d errors %d", tt.cell, st.N, st.Detected, st.Censored, st.Errors)
		}
		if *st.P50 != tt.p50 || *st.P95 != tt.p95 || *st.Max != tt.max {
			t.Errorf("cell %d: p50 %v p95 %v max %v, want %v %v %v", tt.cell, *st.P50, *st.P95, *st.Max, tt.p50, tt.p95, tt.max)
		}
		if st.CensoredP50 != tt.cp50 || st.CensoredP95 != tt.cp95 {
			t.Errorf("cell %d: censoring-aware p50 %v p95 %v, want %v %v", tt.cell, st.CensoredP50, st.CensoredP95, tt.cp50, tt.cp95)
		}
		for k, v := range tt.reasons {
			if st.Reasons[k] != v {
				t.Errorf("cell %d: reason %s counted %d, want %d", tt.cell, k, st.Reasons[k], v)
			}
		}
	}
	empty := (&Cell{}).Stats()
	if empty.P50 != nil || !math.IsNaN(empty.CensoredP50) {
		t.Errorf("empty cell: p50 %v, censoring-aware %v", empty.P50, empty.CensoredP50)
	}
	allCensored := (&Cell{Samples: []Sample{censored(), censored()}}).Stats()
	if allCensored.P50 != nil || !math.IsInf(allCensored.CensoredP50, 1) || allCensored.Censored != 2 {
		t.Errorf("all censored: %+v", allCensored)
	}
}
