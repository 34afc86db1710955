package tcprules

import (
	"math"
	"strings"
	"testing"
	"time"
)

const s = time.Second

// idleFor is an idle connection whose last segment arrived ago seconds
// before the fault, on a veth lab (RTO 204 ms).
func idleFor(ago float64) ConnState {
	return ConnState{TCPState: "ESTABLISHED", SinceDataRecvS: ago, SinceAckRecvS: ago, SinceDataSentS: ago, RTOS: 0.204}
}

// sentAgo is a connection with one small segment in flight, sent ago
// seconds before the fault.
func sentAgo(ago float64) ConnState {
	return ConnState{TCPState: "ESTABLISHED", Unacked: 1, SinceDataSentS: ago, SinceDataRecvS: 0.5, SinceAckRecvS: 0.5, RTOS: 0.204}
}

// TestWorkedTable checks the per-sample rules against KERNEL-RULES.md §6
// (HZ 250, fast link, SACK and TLP, silent drop, R = 204 ms): the "with
// wheel rounding" column, moved to the fault's frame (L or t_s before
// it) and widened by the 1 j the fault's place inside its tick adds. Its
// ideal column must lie at or below the window (the wheel is never early).
func TestWorkedTable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		got    Forecast
		ideal  float64 // seconds after the fault
		lo, hi float64 // the table's wheel column, seconds after the fault
		tol    float64 // the table's rounding (0: to the millisecond)
	}{
		// L = 0.5 s before the fault.
		{"keepalive 1/1/3, idle", Keepalive(idleFor(0.5), s, s, 3, 0), 3.5, 3.556, 3.604, 0},
		{"keepalive 1/1/3 + U 2 s, idle", Keepalive(idleFor(0.5), s, s, 3, 2*s), 1.5, 1.508, 1.556, 0},
		{"keepalive 7200/75/9, idle", Keepalive(idleFor(0.5), 7200*s, 75*s, 9, 0), 7874.5, 7881.5, 8012.5, 1},
		// t_s at the fault; t1 − t_s ∈ (412, 416] ms.
		{"keepalive 1/1/3, in flight, retries2 15", Keepalive(sentAgo(0), s, s, 3, 0), 928.488 + 0.412, 937.7, 939.74, 0.05},
		{"U 2 s, in flight", Retransmission(sentAgo(0), 15, 0, 2*s), 2.412, 2.42, 2.45, 0.005},
		{"retries2 5, R 204 ms", Retransmission(sentAgo(0), 5, 0, 0), 12.648 + 0.412, 13.27, 13.53, 0.005},
		{"retries2 15, R 204 ms", Retransmission(sentAgo(0), 15, 0, 0), 928.488 + 0.412, 937.7, 939.74, 0.05},
		{"retries2 5, R 200 ms", Retransmission(ConnState{Unacked: 1, RTOS: 0.2}, 5, 0, 0), 12.4 + 0.408, 12.76 + 0.408, 13.01 + 0.408, 0.01},
		{"retries2 15, R 200 ms", Retransmission(ConnState{Unacked: 1, RTOS: 0.2}, 15, 0, 0), 924.4 + 0.408, 934.36 + 0.408, 936.40 + 0.408, 0.01},
		{"orphan, B(8)", Retransmission(sentAgo(0), 8, 0, 0), 104.04 + 0.412, 105.79 + 0.416, 107.83 + 0.416, 0.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.got
			// The fault's place inside its jiffy, and the table's rounding.
			tol := max(tc.tol, 0.0045)
			if f.Never || f.LoS < tc.lo-tol || f.LoS > tc.lo+tol || math.Abs(f.HiS-tc.hi) > max(tc.tol, 0.001) {
				t.Errorf("window [%.4f, %.4f] s, want [%.3f, %.3f] (%s)", f.LoS, f.HiS, tc.lo, tc.hi, f.Rule)
			}
			if tc.ideal > f.LoS+tol {
				t.Errorf("the ideal instant %.3f lies after the window's start %.4f: the wheel is never early", tc.ideal, f.LoS)
			}
			if f.AtS != (f.LoS+f.HiS)/2 {
				t.Errorf("AtS %.4f is not the window's middle", f.AtS)
			}
			if !strings.Contains(f.Rule, "L") || !strings.Contains(f.Rule, "tcp_") {
				t.Errorf("rule cites no kernel source: %s", f.Rule)
			}
		})
	}
}

// TestLabNotes checks the rules against what LAB-NOTES measured on this
// kernel. Keepalive 1/1/3 against a blackhole gave 3.57–3.61 s (n=6), the
// warm-up's last segment having arrived about 0.5 s before the fault.
// TCP_USER_TIMEOUT 0.5/1/2/4 s with a 1-byte write every 200 ms gave
// 1.00/1.52/2.50–2.52/4.51 s: the forecasts over every place of the fault
// between two writes must reach each measurement.
func TestLabNotes(t *testing.T) {
	if f := Keepalive(idleFor(0.5), s, s, 3, 0); f.LoS > 3.57 || f.HiS < 3.6 {
		t.Errorf("keepalive 1/1/3: [%.3f, %.3f], measured 3.57–3.61 s", f.LoS, f.HiS)
	}
	for _, tc := range []struct {
		timeout  time.Duration
		measured float64
	}{
		{500 * time.Millisecond, 1.00}, {s, 1.52}, {2 * s, 2.50}, {2 * s, 2.52}, {4 * s, 4.51},
	} {
		lo, hi := math.Inf(1), math.Inf(-1)
		for since := 0.0; since < 0.2; since += 0.004 {
			f := WriterRetransmission(ConnState{SinceDataSentS: since, SinceDataRecvS: since, SinceAckRecvS: since, RTOS: 0.204}, 200*time.Millisecond, 15, 0, tc.timeout)
			lo, hi = min(lo, f.LoS), max(hi, f.HiS)
		}
		if tc.measured < lo-0.01 || tc.measured > hi+0.01 {
			t.Errorf("user timeout %v: forecasts span [%.3f, %.3f], measured %.2f s", tc.timeout, lo, hi, tc.measured)
		}
	}
}

// TestKeepaliveFollowsTheIdleClock: the forecast moves with the last
// segment received, not with the last sent, and a probe already out is
// counted in the same chain.
func TestKeepaliveFollowsTheIdleClock(t *testing.T) {
	a := Keepalive(idleFor(0.2), s, s, 3, 0)
	b := Keepalive(idleFor(0.9), s, s, 3, 0)
	if d := a.AtS - b.AtS; math.Abs(d-0.7) > 0.005 {
		t.Errorf("0.7 s more idle moved the forecast by %.3f s", d)
	}
	st := idleFor(0.9)
	st.SinceDataSentS = 0 // sending never resets the keepalive clock
	if c := Keepalive(st, s, s, 3, 0); c.AtS != b.AtS {
		t.Errorf("a send moved the forecast: %.3f vs %.3f", c.AtS, b.AtS)
	}
	st = idleFor(0.9)
	st.SinceAckRecvS = 0.1 // an ACK accepted resets it
	if c := Keepalive(st, s, s, 3, 0); math.Abs(c.AtS-a.AtS-0.1) > 0.005 {
		t.Errorf("an ACK 0.1 s before the fault: forecast %.3f, want %.3f", c.AtS, a.AtS+0.1)
	}
}

// TestKeepaliveUserTimeoutCount: with a user timeout the kill comes after
// k = max(1, ⌈(U−T)/I⌉) intervals, whatever cnt says.
func TestKeepaliveUserTimeoutCount(t *testing.T) {
	for _, tc := range []struct {
		idle, intvl, u time.Duration
		cnt            int
		k              int
	}{
		{s, s, 3 * s, 9, 2},
		{s, s, 4 * s, 2, 3},
		{5 * s, s, s, 9, 1},
		{2 * s, 3 * s, 10 * s, 1, 3},
	} {
		f := Keepalive(idleFor(0), tc.idle, tc.intvl, tc.cnt, tc.u)
		ideal := (tc.idle + time.Duration(tc.k)*tc.intvl).Seconds()
		late := (wheelStep(tc.idle) + time.Duration(tc.k)*wheelStep(tc.intvl)).Seconds()
		if f.LoS < ideal-0.005 || f.HiS > ideal+late {
			t.Errorf("idle %v intvl %v U %v: [%.3f, %.3f], want just after %.3f", tc.idle, tc.intvl, tc.u, f.LoS, f.HiS, ideal)
		}
		if got := KeepaliveUserTimeoutK(tc.idle, tc.intvl, tc.u); got != tc.k {
			t.Errorf("KeepaliveUserTimeoutK = %d, want %d", got, tc.k)
		}
	}
}

// TestRetransmissionState: the give-up counts from the send that is in
// flight, keepalive's settings do not matter then, and nothing in flight
// arms no timer.
func TestRetransmissionState(t *testing.T) {
	a, b := Retransmission(sentAgo(0), 5, 0, 0), Retransmission(sentAgo(0.1), 5, 0, 0)
	if d := a.AtS - b.AtS; math.Abs(d-0.1) > 0.005 {
		t.Errorf("a send 0.1 s earlier moved the give-up by %.3f s", d)
	}
	if f := Retransmission(idleFor(1), 5, 0, 0); !f.Never {
		t.Errorf("idle connection: %+v, want never", f)
	}
	if f := Retransmission(ConnState{NotSentBytes: 10}, 5, 0, 0); !f.Never || !strings.Contains(f.Rule, "zero-window") {
		t.Errorf("queued data only: %+v", f)
	}
	if f := Keepalive(sentAgo(0), 7200*s, 75*s, 9, 0); f.HiS > 1000 || !strings.Contains(f.Rule, "inert") {
		t.Errorf("keepalive with data in flight: %+v", f)
	}
	// rto_max 1 s: B(15) = 14.4 s.
	if f := Retransmission(sentAgo(0), 15, s, 0); f.LoS < 14.4+0.41 || f.HiS > 14.4+0.41+1.1 {
		t.Errorf("rto_max 1 s: [%.3f, %.3f]", f.LoS, f.HiS)
	}
	// A slower path: srtt 40 ms, RTO 244 ms: t1 is one probe (capped at
	// the RTO) and one RTO after the send.
	slow := sentAgo(0)
	slow.RTTS, slow.RTOS = 0.04, 0.244
	if f := Retransmission(slow, 15, 0, 2*s); f.LoS < 2+0.488 || f.HiS > 2+0.5+0.04 {
		t.Errorf("srtt 40 ms, U 2 s: [%.3f, %.3f], want t_s + 2 RTO + U", f.LoS, f.HiS)
	}
	// Two resends already made when the fault came, the last just now.
	under := sentAgo(0)
	under.Retransmits, under.Backoff, under.RTOS = 2, 2, 0.816
	if f := Retransmission(under, 5, 0, 0); f.LoS < 12.648-0.612-0.01 || f.HiS > 13.2 {
		t.Errorf("resends under way: [%.3f, %.3f]", f.LoS, f.HiS)
	}
}

// TestFirstSegments: what a path that resets written segments answers.
func TestFirstSegments(t *testing.T) {
	// Idle 0.5 s, keepalive 1 s: the first probe 0.5 s after the fault,
	// late by up to one 32 ms step.
	if f := KeepaliveFirstProbe(idleFor(0.5), s, s); f.LoS < 0.5-0.005 || f.HiS > 0.533 {
		t.Errorf("first probe: [%.3f, %.3f]", f.LoS, f.HiS)
	}
	// Idle 2.5 s with keepalive 1/1: the probes went unanswered before
	// the fault, the next is due within an interval.
	if f := KeepaliveFirstProbe(idleFor(2.5), s, s); f.HiS > 1.1 {
		t.Errorf("probes under way: [%.3f, %.3f]", f.LoS, f.HiS)
	}
	// One segment in flight, sent now: the tail-loss probe, 51 j + 1 j.
	if f := FirstResend(sentAgo(0)); f.LoS < 0.2 || f.HiS > 0.21 {
		t.Errorf("first resend: [%.3f, %.3f]", f.LoS, f.HiS)
	}
	if f := FirstResend(idleFor(1)); !f.Never {
		t.Errorf("nothing in flight resends nothing: %+v", f)
	}
}

// TestClocks: application clocks dated by the state.
func TestClocks(t *testing.T) {
	if f := Clock(0.1, 600*time.Millisecond, "heart-beat"); math.Abs(f.AtS-0.5) > 1e-9 || f.HiS-f.LoS > 0.0081 {
		t.Errorf("Clock: %+v", f)
	}
	for _, tc := range []struct {
		since float64
		every time.Duration
		want  time.Duration
	}{
		{0.048, 200 * time.Millisecond, 152 * time.Millisecond},
		{0.248, 200 * time.Millisecond, 152 * time.Millisecond},
		{0, 200 * time.Millisecond, 200 * time.Millisecond},
	} {
		if got := NextTick(tc.since, tc.every); got != tc.want {
			t.Errorf("NextTick(%v, %v) = %v, want %v", tc.since, tc.every, got, tc.want)
		}
	}
}
