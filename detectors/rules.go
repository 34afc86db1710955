package detectors

import (
	"fmt"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// prediction turns one of the kernel's shared range rules into a
// detector's silent-peer prediction with the reasons it decides with.
func prediction(r tcprules.Range, reasons ...string) harness.Prediction {
	return harness.Prediction{Lo: r.Lo, Hi: r.Hi, Rule: r.Rule, Reasons: reasons}
}

// The per-sample rules the built-in detectors share (harness.SamplePredictor).
// Every detector here blocks in a read on the watched connection, so a
// FIN or an RST is seen the moment it arrives; what differs is what its
// timers do on a silent peer and which segment it sends first into a path
// that resets what it is sent (EffectResetOnWrite: that segment's RST
// comes back within a round trip, and the read fails with ECONNRESET).
// A path that resets only from some time after the fault on (a host that
// reboots: the fault's ResetAfter, and in practice the instant it answered
// again) is forecast by PredictResetAfter, which every detector here with
// a rule for resets implements; PredictSample is PredictResetAfter(st, 0).

// closeSample is the forecast of a blocked reader under a FIN or an RST,
// and false for any other Effect.
func closeSample(e harness.Effect) (tcprules.Forecast, bool) {
	switch e {
	case harness.EffectFIN:
		return tcprules.AtOnce("FIN: the blocked read returns 0 as the segment arrives (tcp_input.c tcp_fin() wakes the reader)"), true
	case harness.EffectRST:
		return tcprules.AtOnce("RST: the blocked read fails with ECONNRESET as the segment arrives (tcp_input.c tcp_reset())"), true
	case harness.EffectFINOrRST:
		return tcprules.AtOnce("the peer's kernel closes: a FIN (read returns 0) or an RST (ECONNRESET), seen by the blocked read as it arrives"), true
	}
	return tcprules.Forecast{}, false
}

// readerSample is the forecast of a detector that only reads (read-eof,
// select-recv, naive-recv, rdhup): a FIN or an RST at once; on a silent
// peer never when idle, but data in flight at the fault is retransmitted
// until the kernel gives up (with the namespace's tcp_retries2 taken as
// its default 15) and the read fails with ETIMEDOUT; into a resetting
// path, only a resend of that data meets the RST.
func readerSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	if f, ok := closeSample(e); ok {
		return f, true
	}
	switch e {
	case harness.EffectSilent:
		if !st.InFlight() {
			return tcprules.Never("idle, it sends nothing and no timer runs: a silent peer is never noticed (tcp_timer.c: no timer is armed on an idle socket without SO_KEEPALIVE)"), true
		}
		return tcprules.Retransmission(st, tcprules.DefaultRetries2, tcprules.RTOMax, 0), true
	case harness.EffectResetOnWrite:
		return readerResetAfter(st, 0), true
	}
	return tcprules.Forecast{}, false
}

// readerResetAfter: a reader sends only resends of data in flight at the
// fault; the first at or after `after` meets the RST.
func readerResetAfter(st tcprules.ConnState, after time.Duration) tcprules.Forecast {
	return tcprules.WriterResetAfter(st, 0, tcprules.DefaultRetries2, tcprules.RTOMax, 0, after)
}

// keepaliveSample is the forecast of a keepalive detector blocked in read
// (user timeout 0: none).
func keepaliveSample(st tcprules.ConnState, e harness.Effect, idle, intvl time.Duration, cnt int, userTimeout time.Duration) (tcprules.Forecast, bool) {
	if f, ok := closeSample(e); ok {
		return f, true
	}
	switch e {
	case harness.EffectSilent:
		return tcprules.Keepalive(st, idle, intvl, cnt, userTimeout), true
	case harness.EffectResetOnWrite:
		return tcprules.KeepaliveResetAfter(st, idle, intvl, cnt, userTimeout, 0), true
	}
	return tcprules.Forecast{}, false
}

// writerSample is the forecast of a detector that writes one byte every
// `every` and reads (user-timeout, write-probe, oob-probe): on a silent
// peer the retransmission timer gives up on the first write never
// acknowledged (tcp_retries2 r2, 0 meaning the default 15, or the
// user timeout when not 0); into a resetting path its next write, or a
// resend of data already in flight, meets the RST (WriterResetAfter).
func writerSample(st tcprules.ConnState, e harness.Effect, every time.Duration, r2 int, userTimeout time.Duration) (tcprules.Forecast, bool) {
	if f, ok := closeSample(e); ok {
		return f, true
	}
	switch e {
	case harness.EffectSilent:
		return tcprules.WriterRetransmission(st, every, retries2(r2), tcprules.RTOMax, userTimeout), true
	case harness.EffectResetOnWrite:
		return tcprules.WriterResetAfter(st, every, retries2(r2), tcprules.RTOMax, userTimeout, 0), true
	}
	return tcprules.Forecast{}, false
}

// pollSample shifts a forecast of when the socket's state changes by the
// next poll of a poller that reads it every `every`: its phase against
// the fault is not in the state, so the poll lies anywhere in [0, every].
func pollSample(f tcprules.Forecast, every time.Duration) tcprules.Forecast {
	if f.Never {
		return f
	}
	e := every.Seconds()
	f.AtS += e / 2
	f.HiS += e
	f.Rule = fmt.Sprintf("the next TCP_INFO poll, within %v and at an unknown phase, sees the state change: %s", every, f.Rule)
	return f
}

// earlier is the forecast that decides first of two rules that race (a
// heart-beat's deadline and the RST its next ping meets).
func earlier(a, b tcprules.Forecast) tcprules.Forecast {
	switch {
	case a.Never:
		return b
	case b.Never || a.AtS <= b.AtS:
		return a
	}
	return b
}

// retries2 is a detector's tcp_retries2 parameter, or the kernel's
// default when it was left to the namespace and not read.
func retries2(r int) int {
	if r == 0 {
		return tcprules.DefaultRetries2
	}
	return r
}
