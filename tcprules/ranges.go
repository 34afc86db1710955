package tcprules

import (
	"fmt"
	"time"
)

// The kernel's retransmission constants (include/net/tcp.h; KERNEL-RULES
// §2), the same at every tick rate. The tick itself is the running
// kernel's (KernelTick).
const (
	// RTOMin is TCP_RTO_MIN (include/net/tcp.h), the floor of rttvar in
	// the RTO and the constant base of tcp_model_timeout().
	RTOMin = 200 * time.Millisecond
	// RTOMax is TCP_RTO_MAX (tcp_rto_max_ms 120000), the cap of the
	// doubling RTO.
	RTOMax = 120 * time.Second
	// ResourceProbeInterval is TCP_RESOURCE_PROBE_INTERVAL: how soon a
	// timer whose segment the local stack refused (qdisc, no carrier)
	// tries again, without back-off or counting (tcp_timer.c L841–849,
	// tcp_retransmit_timer "local congestion").
	ResourceProbeInterval = 500 * time.Millisecond
	// DefaultRetries2 is net.ipv4.tcp_retries2's kernel default, used
	// where a rule is not told the namespace's value.
	DefaultRetries2 = 15
)

// RTOFast is the RTO on a fast link (srtt ≤ 1 j) on the running kernel:
// srtt + rttvar, rttvar at its floor RTOMin, rounded up to jiffies
// (tcp_input.c tcp_set_rto ~L1142): RTOMin plus one jiffy, 51 j = 204 ms
// at HZ 250 (what tcpi_rto reads on a veth lab), 201 ms at HZ 1000,
// 210 ms at HZ 100.
func RTOFast() time.Duration { return KernelTick().rtoFast() }

// Range is the span after a fault in which a rule puts a detection, for
// a cell's summary and for roles that predict without per-sample state.
type Range struct {
	// Lo and Hi bound the detection, after the fault.
	Lo, Hi time.Duration
	// Rule cites the kernel source the bounds follow.
	Rule string
}

// WheelLate stretches a sum of timer-wheel timeouts by the wheel's
// worst-case lateness for whole-second timers, 1/8 of each
// (kernel/time/timer.c calc_wheel_index L542: a level's step is 8^l j,
// about 1/8 of its first delta, 63·8^(l−1) j).
func WheelLate(d time.Duration) time.Duration { return d + d/8 }

// KeepaliveRange is when an idle connection's keepalive gives up after a
// silent fault that lands at any time after the last exchange
// (tcp_timer.c tcp_keepalive_timer L779–865; KERNEL-RULES §1): the first
// probe goes idle after the last segment received, so 0 to idle after the
// fault, and the cnt-th unanswered probe's timer, cnt·intvl later, kills
// (L831–840): [cnt·intvl, idle + cnt·intvl], the upper bound stretched by
// the timer wheel's 1/8.
func KeepaliveRange(idle, intvl time.Duration, cnt int) Range {
	probes := time.Duration(cnt) * intvl
	return Range{
		Lo: probes, Hi: WheelLate(idle + probes),
		Rule: "tcp_keepalive_timer() (tcp_timer.c L779–865): first probe within idle of the last segment, then cnt probes intvl apart, killed at the firing after the cnt-th (L831–840): [cnt·intvl, idle+cnt·intvl], the upper bound +12.5% for timer-wheel granularity (timer.c calc_wheel_index)",
	}
}

// KeepaliveUserTimeoutK is how many probe intervals after the first probe
// keepalive with TCP_USER_TIMEOUT kills, ideally (no late timer): the
// first k ≥ 1 with idle + k·intvl ≥ timeout (tcp_timer.c L831–840: cnt is
// ignored once a user timeout is set).
func KeepaliveUserTimeoutK(idle, intvl, timeout time.Duration) int {
	k := 1
	if rest := timeout - idle; rest > 0 {
		k = max(1, int((rest+intvl-1)/intvl))
	}
	return k
}

// KeepaliveUserTimeoutRange is KeepaliveRange with TCP_USER_TIMEOUT set:
// the kernel kills at the first keepalive firing with one probe out and
// the idle time ≥ timeout, ignoring cnt (tcp_timer.c L831–840;
// KERNEL-RULES §1): k = KeepaliveUserTimeoutK, [k·intvl, idle + k·intvl],
// the upper bound stretched by the timer wheel's 1/8.
func KeepaliveUserTimeoutRange(idle, intvl, timeout time.Duration) Range {
	k := KeepaliveUserTimeoutK(idle, intvl, timeout)
	n := time.Duration(k) * intvl
	return Range{
		Lo: n, Hi: WheelLate(idle + n),
		Rule: fmt.Sprintf("tcp_keepalive_timer() with TCP_USER_TIMEOUT (tcp_timer.c L831–840): gives up at the first probe timer with probes_out > 0 and elapsed >= user_timeout, ignoring cnt: k = max(1, ⌈(timeout−idle)/intvl⌉) = %d: [k·intvl, idle+k·intvl], the upper bound +12.5%% for timer-wheel granularity", k),
	}
}

// UserTimeoutRange is when TCP_USER_TIMEOUT kills a connection that
// writes every `every` after a silent fault: the first byte left
// unacknowledged goes within `every` of the fault, the first RTO resend
// t1 follows it by two RTOs or so (a tail-loss probe first: 412–416 ms at
// HZ 250, 440 ms at HZ 100), and the kernel kills at t1 + timeout, the
// last re-arm clamped to what is left (tcp_timer.c tcp_write_timeout
// L281–283, tcp_clamp_rto_to_user_timeout L27–47; KERNEL-RULES §2).
// Measured on the lab (HZ 250): 2 s with 200 ms writes → 2.50–2.52 s.
// Range: [timeout, timeout + every + 600 ms].
func UserTimeoutRange(timeout, every time.Duration) Range {
	return Range{
		Lo: timeout, Hi: timeout + every + 600*time.Millisecond,
		Rule: "tcp_write_timeout() (tcp_timer.c L281–283): ETIMEDOUT at the first retransmission-timer expiry after the first RTO resend (412–416 ms at HZ 250 after the oldest unacknowledged byte, written within `every` of the death) is `timeout` old, the last re-arm clamped to it (tcp_clamp_rto_to_user_timeout L27–47); RTO granularity adds up to 600 ms",
	}
}

// Budget is tcp_model_timeout() (tcp_timer.c L186–199): how long after the
// first RTO resend retransmits_timed_out() lets tcp_retries2 resends run,
// from the constant base TCP_RTO_MIN doubling up to rtoMax. B(15) = 924.6 s
// at 120 s; B(5) = 12.6 s.
func Budget(retries2 int, rtoMax time.Duration) time.Duration {
	thresh := 0 // ilog2(rtoMax / TCP_RTO_MIN)
	for r := rtoMax / RTOMin; r > 1; r /= 2 {
		thresh++
	}
	if retries2 <= thresh {
		return time.Duration((2<<retries2)-1) * RTOMin
	}
	return time.Duration((2<<thresh)-1)*RTOMin + time.Duration(retries2-thresh)*rtoMax
}

// wheelStep is how late the timer wheel may fire a timer of length d
// (kernel/time/timer.c calc_wheel_index L542): it is filed at the level
// whose slots hold its expiry and fires at the next slot boundary, up to
// one slot late; slots are 8^level jiffies, levels start at 63·8^(level−1).
func (t Tick) wheelStep(d time.Duration) time.Duration {
	j, _ := t.floor(d)
	return t.dur(wheelGran(j))
}

// RetransmitRange is when the kernel gives up retransmitting data in
// flight (tcp_retransmit_timer L531–686, tcp_write_timeout L241–304;
// KERNEL-RULES §2), counted from the send of the first segment never
// acknowledged, for an RTO of rto (tcpi_rto; RTOFast on a veth lab), on
// the running kernel's tick (its wheel's steps are jiffies): the
// budget B(retries2) runs from the first RTO resend t1 (retrans_stamp,
// tcp_output.c tcp_retransmit_skb ~L3648), which comes rto after the send
// or after a tail-loss probe, and the kernel gives up at the first firing
// of the doubling RTO (capped at TCP_RTO_MAX) at least B after t1. Lo: no
// tail-loss probe, no late timer; Hi: a tail-loss probe first, every timer
// as late as the wheel allows, and one firing more (a check can fall just
// short of B when the RTO is not the fast link's, measured once in about
// 40 retries2=2 samples at HZ 250: 5.16 s).
func RetransmitRange(retries2 int, rto time.Duration) Range {
	return KernelTick().retransmitRange(retries2, rto)
}

func (t Tick) retransmitRange(retries2 int, rto time.Duration) Range {
	model := Budget(retries2, RTOMax)
	var nominal, late []time.Duration // since the first RTO firing
	var sumN, sumL time.Duration
	iv := rto
	for len(nominal) == 0 || nominal[len(nominal)-1] < model {
		iv = min(2*iv, RTOMax)
		sumN += iv
		sumL += iv + t.wheelStep(iv)
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
	lo := rto + nominal[first]
	hi := RTOMin + rto + t.wheelStep(rto) + late[len(late)-1]
	next := min(2*iv, RTOMax)
	hi += next + t.wheelStep(next)
	return Range{
		Lo: lo, Hi: hi,
		Rule: fmt.Sprintf("tcp_write_timeout()/retransmits_timed_out() (tcp_timer.c L213–304): with tcp_retries2=%d tcp_model_timeout() (L186–199) is %s (the default 15: 924.6 s), counted from the first RTO resend (rto %s after the send, or after a tail-loss probe; tcp_output.c tcp_retransmit_skb ~L3648) and checked only when the doubling RTO timer fires: the kernel gives up %s–%s after the first unacknowledged segment",
			retries2, model, rto, lo, hi),
	}
}

// ResendAfter is when a segment first lost at t0 is resent at or after
// t0 + silence: the first expiry of the retransmission timer doubling from
// rto up to TCP_RTO_MAX (tcp_retransmit_timer L599–681, RFC 6298 §5.5),
// counted from t0.
func ResendAfter(silence, rto time.Duration) time.Duration {
	at := time.Duration(0)
	for at < silence {
		at += rto
		rto = min(2*rto, RTOMax)
	}
	return at
}
