package detectors

import (
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// idleState is an idle connection: last data received recv seconds and
// last data sent sent seconds before the fault, on a veth lab (tcpi_rto
// RTOFast, 204 ms at HZ 250).
func idleState(recv, sent float64) tcprules.ConnState {
	return tcprules.ConnState{TCPState: "ESTABLISHED", SinceDataRecvS: recv, SinceAckRecvS: recv, SinceDataSentS: sent, RTOS: tcprules.RTOFast().Seconds()}
}

// inFlight is a connection with one small request unacknowledged, sent
// sent seconds before the fault (the BLPOP: 34 ms).
func inFlight(sent float64) tcprules.ConnState {
	st := idleState(0.5, sent)
	st.Unacked = 1
	return st
}

// TestPredictSample drives every built-in detector's per-sample rule
// with states and Effects, and checks the instant it forecasts.
func TestPredictSample(t *testing.T) {
	const (
		fin, rst, either = harness.EffectFIN, harness.EffectRST, harness.EffectFINOrRST
		silent, row, tr  = harness.EffectSilent, harness.EffectResetOnWrite, harness.EffectTransient
	)
	for _, tc := range []struct {
		spec   string
		st     tcprules.ConnState
		e      harness.Effect
		noRule bool    // PredictSample returns false
		never  bool    // the forecast says never
		at     float64 // AtS, seconds after the fault
		tol    float64 // |AtS − at| allowed (0: 1 ms)
		rule   string  // the rule names this
	}{
		// Keepalive 1/1/3: L 0.5 s before the fault, L + 4.056…4.104 s.
		{spec: "keepalive-tuned", st: idleState(0.5, 2), e: silent, at: 3.578, tol: 0.002, rule: "tcp_keepalive_timer"},
		{spec: "keepalive-tuned", st: idleState(0.5, 2), e: fin, at: 0, rule: "FIN"},
		{spec: "keepalive-tuned", st: idleState(0.5, 2), e: rst, at: 0, rule: "ECONNRESET"},
		{spec: "keepalive-tuned", st: idleState(0.5, 2), e: either, at: 0},
		{spec: "keepalive-tuned", st: idleState(0.5, 2), e: rst, at: 0},
		// Its first probe, 0.5 s on, late by up to one 32 ms step.
		{spec: "keepalive-tuned", st: idleState(0.5, 2), e: row, at: 0.516, tol: 0.002, rule: "first keepalive probe"},
		// The sample: a request 34 ms old in flight. Keepalive is
		// inert; tcp_retries2 15 gives up after about 938 s.
		{spec: "keepalive-tuned", st: inFlight(0.034), e: silent, at: 938.68, tol: 0.05, rule: "inert"},
		// ...and into a resetting path its tail-loss probe goes first.
		{spec: "keepalive-tuned", st: inFlight(0.034), e: row, at: 0.172, tol: 0.003, rule: "tail-loss probe"},
		{spec: "keepalive-tuned", st: idleState(0.5, 2), e: tr, noRule: true},
		// scale=3600: 2 s/1 s/9 in force: L + 2 + 9 = 10.5 s after the fault.
		{spec: "keepalive-default:scale=3600", st: idleState(0.5, 2), e: silent, at: 10.5, tol: 0.3},
		// U 3 s cuts cnt=9 short: k = 2, L + 3 s.
		{spec: "keepalive-user-timeout", st: idleState(0.5, 2), e: silent, at: 2.5, tol: 0.06, rule: "TCP_USER_TIMEOUT"},
		// In flight, the user timeout runs from t1: t_s + 2.42…2.45 s + U − 2.
		{spec: "keepalive-user-timeout:timeout=2s", st: inFlight(0), e: silent, at: 2.432, tol: 0.002, rule: "TCP_USER_TIMEOUT 2s"},
		// The last write 48 ms before the fault: the next 152 ms after it,
		// t1 416 ms later, U 2 s after t1 (+4…32 ms).
		{spec: "user-timeout", st: idleState(0.048, 0.048), e: silent, at: 0.152 + 0.412 + 2.018, tol: 0.006, rule: "idle at the fault"},
		{spec: "user-timeout", st: idleState(0.048, 0.048), e: row, at: 0.152, rule: "next write"},
		{spec: "user-timeout", st: idleState(0.048, 0.048), e: fin, at: 0},
		// retries2 5: t_s + 13.27…13.53 s, t_s 0.1 s after the fault.
		{spec: "write-probe:retries2=5", st: idleState(0.1, 0.1), e: silent, at: 0.1 + 13.40, tol: 0.01, rule: "B(tcp_retries2=5)"},
		// every 100 ms: the second write reschedules the tail-loss probe to
		// 2·srtt + 2 ms, and the third, with that probe out, re-arms the RTO
		// at the head's send + RTO, so t1 comes 216 ms after the first write
		// (measured here: 211–221 ms), not 416; then t1 + 12.86…13.11 s.
		{spec: "oob-probe:retries2=5,every=100ms", st: idleState(0.02, 0.02), e: silent, at: 0.08 + 0.216 + 12.984, tol: 0.01},
		{spec: "oob-probe:retries2=5,every=100ms", st: idleState(0.02, 0.02), e: row, at: 0.08},
		// Heart-beats: the last pong 0.1 s before the fault, 3 × 200 ms.
		{spec: "heartbeat-inband", st: idleState(0.1, 0.06), e: silent, at: 0.5, rule: "tcpi_last_data_recv"},
		{spec: "heartbeat-inband", st: idleState(0.1, 0.06), e: row, at: 0.14, rule: "next write"},
		{spec: "heartbeat-dedicated", st: idleState(0.1, 0.06), e: silent, noRule: true},
		{spec: "heartbeat-dedicated", st: idleState(0.1, 0.06), e: row, noRule: true},
		{spec: "heartbeat-dedicated", st: idleState(0.1, 0.06), e: fin, at: 0},
		{spec: "phi-accrual", st: idleState(0.1, 0.06), e: silent, noRule: true},
		{spec: "phi-accrual", st: idleState(0.1, 0.06), e: rst, at: 0},
		{spec: "phi-accrual", st: idleState(0.1, 0.06), e: row, at: 0.14},
		// A poller sees a FIN at its next poll, somewhere in [0, every].
		{spec: "tcp-info:every=100ms", st: idleState(1, 1), e: fin, at: 0.05, rule: "poll"},
		{spec: "tcp-info:every=100ms", st: idleState(1, 1), e: silent, never: true},
		{spec: "tcp-info:every=100ms", st: idleState(1, 1), e: row, never: true},
		{spec: "tcp-info:every=100ms", st: inFlight(0), e: silent, at: 938.7 + 0.05, tol: 0.05},
		// Readers: at once, never when idle, the kernel's give-up in flight.
		{spec: "read-eof", st: idleState(1, 1), e: fin, at: 0},
		{spec: "read-eof", st: idleState(1, 1), e: silent, never: true},
		{spec: "read-eof", st: idleState(1, 1), e: row, never: true},
		{spec: "read-eof", st: inFlight(0), e: silent, at: 938.7, tol: 0.05, rule: "B(tcp_retries2=15)"},
		{spec: "read-eof", st: inFlight(0), e: row, at: 0.206, tol: 0.003},
		{spec: "select-recv", st: idleState(1, 1), e: rst, at: 0},
		{spec: "select-recv", st: idleState(1, 1), e: silent, never: true},
		{spec: "naive-recv", st: idleState(1, 1), e: either, at: 0},
		{spec: "naive-recv", st: idleState(1, 1), e: tr, noRule: true},
		{spec: "rdhup", st: idleState(1, 1), e: fin, at: 0},
		{spec: "rdhup", st: idleState(1, 1), e: silent, never: true},
	} {
		t.Run(tc.spec+"/"+string(tc.e), func(t *testing.T) {
			d, _, err := harness.NewDetector(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			sp, ok := d.(harness.SamplePredictor)
			if !ok {
				t.Fatalf("%s is not a SamplePredictor", tc.spec)
			}
			f, ok := sp.PredictSample(tc.st, tc.e)
			if ok == tc.noRule {
				t.Fatalf("ok = %v, want %v (%+v)", ok, !tc.noRule, f)
			}
			if tc.noRule {
				return
			}
			if f.Never != tc.never {
				t.Fatalf("Never = %v, want %v (%s)", f.Never, tc.never, f.Rule)
			}
			tol := max(tc.tol, 0.001)
			if !tc.never && (f.AtS < tc.at-tol || f.AtS > tc.at+tol) {
				t.Errorf("AtS = %.4f, want %.4f ± %.3f (%s)", f.AtS, tc.at, tol, f.Rule)
			}
			if !tc.never && (f.LoS > f.AtS || f.HiS < f.AtS) {
				t.Errorf("window [%.4f, %.4f] does not hold AtS %.4f", f.LoS, f.HiS, f.AtS)
			}
			if !strings.Contains(f.Rule, tc.rule) {
				t.Errorf("rule %q does not name %q", f.Rule, tc.rule)
			}
		})
	}
}

// TestSampleForecastsLieInTheCellRange: over the states a silent-peer
// cell's range assumes (idle, the fault anywhere after the last
// exchange), each per-sample forecast lies inside the detector's range:
// the two come from one set of rules.
func TestSampleForecastsLieInTheCellRange(t *testing.T) {
	for _, tc := range []struct {
		spec string
		span time.Duration // how far back the last exchange may lie
	}{
		{"keepalive-tuned", time.Second},
		{"keepalive-tuned:idle=5s,intvl=2s,cnt=4", 5 * time.Second},
		{"keepalive-default:scale=3600", 2 * time.Second},
		{"keepalive-user-timeout", time.Second},
		{"keepalive-user-timeout:idle=5s,timeout=1s", 5 * time.Second},
		{"user-timeout", 200 * time.Millisecond},
		{"user-timeout:timeout=500ms,every=100ms", 100 * time.Millisecond},
		{"write-probe:retries2=2", 200 * time.Millisecond},
		{"write-probe:retries2=5", 200 * time.Millisecond},
		{"oob-probe:retries2=3,every=100ms", 100 * time.Millisecond},
		{"heartbeat-inband", 200 * time.Millisecond},
	} {
		d, _, err := harness.NewDetector(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		p := d.Predict()
		for ago := time.Duration(0); ago < tc.span; ago += tcprules.KernelTick().Jiffy() {
			st := idleState(ago.Seconds(), ago.Seconds())
			f, ok := d.(harness.SamplePredictor).PredictSample(st, harness.EffectSilent)
			if !ok || f.Never {
				t.Fatalf("%s: no forecast for an idle silent peer", tc.spec)
			}
			if f.AtS < p.Lo.Seconds() || f.AtS > p.Hi.Seconds() {
				t.Errorf("%s, last exchange %v before the fault: forecast %.3f s outside the cell's range [%v, %v]", tc.spec, ago, f.AtS, p.Lo, p.Hi)
			}
		}
	}
}

// TestPredictResetAfter: a path that resets only from `after` on (a host
// that returns from a reboot): the first segment each detector sends from
// then on, or its own verdict if that comes first.
func TestPredictResetAfter(t *testing.T) {
	type resetAfter interface {
		PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool)
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		spec  string
		st    tcprules.ConnState
		after time.Duration
		never bool
		at    float64
		tol   float64
	}{
		// The probe at 0.5 s is lost; the next, a second later, is reset.
		{spec: "keepalive-tuned", st: idleState(0.5, 2), after: 700 * ms, at: 1.53, tol: 0.04},
		// Down longer than keepalive lives: ETIMEDOUT first.
		{spec: "keepalive-tuned", st: idleState(0.5, 2), after: 10 * time.Second, at: 3.578, tol: 0.003},
		{spec: "keepalive-default:scale=3600", st: idleState(0.5, 2), after: 0, at: 1.5, tol: 0.3},
		{spec: "keepalive-user-timeout", st: idleState(0.5, 2), after: 0, at: 0.516, tol: 0.02},
		// Writes every 200 ms, the last 48 ms before: 0.152, 0.352, ...
		{spec: "user-timeout", st: idleState(0.048, 0.048), after: 30 * ms, at: 0.152},
		{spec: "user-timeout", st: idleState(0.048, 0.048), after: 160 * ms, at: 0.352},
		{spec: "write-probe:retries2=5", st: idleState(0.048, 0.048), after: 0, at: 0.152},
		{spec: "oob-probe:retries2=5,every=100ms", st: idleState(0.048, 0.048), after: 60 * ms, at: 0.152},
		// The heart-beat's deadline, 0.5 s, before a return at 1 s.
		{spec: "heartbeat-inband", st: idleState(0.1, 0.06), after: time.Second, at: 0.5},
		{spec: "heartbeat-inband", st: idleState(0.1, 0.06), after: 100 * ms, at: 0.14},
		{spec: "read-eof", st: idleState(1, 1), after: 0, never: true},
		// In flight, sent at the fault: the first RTO resend after 0.3 s.
		{spec: "read-eof", st: inFlight(0), after: 300 * ms, at: 0.414, tol: 0.003},
		{spec: "select-recv", st: inFlight(0), after: 0, at: 0.206, tol: 0.003},
		{spec: "tcp-info:every=100ms", st: inFlight(0), after: 0, at: 0.206 + 0.05, tol: 0.003},
	} {
		d, _, err := harness.NewDetector(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		ra, ok := d.(resetAfter)
		if !ok {
			t.Fatalf("%s does not forecast a late reset", tc.spec)
		}
		f, ok := ra.PredictResetAfter(tc.st, tc.after)
		if !ok || f.Never != tc.never {
			t.Errorf("%s after %v: ok %v, %+v", tc.spec, tc.after, ok, f)
			continue
		}
		if tol := max(tc.tol, 0.001); !tc.never && (f.AtS < tc.at-tol || f.AtS > tc.at+tol) {
			t.Errorf("%s after %v: AtS %.4f, want %.4f ± %.3f (%s)", tc.spec, tc.after, f.AtS, tc.at, tol, f.Rule)
		}
		// PredictSample's rst-on-write is the reset at once.
		if tc.after == 0 {
			g, _ := d.(harness.SamplePredictor).PredictSample(tc.st, harness.EffectResetOnWrite)
			if g != f {
				t.Errorf("%s: PredictSample(rst-on-write) %+v differs from PredictResetAfter(0) %+v", tc.spec, g, f)
			}
		}
	}
}
