package detectors

import (
	"fmt"
	"strconv"
	"time"

	"github.com/halfopen/halfopen/harness"
)

// Constants of the Linux retransmission timer (include/net/tcp.h).
const (
	tcpRTOMin = 200 * time.Millisecond // TCP_RTO_MIN
	tcpRTOMax = 120 * time.Second      // TCP_RTO_MAX
	// defaultRetries2 is net.ipv4.tcp_retries2's default (TCP_RETR2).
	defaultRetries2 = 15
)

// retransmitTimeout is how long the kernel retransmits unacknowledged data
// before it gives up with ETIMEDOUT, from tcp_model_timeout() in
// net/ipv4/tcp_timer.c as used by retransmits_timed_out() (called from
// tcp_write_timeout()): the sum of an RTO backoff that starts at
// TCP_RTO_MIN and doubles, capped at TCP_RTO_MAX, for retries2+1 timer
// expiries. With the default 15: (2^10 − 1)·0.2 s + 6·120 s = 924.6 s.
func retransmitTimeout(retries2 int) time.Duration {
	thresh := 0 // ilog2(TCP_RTO_MAX / rto_base)
	for r := tcpRTOMax / tcpRTOMin; r > 1; r /= 2 {
		thresh++
	}
	if retries2 <= thresh {
		return time.Duration((2<<retries2)-1) * tcpRTOMin
	}
	return time.Duration((2<<thresh)-1)*tcpRTOMin + time.Duration(retries2-thresh)*tcpRTOMax
}

// retransmitPrediction is the detection range of a detector that writes
// every `every` and learns of death when the kernel gives up retransmitting:
// the first byte left unacknowledged is written within `every` of the
// death, the kernel gives up at the first timer expiry at or after
// retransmitTimeout of it, and the timers run late by the jiffy rounding of
// the RTO (HZ=250: 204 ms instead of 200) and the timer wheel's coarser
// slots for long timeouts: an eighth of the timeout covers both.
func retransmitPrediction(retries2 int, every time.Duration) harness.Prediction {
	t := retransmitTimeout(retries2)
	return harness.Prediction{
		Lo: t, Hi: t + every + t/8 + 100*time.Millisecond,
		Reasons: []string{"ETIMEDOUT"},
		Rule: fmt.Sprintf("tcp_write_timeout()/retransmits_timed_out() (net/ipv4/tcp_timer.c): with tcp_retries2=%d the RTO backoff 200 ms·2^k, capped at 120 s, sums to %s (default 15: 924.6 s); the first unacknowledged byte goes within `every` of the death; timer granularity adds up to 1/8",
			retries2, t),
	}
}

// retries2Sysctl is the watcher namespace's tcp_retries2 a detector needs.
func retries2Sysctl(retries2 int) map[string]string {
	return map[string]string{"net.ipv4.tcp_retries2": strconv.Itoa(retries2)}
}
