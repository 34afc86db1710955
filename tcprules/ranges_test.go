package tcprules

import (
	"strings"
	"testing"
	"time"
)

// TestBudget checks tcp_model_timeout() against KERNEL-RULES §2's figures.
func TestBudget(t *testing.T) {
	for _, tc := range []struct {
		retries2 int
		rtoMax   time.Duration
		want     time.Duration
	}{
		{1, RTOMax, 600 * time.Millisecond},
		{2, RTOMax, 1400 * time.Millisecond},
		{3, RTOMax, 3 * time.Second},
		{5, RTOMax, 12600 * time.Millisecond},
		{8, RTOMax, 102200 * time.Millisecond},
		{9, RTOMax, 204600 * time.Millisecond},
		{10, RTOMax, 204600*time.Millisecond + 120*time.Second},
		{15, RTOMax, 924600 * time.Millisecond},
		// rto_max 1 s: thr = ilog2(5) = 2, B = 7·0.2 + 13·1 = 14.4 s.
		{15, time.Second, 14400 * time.Millisecond},
	} {
		if got := Budget(tc.retries2, tc.rtoMax); got != tc.want {
			t.Errorf("Budget(%d, %v) = %v, want %v", tc.retries2, tc.rtoMax, got, tc.want)
		}
	}
}

// TestRanges pins the shared range rules: what the built-in detectors'
// cells and the library gates' roles are judged by.
func TestRanges(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name   string
		r      Range
		lo, hi time.Duration
	}{
		{"keepalive 1/1/3", KeepaliveRange(s, s, 3), 3 * s, 4*s + s/2},
		{"keepalive 7200/75/9", KeepaliveRange(7200*s, 75*s, 9), 675 * s, 7875*s + 7875*s/8},
		{"keepalive+U 1/1, U 3 s: k 2", KeepaliveUserTimeoutRange(s, s, 3*s), 2 * s, 3*s + 3*s/8},
		{"keepalive+U 5/1, U 1 s: k 1", KeepaliveUserTimeoutRange(5*s, s, s), s, 6*s + 6*s/8},
		{"user timeout 2 s, 200 ms writes", UserTimeoutRange(2*s, 200*time.Millisecond), 2 * s, 2800 * time.Millisecond},
		// At HZ 250 (RTO 204 ms): the model's 924.6 s, reached at the
		// firing 928.488 s after the first retransmission, itself 204 ms
		// after the send. Other tick rates: TestRulesAtOtherHZ.
		{"retries2 15", hz250.retransmitRange(15, hz250.rtoFast()), 928692 * time.Millisecond, 0},
		{"retries2 2", hz250.retransmitRange(2, hz250.rtoFast()), 3060 * time.Millisecond, 6880 * time.Millisecond},
	} {
		if tc.r.Lo != tc.lo || (tc.hi != 0 && tc.r.Hi != tc.hi) {
			t.Errorf("%s: [%v, %v], want [%v, %v]", tc.name, tc.r.Lo, tc.r.Hi, tc.lo, tc.hi)
		}
		if !strings.Contains(tc.r.Rule, "L") || !strings.Contains(tc.r.Rule, "tcp_") {
			t.Errorf("%s: rule %q cites no kernel source", tc.name, tc.r.Rule)
		}
	}
	// Up to 20 s of late timers and one more capped firing: under 1080 s
	// (HZ 250).
	if hi := hz250.retransmitRange(15, hz250.rtoFast()).Hi; hi > 1080*s {
		t.Errorf("retries2=15: Hi %v, want < 1080 s", hi)
	}
}

// TestResendAfter: the doubling timer's expiries from 204 ms (RTOFast at
// HZ 250) are 0.204, 0.612, 1.428, 3.06 s, ...
func TestResendAfter(t *testing.T) {
	for _, tc := range []struct{ silence, want time.Duration }{
		{0, 0},
		{time.Millisecond, 204 * time.Millisecond},
		{500 * time.Millisecond, 612 * time.Millisecond},
		{time.Second, 1428 * time.Millisecond},
		{3 * time.Second, 3060 * time.Millisecond},
	} {
		if got := ResendAfter(tc.silence, hz250.rtoFast()); got != tc.want {
			t.Errorf("ResendAfter(%v) = %v, want %v", tc.silence, got, tc.want)
		}
	}
}

// TestWheel checks the wheel's filing against calc_wheel_index: level
// steps 1, 8, 64 j from deltas 63 and 504 j; a timer fires at the first
// multiple of its step strictly after its expiry.
func TestWheel(t *testing.T) {
	for _, tc := range []struct{ clk, expires, want int64 }{
		{1000, 1062, 1063},   // 62 j ahead: level 0, 1 j late
		{1000, 1063, 1064},   // 63 j: level 1, step 8: 1063 → 1064
		{1000, 1064, 1072},   // a multiple of 8 still moves on
		{1000, 1503, 1504},   // 503 j: level 1
		{1000, 1504, 1536},   // 504 j: level 2, step 64
		{1000, 5032, 5120},   // 4032 j: level 3, step 512
		{1000, 31000, 31232}, // 30000 j (a capped RTO): level 3
	} {
		if got := wheelFire(tc.clk, tc.expires); got != tc.want {
			t.Errorf("wheelFire(%d, %d) = %d, want %d", tc.clk, tc.expires, got, tc.want)
		}
	}
	// A capped RTO re-armed from its own aligned firing lasts 30208 j,
	// 120.832 s (KERNEL-RULES §4).
	if got := rearm(512*100, 30000) - 512*100; got != 30208 {
		t.Errorf("capped RTO interval = %d j, want 30208", got)
	}
}
