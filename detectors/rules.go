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
// A path that resets only some time after the fault (a harness
// ResetAfterer) is not an Effect the state can date; such a sample needs
// the fault's delay added by the caller.

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
		return tcprules.FirstResend(st), true
	}
	return tcprules.Forecast{}, false
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
		return tcprules.KeepaliveFirstProbe(st, idle, intvl), true
	}
	return tcprules.Forecast{}, false
}

// writerSample is the forecast of a detector that writes one byte every
// `every` and reads (user-timeout, write-probe, oob-probe): on a silent
// peer the retransmission timer gives up on the first write never
// acknowledged (tcp_retries2 retries2, 0 meaning the default 15, or the
// user timeout when not 0); into a resetting path its next write, or a
// resend of data already in flight, meets the RST.
func writerSample(st tcprules.ConnState, e harness.Effect, every time.Duration, retries2 int, userTimeout time.Duration) (tcprules.Forecast, bool) {
	if f, ok := closeSample(e); ok {
		return f, true
	}
	switch e {
	case harness.EffectSilent:
		if retries2 == 0 {
			retries2 = tcprules.DefaultRetries2
		}
		return tcprules.WriterRetransmission(st, every, retries2, tcprules.RTOMax, userTimeout), true
	case harness.EffectResetOnWrite:
		return nextWrite(st, every, "its next write"), true
	}
	return tcprules.Forecast{}, false
}

// nextWrite is the forecast of the first segment a detector that writes
// every `every` sends after the fault: its next write (dated by
// tcpi_last_data_sent, its last), or a resend of data in flight if that
// comes first.
func nextWrite(st tcprules.ConnState, every time.Duration, what string) tcprules.Forecast {
	next := tcprules.NextTick(st.SinceDataSentS, every)
	j := tcprules.Jiffy.Seconds()
	f := tcprules.Forecast{
		AtS: next.Seconds(), LoS: max(0, next.Seconds()-j), HiS: next.Seconds() + j,
		Rule: fmt.Sprintf("%s, every %v: %v after the last, sent %.3f s before the fault (tcpi_last_data_sent)", what, every, every, st.SinceDataSentS),
	}
	if st.Unacked > 0 {
		if r := tcprules.FirstResend(st); !r.Never && r.AtS < f.AtS {
			return r
		}
	}
	return f
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
