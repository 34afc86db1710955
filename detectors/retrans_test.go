package detectors

import (
	"testing"
	"time"
)

func TestRetransmitTimeout(t *testing.T) {
	for _, tc := range []struct {
		retries2 int
		want     time.Duration
	}{
		{1, 600 * time.Millisecond},
		{2, 1400 * time.Millisecond},
		{3, 3 * time.Second},
		{5, 12600 * time.Millisecond},
		{9, 204600 * time.Millisecond},
		{10, 204600*time.Millisecond + 120*time.Second},
		{15, 924600 * time.Millisecond},
	} {
		if got := retransmitTimeout(tc.retries2); got != tc.want {
			t.Errorf("retransmitTimeout(%d) = %v, want %v", tc.retries2, got, tc.want)
		}
	}
}

// The ranges bracket what this kernel did (write-probe against blackhole,
// 2 samples each): retries2=1 1.76–1.82 s, 2 3.43–3.50 s, 3 6.80–6.82 s,
// 4 6.74–6.83 s, 5 13.50–13.56 s.
func TestRetransmitGiveUp(t *testing.T) {
	for _, tc := range []struct {
		retries2       int
		measuredLo, hi float64
	}{
		{1, 1.76, 1.82}, {2, 3.43, 3.50}, {3, 6.80, 6.82}, {4, 6.74, 6.83}, {5, 13.50, 13.56},
	} {
		p := retransmitPrediction(tc.retries2, 200*time.Millisecond)
		if p.Lo.Seconds() > tc.measuredLo || p.Hi.Seconds() < tc.hi {
			t.Errorf("retries2=%d: predicted [%v, %v] does not hold the measured [%v, %v] s", tc.retries2, p.Lo, p.Hi, tc.measuredLo, tc.hi)
		}
	}
	lo, hi := retransmitGiveUp(15)
	// The model's 924.6 s, reached at the firing 928.5 s after the first
	// retransmission (204 ms after the send), timers up to 20 s late, and
	// at worst one 120 s (TCP_RTO_MAX) firing later.
	if lo != 928692*time.Millisecond || hi > 1080*time.Second {
		t.Errorf("retries2=15: give up in [%v, %v], want [928.692 s, < 1080 s]", lo, hi)
	}
}
