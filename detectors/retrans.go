package detectors

import (
	"fmt"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// retransmitPrediction is the detection range of a detector that writes
// every `every` and learns of death when the kernel gives up retransmitting
// (tcprules.RetransmitRange with a veth lab's RTO, tcprules.RTOFast: 204 ms
// at HZ 250): the first byte left unacknowledged is written within `every`
// of the death (+50 ms).
func retransmitPrediction(retries2 int, every time.Duration) harness.Prediction {
	r := tcprules.RetransmitRange(retries2, tcprules.RTOFast())
	r.Hi += every + 50*time.Millisecond
	r.Rule += ", which goes within `every` of the death (+50 ms)"
	return prediction(r, "ETIMEDOUT")
}

// localFailurePrediction is when a detector bound by tcp_retries2 gives up
// while its own link has no carrier: its retransmissions fail in its own
// stack, and tcp_retransmit_timer() (net/ipv4/tcp_timer.c) re-arms the
// timer for min(rto, TCP_RESOURCE_PROBE_INTERVAL) without doubling ("local
// congestion"), checking retransmits_timed_out() at each expiry: it gives up
// at the first expiry at least tcp_model_timeout() after the first
// unacknowledged byte, which goes within `every` of the pull.
func localFailurePrediction(retries2 int, every time.Duration) harness.Prediction {
	model := tcprules.Budget(retries2, tcprules.RTOMax)
	return harness.Prediction{
		Lo: model, Hi: model + every + tcprules.ResourceProbeInterval + 50*time.Millisecond,
		Reasons: []string{"ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"},
		Rule:    fmt.Sprintf("its own link has no carrier: retransmissions fail locally and tcp_retransmit_timer() re-arms every min(rto, TCP_RESOURCE_PROBE_INTERVAL = 500 ms) without backoff; it gives up at the first expiry at least tcp_model_timeout(tcp_retries2=%d) = %v after the first unacknowledged byte, written within `every` of the pull (+50 ms)", retries2, model),
	}
}
