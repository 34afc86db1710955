package harness

import (
	"slices"
	"time"
)

// Expecter is a fault whose theory depends on the detector in a way its
// Effect alone cannot say (a proxy that answers for a dead peer, a close
// delayed by a toxic). Resolve uses its answer in place of the effect's
// generic one for detection cells: the prediction and "detect" or "never".
type Expecter interface {
	Expect(det Detector) (Prediction, string)
}

// Sender is a detector that says the longest time its watcher lets pass
// without sending a segment while its peer does not answer (a keepalive's
// max(idle, intvl), a heart-beat's interval, a periodic write's interval
// plus the retransmission backoff). Theory uses it for faults whose path
// answers the watcher's next segment with an RST.
type Sender interface {
	MaxSendGap() time.Duration
}

// ResetAfterer is an rst-on-write fault whose path starts answering with
// RST only some time after the injection (a host that reboots after being
// down); without it the path answers at once.
type ResetAfterer interface {
	ResetAfter() time.Duration
}

func resetAfter(f Fault) time.Duration {
	if r, ok := f.(ResetAfterer); ok {
		return r.ResetAfter()
	}
	return 0
}

// resetReasons are what a socket reports when its segment is answered by
// an RST: a blocked read fails with ECONNRESET, a write after it with EPIPE.
var resetReasons = []string{"ECONNRESET", "EPIPE"}

// ExpectResetOnWrite is the theory of a path that answers the watcher's
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
func ExpectResetOnWrite(det Detector, after time.Duration) (Prediction, string) {
	p := det.Predict()
	if p.Never {
		p.Rule = "rst-on-write: the detector sends nothing on an idle connection, so no segment meets the RST; " + p.Rule
		return p, "never"
	}
	if p.Hi <= after {
		p.Rule = "rst-on-write: the detector's own deadline ends before the path answers with RST; " + p.Rule
		return p, "detect"
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
	return out, "detect"
}
