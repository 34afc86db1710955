package harness

import (
	"fmt"
	"slices"
	"time"

	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/tcprules"
)

// theory returns what theory says of a detector under a fault, by the
// precedence stated in contract.go, and the cell's kind.
func theory(det Detector, flt Fault) (Prediction, report.Expectation, report.Kind) {
	e := flt.Effect()
	if e == EffectTransient {
		p, expect := disturbanceTheory(det, flt)
		return p, expect, report.KindDisturbance
	}
	var p Prediction
	var expect report.Expectation
	switch {
	case isA[Expecter](flt):
		p, expect = flt.(Expecter).Expect(det)
	case e == EffectResetOnWrite:
		after := time.Duration(0)
		if r, ok := flt.(resetAfterer); ok {
			after = r.ResetAfter()
		}
		p, expect = expectResetOnWrite(det, after)
	case isA[linkCutter](flt) && isA[LocalFailurePredictor](det):
		p, expect = det.(LocalFailurePredictor).PredictLocalFailure(), report.ExpectDetect
	default:
		p, expect = EffectTheory(det, e)
	}
	if fr, ok := flt.(FaultReasons); ok && e == EffectSilent && slices.Contains(p.Reasons, "ETIMEDOUT") {
		p.Reasons = fr.Reasons()
	}
	if w, ok := det.(worder); ok && len(w.OwnReasons()) > 0 {
		// A library words its decisions its own way, whatever the fault.
		p.Reasons = w.OwnReasons()
	}
	return p, expect, report.KindDetection
}

func isA[T any](v any) bool {
	_, ok := v.(T)
	return ok
}

// EffectTheory is the generic rule of an Effect: a FIN or an RST is seen
// at once by a blocked read, or as the socket's new state (CLOSE_WAIT) by
// a program that polls it (unless the detector predicts its own
// reaction), a silent peer gets the detector's own prediction, and a path
// that resets the watcher's next segment at once is ExpectResetOnWrite's.
// An Expecter fault falls back on it for the detectors it has nothing
// special to say about.
func EffectTheory(det Detector, e Effect) (Prediction, report.Expectation) {
	if e == EffectResetOnWrite {
		return expectResetOnWrite(det, 0)
	}
	if cp, ok := det.(ClosePredictor); ok && e != EffectSilent {
		p := cp.PredictClose(e)
		if p.Never {
			return p, report.ExpectNever
		}
		return p, report.ExpectDetect
	}
	const rule = "a blocked read returns as soon as the segment arrives over two veth hops (tens of µs); 50 ms allows for a loaded 2-core machine"
	switch e {
	case EffectFIN:
		return Prediction{Hi: 50 * time.Millisecond, Rule: "FIN: read returns 0 and the socket enters CLOSE_WAIT (tcp_fin(), net/ipv4/tcp_input.c; RFC 793), which a program that polls TCP_INFO reports by its name; " + rule, Reasons: []string{"EOF", "CLOSE_WAIT"}}, report.ExpectDetect
	case EffectRST:
		return Prediction{Hi: 50 * time.Millisecond, Rule: "RST: read fails with ECONNRESET (RFC 793 §3.4); " + rule, Reasons: []string{"ECONNRESET"}}, report.ExpectDetect
	case EffectFINOrRST:
		return Prediction{Hi: 50 * time.Millisecond, Rule: "the peer's kernel closes its socket: FIN, or RST if unread data was queued (tcp_close(), RFC 2525 §2.17); " + rule, Reasons: []string{"EOF", "CLOSE_WAIT", "ECONNRESET"}}, report.ExpectDetect
	}
	p := det.Predict()
	if p.Never {
		return p, report.ExpectNever
	}
	return p, report.ExpectDetect
}

// resetReasons are what a socket reports when its segment is answered by
// an RST: a blocked read fails with ECONNRESET, a write after it with EPIPE.
var resetReasons = []string{"ECONNRESET", "EPIPE"}

// expectResetOnWrite is the theory of a path that answers the watcher's
// next segment with an RST from `after` on (0: at once). The rule:
//
//   - A detector that never decides on a silent peer sends nothing on an
//     idle connection (read-eof), so no segment ever meets the RST: never.
//   - A detector whose silent-peer deadline ends before the path answers
//     (Hi ≤ after) gives up first, with its silent prediction.
//   - Otherwise its first segment after `after` is reset: ECONNRESET in
//     [after, after + gap], where gap is the detector's MaxSendGap if it
//     implements Sender, else its silent-peer Hi (a detector that decides on
//     a silent peer has sent by its deadline). When its timer may end before
//     the return (Lo ≤ after) the range and reasons of both are joined.
func expectResetOnWrite(det Detector, after time.Duration) (Prediction, report.Expectation) {
	p := det.Predict()
	if p.Never {
		p.Rule = "rst-on-write: the detector sends nothing on an idle connection, so no segment meets the RST; " + p.Rule
		return p, report.ExpectNever
	}
	if p.Hi <= after {
		p.Rule = "rst-on-write: the detector's own deadline ends before the path answers with RST; " + p.Rule
		return p, report.ExpectDetect
	}
	gap := p.Hi
	how := "its silent-peer deadline bounds its next send"
	if s, ok := det.(Sender); ok {
		gap, how = s.MaxSendGap(), "its declared longest gap between sends"
	}
	out := Prediction{
		Lo: after, Hi: after + gap, Reasons: append([]string(nil), resetReasons...),
		Rule: "rst-on-write: the watcher's first segment after the path answers (" + after.String() + ") is reset: ECONNRESET within " + how + " (" + gap.String() + ")",
	}
	if p.Lo <= after {
		out.Lo = min(out.Lo, p.Lo)
		out.Hi = min(out.Hi, p.Hi)
		for _, r := range p.Reasons {
			if !slices.Contains(out.Reasons, r) {
				out.Reasons = append(out.Reasons, r)
			}
		}
		out.Rule += "; its own timer may end first: " + p.Rule
	}
	return out, report.ExpectDetect
}

// NeverBudget is a sample's budget when its cell gives none and theory
// predicts that its detector never decides.
const NeverBudget = 3 * time.Second

// defaultBudget is how long a detection sample waits for a decision when
// the cell does not say: the prediction's end plus half of it, at least
// 1.5 s more (a loaded machine), or NeverBudget when theory says never.
// Disturbances have no budget: they observe their window.
func defaultBudget(kind report.Kind, p Prediction) time.Duration {
	switch {
	case kind == report.KindDisturbance:
		return 0
	case p.Never:
		return NeverBudget
	default:
		return p.Hi + max(1500*time.Millisecond, p.Hi/2)
	}
}

// theorySlack is kept between a bound and a prediction before theory
// claims anything: process wake-ups on a loaded machine.
const theorySlack = 50 * time.Millisecond

// resentBy is when a segment first lost at t0 is resent at or after t0 +
// silence, on a veth lab's RTO (tcprules.ResendAfter from RTOFast).
func resentBy(silence time.Duration) time.Duration {
	return tcprules.ResendAfter(silence, tcprules.RTOFast())
}

// disturbanceTheory says what a detector does when a transient fault
// disturbs a healthy connection, from what both declare; first match wins:
//
//   - a signalVictim under a signaller: it decides (false positives);
//   - a detector that never decides on a silent peer: survives;
//   - the path silent for longer than the detector's silent-peer Hi (plus
//     slack): it surely decided within the silence (false positives);
//   - the watcher hears its peer again (gap after the silence began) before
//     its silent-peer Lo (minus slack): survives. A Sender's next segment
//     goes within MaxSendGap of the heal: gap = Max + MaxSendGap. A
//     Writer's segment went into the silence within WriteEvery of its
//     start and, lost, is resent by the doubling timer (resentBy); only
//     delayed, it arrives Max late: gap = WriteEvery + resentBy(Max), or
//     WriteEvery + Max;
//   - otherwise theory does not say, and the cell is measured, not judged
//     (report.ExpectUnknown).
//
// The prediction returned is the detector's silent-peer one, with the rule
// that decided.
func disturbanceTheory(det Detector, flt Fault) (Prediction, report.Expectation) {
	p := det.Predict()
	_, victim := det.(signalVictim)
	_, signals := flt.(signaller)
	var sil Silence
	if s, ok := flt.(Silencer); ok {
		sil = s.Silence()
	}
	why := func(expect report.Expectation, rule string) (Prediction, report.Expectation) {
		p.Rule = rule + "; " + p.Rule
		return p, expect
	}
	switch {
	case victim && signals:
		return why(report.ExpectFalsePositives, "a caught signal makes its select() fail with EINTR, which it takes for death")
	case p.Never:
		return why(report.ExpectSurvive, "it never decides on a silent peer, and the disturbance heals")
	case sil.Min > p.Hi+theorySlack:
		return why(report.ExpectFalsePositives, fmt.Sprintf("the path is silent for at least %v, longer than it takes to decide (at most %v)", sil.Min, p.Hi))
	}
	var gap time.Duration
	var how string
	if s, ok := det.(Sender); ok {
		gap, how = sil.Max+s.MaxSendGap(), fmt.Sprintf("its next segment goes within %v of the heal", s.MaxSendGap())
	} else if w, ok := det.(Writer); ok {
		if sil.Lossy {
			gap, how = w.WriteEvery()+resentBy(sil.Max), fmt.Sprintf("its write, within %v of the silence, is resent by the doubling timer %v after it", w.WriteEvery(), resentBy(sil.Max))
		} else {
			gap, how = w.WriteEvery()+sil.Max, fmt.Sprintf("its write, within %v of the silence, arrives %v late", w.WriteEvery(), sil.Max)
		}
	} else {
		return why(report.ExpectUnknown, "theory does not bound when it hears its peer again")
	}
	if gap+theorySlack < p.Lo {
		return why(report.ExpectSurvive, fmt.Sprintf("silent for at most %v, it hears its peer again within %v (%s), before it can decide (at least %v)", sil.Max, gap, how, p.Lo))
	}
	return why(report.ExpectUnknown, fmt.Sprintf("silent for %v–%v, it hears its peer again within %v (%s), not surely before it can decide (at least %v)", sil.Min, sil.Max, gap, how, p.Lo))
}

// The capabilities theory asks of a single fault or detector (contract.go).
type (
	// resetAfterer is an EffectResetOnWrite fault whose path resets only
	// some time after the injection (a host that reboots after being down).
	resetAfterer interface{ ResetAfter() time.Duration }
	// linkCutter is a fault that takes away the watcher's own link.
	linkCutter interface{ CutsWatcherLink() }
	// signaller is a transient fault that sends the watcher signals.
	signaller interface{ SignalsWatcher() }
	// signalVictim takes a caught signal for its peer's death (EINTR unchecked).
	signalVictim interface{ FooledBySignals() }
	// worder words its decisions its library's way, under every fault.
	worder interface{ OwnReasons() []string }
)
