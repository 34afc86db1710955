package scale_test

import (
	"testing"
	"time"
)

func TestPhaseGap(t *testing.T) {
	ms := int64(time.Millisecond)
	for _, tc := range []struct {
		name string
		ns   []int64
		want time.Duration
	}{
		{"none", nil, period},
		{"one", []int64{7 * ms}, period},
		{"evenly over one period", []int64{0, 250 * ms, 500 * ms, 750 * ms}, 250 * time.Millisecond},
		{"evenly over two periods", []int64{0, 500 * ms, 1250 * ms, 1750 * ms}, 250 * time.Millisecond},
		{"bunched after a stall", []int64{1000 * ms, 1001 * ms, 1002 * ms}, 998 * time.Millisecond},
		{"a hole in one cycle is filled by the next", []int64{0, 100 * ms, 600 * ms, 1300 * ms, 1400 * ms, 1800 * ms}, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := phaseGap(tc.ns, period); got != tc.want {
				t.Errorf("phaseGap(%v) = %v, want %v", tc.ns, got, tc.want)
			}
		})
	}
}

func TestSpreadFor(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{1, period}, {100, period}, {dialRate, period}, {dialRate + 1, 2 * period}, {10000, 3 * period},
	} {
		if got := spreadFor(tc.n); got != tc.want {
			t.Errorf("spreadFor(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}
