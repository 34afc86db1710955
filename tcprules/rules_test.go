package tcprules

import (
	"math"
	"strings"
	"testing"
	"time"
)

const s = time.Second

// The tests below encode the jiffy arithmetic of the lab's kernel, HZ 250
// (hz250: KERNEL-RULES.md's worked table and LAB-NOTES.md's measurements
// are for it); tick_test.go has the rules at other tick rates.

// idleFor is an idle connection whose last segment arrived ago seconds
// before the fault, on a veth lab at HZ 250 (RTO 204 ms).
func idleFor(ago float64) ConnState {
	return ConnState{TCPState: "ESTABLISHED", SinceDataRecvS: ago, SinceAckRecvS: ago, SinceDataSentS: ago, RTOS: 0.204}
}

// sentAgo is a connection with one small segment in flight, sent ago
// seconds before the fault, at HZ 250 (RTO 204 ms).
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
		{"keepalive 1/1/3, idle", hz250.keepalive(idleFor(0.5), s, s, 3, 0), 3.5, 3.556, 3.604, 0},
		{"keepalive 1/1/3 + U 2 s, idle", hz250.keepalive(idleFor(0.5), s, s, 3, 2*s), 1.5, 1.508, 1.556, 0},
		{"keepalive 7200/75/9, idle", hz250.keepalive(idleFor(0.5), 7200*s, 75*s, 9, 0), 7874.5, 7881.5, 8012.5, 1},
		// t_s at the fault; t1 − t_s ∈ (412, 416] ms.
		{"keepalive 1/1/3, in flight, retries2 15", hz250.keepalive(sentAgo(0), s, s, 3, 0), 928.488 + 0.412, 937.7, 939.74, 0.05},
		{"U 2 s, in flight", hz250.retransmission(sentAgo(0), 15, 0, 2*s), 2.412, 2.42, 2.45, 0.005},
		{"retries2 5, R 204 ms", hz250.retransmission(sentAgo(0), 5, 0, 0), 12.648 + 0.412, 13.27, 13.53, 0.005},
		{"retries2 15, R 204 ms", hz250.retransmission(sentAgo(0), 15, 0, 0), 928.488 + 0.412, 937.7, 939.74, 0.05},
		{"retries2 5, R 200 ms", hz250.retransmission(ConnState{Unacked: 1, RTOS: 0.2}, 5, 0, 0), 12.4 + 0.408, 12.76 + 0.408, 13.01 + 0.408, 0.01},
		{"retries2 15, R 200 ms", hz250.retransmission(ConnState{Unacked: 1, RTOS: 0.2}, 15, 0, 0), 924.4 + 0.408, 934.36 + 0.408, 936.40 + 0.408, 0.01},
		{"orphan, B(8)", hz250.retransmission(sentAgo(0), 8, 0, 0), 104.04 + 0.412, 105.79 + 0.416, 107.83 + 0.416, 0.01},
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

// TestLabNotes checks the rules against what LAB-NOTES measured on the
// lab's kernel (HZ 250). Keepalive 1/1/3 against a blackhole gave
// 3.57–3.61 s (n=6), the warm-up's last segment having arrived about
// 0.5 s before the fault.
// TCP_USER_TIMEOUT 0.5/1/2/4 s with a 1-byte write every 200 ms gave
// 1.00/1.52/2.50–2.52/4.51 s: the forecasts over every place of the fault
// between two writes must reach each measurement.
func TestLabNotes(t *testing.T) {
	if f := hz250.keepalive(idleFor(0.5), s, s, 3, 0); f.LoS > 3.57 || f.HiS < 3.6 {
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
			f := hz250.writerRetransmission(ConnState{SinceDataSentS: since, SinceDataRecvS: since, SinceAckRecvS: since, RTOS: 0.204}, 200*time.Millisecond, 15, 0, tc.timeout)
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
	a := hz250.keepalive(idleFor(0.2), s, s, 3, 0)
	b := hz250.keepalive(idleFor(0.9), s, s, 3, 0)
	if d := a.AtS - b.AtS; math.Abs(d-0.7) > 0.005 {
		t.Errorf("0.7 s more idle moved the forecast by %.3f s", d)
	}
	st := idleFor(0.9)
	st.SinceDataSentS = 0 // sending never resets the keepalive clock
	if c := hz250.keepalive(st, s, s, 3, 0); c.AtS != b.AtS {
		t.Errorf("a send moved the forecast: %.3f vs %.3f", c.AtS, b.AtS)
	}
	st = idleFor(0.9)
	st.SinceAckRecvS = 0.1 // an ACK accepted resets it
	if c := hz250.keepalive(st, s, s, 3, 0); math.Abs(c.AtS-a.AtS-0.1) > 0.005 {
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
		f := hz250.keepalive(idleFor(0), tc.idle, tc.intvl, tc.cnt, tc.u)
		ideal := (tc.idle + time.Duration(tc.k)*tc.intvl).Seconds()
		late := (hz250.wheelStep(tc.idle) + time.Duration(tc.k)*hz250.wheelStep(tc.intvl)).Seconds()
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
	a, b := hz250.retransmission(sentAgo(0), 5, 0, 0), hz250.retransmission(sentAgo(0.1), 5, 0, 0)
	if d := a.AtS - b.AtS; math.Abs(d-0.1) > 0.005 {
		t.Errorf("a send 0.1 s earlier moved the give-up by %.3f s", d)
	}
	if f := hz250.retransmission(idleFor(1), 5, 0, 0); !f.Never {
		t.Errorf("idle connection: %+v, want never", f)
	}
	if f := hz250.retransmission(ConnState{NotSentBytes: 10}, 5, 0, 0); !f.Never || !strings.Contains(f.Rule, "zero-window") {
		t.Errorf("queued data only: %+v", f)
	}
	if f := hz250.keepalive(sentAgo(0), 7200*s, 75*s, 9, 0); f.HiS > 1000 || !strings.Contains(f.Rule, "inert") {
		t.Errorf("keepalive with data in flight: %+v", f)
	}
	// rto_max 1 s: B(15) = 14.4 s.
	if f := hz250.retransmission(sentAgo(0), 15, s, 0); f.LoS < 14.4+0.41 || f.HiS > 14.4+0.41+1.1 {
		t.Errorf("rto_max 1 s: [%.3f, %.3f]", f.LoS, f.HiS)
	}
	// A slower path: srtt 40 ms, RTO 244 ms: t1 is one probe (capped at
	// the RTO) and one RTO after the send.
	slow := sentAgo(0)
	slow.RTTS, slow.RTOS = 0.04, 0.244
	if f := hz250.retransmission(slow, 15, 0, 2*s); f.LoS < 2+0.488 || f.HiS > 2+0.5+0.04 {
		t.Errorf("srtt 40 ms, U 2 s: [%.3f, %.3f], want t_s + 2 RTO + U", f.LoS, f.HiS)
	}
	// A request written 0.5 s after the fault into the silence (the pgx
	// ping on acquire): the in-flight rule moved 0.5 s on.
	if f, g := hz250.retransmissionAfterWrite(idleFor(1), 500*time.Millisecond, 5, 0, 0), hz250.retransmission(sentAgo(0), 5, 0, 0); math.Abs(f.AtS-g.AtS-0.5) > 0.005 {
		t.Errorf("a write 0.5 s after the fault: %.3f, in flight at it: %.3f", f.AtS, g.AtS)
	}
	// Two resends already made when the fault came, the last just now.
	under := sentAgo(0)
	under.Retransmits, under.Backoff, under.RTOS = 2, 2, 0.816
	if f := hz250.retransmission(under, 5, 0, 0); f.LoS < 12.648-0.612-0.01 || f.HiS > 13.2 {
		t.Errorf("resends under way: [%.3f, %.3f]", f.LoS, f.HiS)
	}
}

// TestResetAfter: the segment a path that resets what it is sent
// answers, from `after` the fault on.
func TestResetAfter(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		f      Forecast
		lo, hi float64 // the window must lie inside
	}{
		// Idle 0.5 s, keepalive 1 s: the first probe 0.5 s after the
		// fault, late by up to one 32 ms step.
		{"keepalive, at once", hz250.keepaliveResetAfter(idleFor(0.5), s, s, 3, 0, 0), 0.5 - 0.005, 0.533},
		// The host returns after 0.7 s: the probe at 0.5 s is lost, the
		// next, 1 s later, is reset.
		{"keepalive, after 0.7 s", hz250.keepaliveResetAfter(idleFor(0.5), s, s, 3, 0, 700*ms), 1.5, 1.6},
		// The host returns after 10 s: keepalive has killed by then.
		{"keepalive, after 10 s", hz250.keepaliveResetAfter(idleFor(0.5), s, s, 3, 0, 10*s), 3.55, 3.61},
		// Probes already unanswered at the fault (idle 2.5 s): the next
		// is due within an interval.
		{"keepalive, probes under way", hz250.keepaliveResetAfter(idleFor(2.5), s, s, 9, 0, 0), 0, 1.1},
		// One segment in flight, sent now: the tail-loss probe, 51 j + 1 j.
		{"in flight, no writes", hz250.writerResetAfter(sentAgo(0), 0, 15, 0, 0, 0), 0.2, 0.21},
		// ...from 0.3 s on: the first RTO resend, (412, 416] ms.
		{"in flight, after 0.3 s", hz250.writerResetAfter(sentAgo(0), 0, 15, 0, 0, 300*ms), 0.41, 0.417},
		// A writer every 200 ms, its last write 48 ms before: the next
		// 152 ms after the fault.
		{"writer, at once", hz250.writerResetAfter(idleFor(0.048), 200*ms, 15, 0, 0, 0), 0.147, 0.157},
		// ...from 0.2 s on: its write at 0.352 s (the writes go on until t1).
		{"writer, after 0.2 s", hz250.writerResetAfter(idleFor(0.048), 200*ms, 15, 0, 0, 200*ms), 0.347, 0.357},
		// ...from 5 s on with U 2 s: the user timeout kills first.
		{"writer, after 5 s, U 2 s", hz250.writerResetAfter(idleFor(0.048), 200*ms, 15, 0, 2*s, 5*s), 2.55, 2.62},
	} {
		if tc.f.Never || tc.f.LoS < tc.lo || tc.f.HiS > tc.hi {
			t.Errorf("%s: [%.3f, %.3f], want within [%.3f, %.3f] (%s)", tc.name, tc.f.LoS, tc.f.HiS, tc.lo, tc.hi, tc.f.Rule)
		}
	}
	if f := hz250.writerResetAfter(idleFor(1), 0, 15, 0, 0, 0); !f.Never {
		t.Errorf("idle and writing nothing meets no reset: %+v", f)
	}
}

// TestClocks: application clocks dated by the state.
func TestClocks(t *testing.T) {
	if f := hz250.clock(0.1, 600*time.Millisecond, "heart-beat"); math.Abs(f.AtS-0.5) > 1e-9 || f.HiS-f.LoS > 0.0081 {
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
		if got := hz250.nextTick(tc.since, tc.every); got != tc.want {
			t.Errorf("hz250.nextTick(%v, %v) = %v, want %v", tc.since, tc.every, got, tc.want)
		}
	}
}

// TestKeepaliveAfterAnsweredProbe: when the last segment received is the
// answer to a probe (a pure ACK idle after the last data, the watcher
// sending nothing), the timer runs intvl from that probe: with intvl
// above idle the next probe waits intvl, not idle.
func TestKeepaliveAfterAnsweredProbe(t *testing.T) {
	probed := ConnState{SinceDataRecvS: 1.5, SinceAckRecvS: 0.452, SinceDataSentS: 9, RTOS: 0.204}
	for _, tc := range []struct {
		name        string
		st          ConnState
		idle, intvl time.Duration
		lo, hi      float64 // after L, the answer
	}{
		// idle = intvl: the re-arm from the probe is filed at level 1, so
		// the first probe is 8 j aligned: L + 4.076…4.104.
		{"1/1/3", probed, s, s, 4.076, 4.104},
		// intvl 5 s over idle 1 s: L + 5 + 3·5 s, each 5 s timer up to one
		// 256 ms step late.
		{"1/5/3", probed, s, 5 * s, 20, 20 + 4*0.256},
		// intvl 1 s under idle 2 s: the firing at L + 1 re-arms the rest,
		// L + 2 + 3·1 s.
		{"2/1/3", ConnState{SinceDataRecvS: 2.5, SinceAckRecvS: 0.452, SinceDataSentS: 9}, 2 * s, s, 5, 5 + 0.14},
	} {
		f := hz250.keepalive(tc.st, tc.idle, tc.intvl, 3, 0)
		l := tc.st.SinceAckRecvS
		if f.LoS < tc.lo-l-0.009 || f.HiS > tc.hi-l+0.001 {
			t.Errorf("%s: [%.3f, %.3f] after the fault, want within [%.3f, %.3f]", tc.name, f.LoS, f.HiS, tc.lo-l, tc.hi-l)
		}
	}
	// A data ACK for what the watcher sent is not a probe's answer.
	data := ConnState{SinceDataRecvS: 1.5, SinceAckRecvS: 0.452, SinceDataSentS: 0.492, RTOS: 0.204}
	if hz250.answeredProbe(data, s) || !hz250.answeredProbe(probed, s) {
		t.Errorf("answeredProbe misreads the state")
	}
}

// TestWheelJiffyNarrows: knowing the wheel's jiffy at the fault picks one
// of the alignments the sweep covers: the window lies inside the swept
// one and is narrow where level-2 steps (256 ms) made it wide.
func TestWheelJiffyNarrows(t *testing.T) {
	swept := hz250.retransmission(sentAgo(0), 5, 0, 0)
	for a := int64(0); a < 64; a += 7 {
		st := sentAgo(0)
		st.WheelJiffy = 1<<32 + a
		f := hz250.retransmission(st, 5, 0, 0)
		if f.LoS < swept.LoS-1e-9 || f.HiS > swept.HiS+1e-9 {
			t.Errorf("alignment %d: [%.3f, %.3f] outside the swept [%.3f, %.3f]", a, f.LoS, f.HiS, swept.LoS, swept.HiS)
		}
		if f.HiS-f.LoS > 0.02 {
			t.Errorf("alignment %d: window %.3f s wide, want under 20 ms", a, f.HiS-f.LoS)
		}
	}
	if swept.HiS-swept.LoS < 0.2 {
		t.Errorf("the swept window is %.3f s wide: the test no longer shows the level-2 spread", swept.HiS-swept.LoS)
	}
}
