package detectors

import (
	"fmt"
	"time"

	"github.com/halfopen/halfopen/harness"
)

// Constants of the Linux retransmission timer (include/net/tcp.h).
const (
	tcpRTOMin = 200 * time.Millisecond // TCP_RTO_MIN
	tcpRTOMax = 120 * time.Second      // TCP_RTO_MAX
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

// jiffy is one tick of the kernel's clock (CONFIG_HZ=250 on the lab's
// kernel): the RTO is a whole number of jiffies, rounded up, so the minimum
// RTO of 200 ms plus a sub-millisecond srtt is 51 jiffies, 204 ms.
const jiffy = 4 * time.Millisecond

// wheelSlack is how late the timer wheel may fire a timer of length d
// (kernel/time/timer.c): the timer is filed at the level whose slots hold
// its expiry, and fires at the next slot boundary, up to one slot late;
// slots are 8^level jiffies, levels hold up to 63·8^level jiffies.
func wheelSlack(d time.Duration) time.Duration {
	j := int64(d / jiffy)
	gran := int64(1)
	for lvl := int64(64); j >= lvl; lvl *= 8 {
		gran *= 8
	}
	return time.Duration(gran) * jiffy
}

// retransmitGiveUp returns when, after the first unacknowledged byte is
// sent, the kernel gives up retransmitting it: at the earliest (no timer
// late, no tail-loss probe first) and at the latest (every timer as late as
// the wheel allows, after a tail-loss probe).
//
// tcp_retransmit_timer() asks tcp_write_timeout() before each
// retransmission whether retransmits_timed_out(): whether the time since
// retrans_stamp has reached tcp_model_timeout(), the backoff sum of
// retransmitTimeout. retrans_stamp is stamped by tcp_retransmit_skb() at
// the first RTO retransmission ("Save stamp of the first (attempted)
// retransmit", net/ipv4/tcp_output.c), not at the original send and not by
// the tail-loss probe, which goes through __tcp_retransmit_skb(). So the
// first RTO firing (one RTO, 204 ms, after the send, or after the
// tail-loss probe, which waits TCP_RTO_MIN more when one segment is out,
// tcp_schedule_loss_probe()) starts the count, and the kernel gives up at
// the first later firing, each one RTO doubled (capped at 120 s), that is
// at least the model timeout after it. With tcp_retries2=15 the model is
// 924.6 s and the giving up comes 928.5 s after the first retransmission.
func retransmitGiveUp(retries2 int) (lo, hi time.Duration) {
	model := retransmitTimeout(retries2)
	rto := tcpRTOMin + jiffy
	var nominal, late []time.Duration // since the first RTO firing
	var sumN, sumL time.Duration
	iv := rto
	for len(nominal) == 0 || nominal[len(nominal)-1] < model {
		iv = min(2*iv, tcpRTOMax)
		sumN += iv
		sumL += iv + wheelSlack(iv)
		nominal, late = append(nominal, sumN), append(late, sumL)
	}
	// The earliest firing that can reach the model with late timers, and
	// the first that reaches it on time.
	first := len(late) - 1
	for i, l := range late {
		if l >= model {
			first = i
			break
		}
	}
	lo = rto + nominal[first]
	hi = tcpRTOMin + rto + wheelSlack(rto) + late[len(late)-1]
	// One firing later: the retransmission clock is not the 204 ms model's
	// alone. A tail-loss probe restamps and rearms it, and the RTO is
	// srtt + rttvar (RFC 6298, floored at TCP_RTO_MIN), so a check can fall
	// just short of the timeout and the kernel gives up at the next, doubled,
	// firing (measured once in about 40 retries2=2 samples: 5.16 s).
	next := min(2*iv, tcpRTOMax)
	hi += next + wheelSlack(next)
	return lo, hi
}

// retransmitPrediction is the detection range of a detector that writes
// every `every` and learns of death when the kernel gives up retransmitting:
// the first byte left unacknowledged is written within `every` of the
// death, and retransmitGiveUp follows.
func retransmitPrediction(retries2 int, every time.Duration) harness.Prediction {
	lo, hi := retransmitGiveUp(retries2)
	return harness.Prediction{
		Lo: lo, Hi: hi + every + 50*time.Millisecond,
		Reasons: []string{"ETIMEDOUT"},
		Rule: fmt.Sprintf("tcp_write_timeout()/retransmits_timed_out() (net/ipv4/tcp_timer.c): with tcp_retries2=%d tcp_model_timeout() is %s (the default 15: 924.6 s), counted from the first RTO retransmission (204 ms after the send, or after a tail-loss probe) and checked only when the doubling RTO timer fires: the kernel gives up %s–%s after the first unacknowledged byte, which goes within `every` of the death (+50 ms)",
			retries2, retransmitTimeout(retries2), lo, hi),
	}
}

// tcpResourceProbeInterval is TCP_RESOURCE_PROBE_INTERVAL (include/net/tcp.h).
const tcpResourceProbeInterval = 500 * time.Millisecond

// localFailurePrediction is when a detector bound by tcp_retries2 gives up
// while its own link has no carrier: its retransmissions fail in its own
// stack, and tcp_retransmit_timer() (net/ipv4/tcp_timer.c) re-arms the
// timer for min(rto, TCP_RESOURCE_PROBE_INTERVAL) without doubling ("local
// congestion"), checking retransmits_timed_out() at each expiry: it gives up
// at the first expiry at least tcp_model_timeout() after the first
// unacknowledged byte, which goes within `every` of the pull.
func localFailurePrediction(retries2 int, every time.Duration) harness.Prediction {
	model := retransmitTimeout(retries2)
	return harness.Prediction{
		Lo: model, Hi: model + every + tcpResourceProbeInterval + 50*time.Millisecond,
		Reasons: []string{"ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"},
		Rule:    fmt.Sprintf("its own link has no carrier: retransmissions fail locally and tcp_retransmit_timer() re-arms every min(rto, TCP_RESOURCE_PROBE_INTERVAL = 500 ms) without backoff; it gives up at the first expiry at least tcp_model_timeout(tcp_retries2=%d) = %v after the first unacknowledged byte, written within `every` of the pull (+50 ms)", retries2, model),
	}
}
