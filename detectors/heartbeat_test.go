package detectors

import (
	"testing"
	"time"
)

func TestHeartbeatClockDeadline(t *testing.T) {
	const ms = int64(time.Millisecond)
	for _, tc := range []struct {
		name  string
		heard []int64 // instants a byte arrived, in ms
		now   int64
		left  time.Duration
	}{
		{"fresh", nil, 0, 600 * time.Millisecond},
		{"silent since start", nil, 600, 0},
		{"last pong at 400 ms", []int64{200, 400}, 700, 300 * time.Millisecond},
		{"late reordering ignored", []int64{400, 200}, 1000, 0},
		{"overdue", []int64{100}, 1000, -300 * time.Millisecond},
	} {
		h := newHeartbeatClock(600*time.Millisecond, 0)
		for _, at := range tc.heard {
			h.heard(at * ms)
		}
		if got := h.timeLeft(tc.now * ms); got != tc.left {
			t.Errorf("%s: timeLeft = %v, want %v", tc.name, got, tc.left)
		}
	}
}

// The prediction [(M−1)·I, M·I] follows from the deadline rule: with pings
// every I answered at once, the last byte before a death at f arrived in
// (f−I, f], and the deadline is that instant + M·I.
func TestHeartbeatPredictionMatchesTheDeadlineRule(t *testing.T) {
	const interval = 200 * time.Millisecond
	const misses = 3
	p := heartbeatPrediction(interval, misses)
	for phase := time.Duration(0); phase < interval; phase += 10 * time.Millisecond {
		death := 10*interval + phase
		lastPong := 10 * interval // the ping sent at 10·I was answered at once
		h := newHeartbeatClock(misses*interval, 0)
		h.heard(int64(lastPong))
		detection := time.Duration(int64(death)+int64(h.timeLeft(int64(death)))) - death
		if detection < p.Lo || detection > p.Hi {
			t.Errorf("phase %v: detection %v outside the prediction [%v, %v]", phase, detection, p.Lo, p.Hi)
		}
	}
}
