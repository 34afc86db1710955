package tcprules

import (
	"fmt"
	"math"
	"time"
)

// The per-sample rules below follow one connection's timers from its
// state at the fault, jiffy by jiffy, through the timer wheel
// (wheel.go). Two things the state cannot say are swept instead: where
// the fault's jiffy lies against the wheel's coarser steps (the
// alignment, every residue modulo the largest step in play) and where
// the fault and the last send lie inside their jiffies. A Forecast's LoS
// and HiS are the extremes over them; AtS is their middle, so no
// unknown moves the decision further than half the window from it.

// origin is the fault's jiffy, far from zero so that jiffies before it
// stay positive, and a multiple of every wheel step that matters.
const origin = int64(1) << 40

// msPerJiffy converts the jiffy differences the kernel compares with
// millisecond limits (retransmits_timed_out).
const msPerJiffy = int64(Jiffy / time.Millisecond)

// jiffiesAgo is a tcpi_last_* or tcp_info duration in whole jiffies: the
// kernel reports jiffies_to_msecs of a jiffy difference.
func jiffiesAgo(seconds float64) int64 { return int64(math.Round(seconds * HZ)) }

// ceilJiffies is msecs_to_jiffies: a duration rounded up to jiffies.
func ceilJiffies(d time.Duration) int64 { return int64((d + Jiffy - 1) / Jiffy) }

// alignments are the fault jiffy's residues modulo the largest wheel step
// a chain with timers up to maxDelta jiffies meets, at most 1024 of them.
func alignments(maxDelta int64) []int64 {
	g := wheelGran(maxDelta)
	stride := max(1, g/1024)
	var out []int64
	for a := int64(0); a < g; a += stride {
		out = append(out, a)
	}
	if out[len(out)-1] != g-1 {
		out = append(out, g-1)
	}
	return out
}

// span gathers the jiffies, counted from the fault's, at which a rule's
// chain ends over the unknowns it sweeps.
type span struct {
	lo, hi int64
	set    bool
}

func (s *span) add(j int64) {
	if !s.set || j < s.lo {
		s.lo = j
	}
	if !s.set || j > s.hi {
		s.hi = j
	}
	s.set = true
}

// forecast turns the span into seconds after the fault: the fault lies
// somewhere inside its jiffy, so a timer firing j jiffies on comes
// (j−1, j] jiffies after it (KERNEL-RULES §4, "± 1 j for where the start
// falls within its tick").
func (s span) forecast(rule string) Forecast {
	lo := max(0, float64(s.lo-1)/HZ)
	hi := max(0, float64(s.hi)/HZ)
	return Forecast{AtS: (lo + hi) / 2, LoS: lo, HiS: hi, Rule: rule}
}

// AtOnce is the forecast of a detector that learns of a FIN or an RST the
// moment it arrives (a blocked read, epoll): nothing to wait for.
func AtOnce(rule string) Forecast { return Forecast{Rule: rule} }

// Never is the forecast of a detector that never decides in that state.
func Never(rule string) Forecast { return Forecast{Never: true, Rule: rule} }

// Clock is the forecast of an application deadline that runs from an
// event the state dates: `after` past an event sinceS seconds before the
// fault (a tcpi_last_* value, so dated to its jiffy: ± 1 j).
func Clock(sinceS float64, after time.Duration, rule string) Forecast {
	at := after.Seconds() - float64(jiffiesAgo(sinceS))/HZ
	j := Jiffy.Seconds()
	return Forecast{AtS: max(0, at), LoS: max(0, at-j), HiS: max(0, at+j), Rule: rule}
}

// NextTick is how long after the fault a ticker that runs every `every`
// and last ticked sinceS seconds before the fault ticks again.
func NextTick(sinceS float64, every time.Duration) time.Duration {
	since := time.Duration(jiffiesAgo(sinceS)) * Jiffy
	if every <= 0 {
		return 0
	}
	return every - since%every
}

// Keepalive forecasts when keepalive (TCP_KEEPIDLE idle, TCP_KEEPINTVL
// intvl, TCP_KEEPCNT cnt, TCP_USER_TIMEOUT userTimeout or 0) kills a
// connection whose peer went silent at the fault, from its state then
// (tcp_timer.c tcp_keepalive_timer L779–865; KERNEL-RULES §1, §6):
//
//   - idle: L = the last segment received (ConnState.KeepaliveIdle), the
//     first probe at the firing after L + idle, then one every intvl,
//     killed at the firing after cnt probes (L831–840): G = L + idle +
//     cnt·intvl; with a user timeout, at the first firing with a probe
//     out and the idle time ≥ userTimeout (cnt ignored);
//   - data in flight or queued: keepalive is inert (L817–821) and the
//     retransmission timer decides (Retransmission, with tcp_retries2 at
//     its default 15).
//
// The first probe's timer was armed at a firing the state does not date,
// so every wheel level it could be filed at is swept.
func Keepalive(st ConnState, idle, intvl time.Duration, cnt int, userTimeout time.Duration) Forecast {
	if st.InFlight() {
		f := Retransmission(st, DefaultRetries2, RTOMax, userTimeout)
		f.Rule = fmt.Sprintf("keepalive is inert while data is in flight (%d unacknowledged, %d bytes unsent; tcp_timer.c tcp_keepalive_timer L817–821), so the retransmission timer decides (tcp_retries2 taken as %d): %s",
			st.Unacked, st.NotSentBytes, DefaultRetries2, f.Rule)
		return f
	}
	ka := newKeepaliveChain(st, idle, intvl, cnt, userTimeout)
	var sp span
	ka.sweep(func(firings func(yield func(at int64, kill bool) bool)) {
		for at, kill := range firings {
			if kill {
				sp.add(at)
				return
			}
		}
	})
	ideal := ka.idealKill()
	how := fmt.Sprintf("cnt=%d probes intvl apart, killed at the firing after the last (L831–840)", cnt)
	if userTimeout > 0 {
		how = fmt.Sprintf("killed at the first firing with a probe out and idle ≥ TCP_USER_TIMEOUT %v, cnt ignored (L831–835)", userTimeout)
	}
	return sp.forecast(fmt.Sprintf("tcp_keepalive_timer() (tcp_timer.c L779–865), idle: last segment received %.3f s before the fault (min of tcpi_last_data_recv and tcpi_last_ack_recv, include/net/tcp.h keepalive_time_elapsed L1780), first probe at L+%v, %s: ideally %.3f s after the fault; the timer wheel (kernel/time/timer.c calc_wheel_index L542) fires each timer 1 j to one level step late",
		ka.idleAt.Seconds(), idle, how, ideal))
}

// KeepaliveFirstProbe forecasts the first segment keepalive sends after
// the fault: the probe a path that resets written segments answers with
// an RST. With data in flight keepalive sends nothing (L817–821) and
// FirstResend applies.
func KeepaliveFirstProbe(st ConnState, idle, intvl time.Duration) Forecast {
	if st.InFlight() {
		f := FirstResend(st)
		f.Rule = "keepalive is inert while data is in flight (tcp_timer.c L817–821): " + f.Rule
		return f
	}
	ka := newKeepaliveChain(st, idle, intvl, math.MaxInt32, 0)
	var sp span
	ka.sweep(func(firings func(yield func(at int64, kill bool) bool)) {
		for at := range firings {
			if at >= 0 {
				sp.add(at)
				return
			}
		}
	})
	return sp.forecast(fmt.Sprintf("the first keepalive probe after the fault (tcp_keepalive_timer L779–865, tcp_output.c tcp_write_wakeup ~L4512): at the firing after L+%v, L %.3f s before the fault, then every %v", idle, ka.idleAt.Seconds(), intvl))
}

// keepaliveChain is one idle connection's keepalive timer, in jiffies
// counted from the fault's.
type keepaliveChain struct {
	idleAt        time.Duration // since the last segment received, at the fault
	l             int64         // the last segment received (L)
	t, i, u       int64         // idle, intvl, user timeout (0: none)
	cnt           int
	idle, intvl   time.Duration
	userTimeout   time.Duration
	maxDeltaJiffy int64
}

func newKeepaliveChain(st ConnState, idle, intvl time.Duration, cnt int, userTimeout time.Duration) keepaliveChain {
	k := keepaliveChain{
		idleAt: st.KeepaliveIdle(), t: ceilJiffies(idle), i: ceilJiffies(intvl), u: ceilJiffies(userTimeout),
		cnt: cnt, idle: idle, intvl: intvl, userTimeout: userTimeout,
	}
	k.l = -jiffiesAgo(k.idleAt.Seconds())
	k.maxDeltaJiffy = max(k.t, k.i)
	return k
}

// idealKill is G in seconds after the fault without the wheel's rounding.
func (k keepaliveChain) idealKill() float64 {
	n := k.cnt
	if k.u > 0 {
		n = KeepaliveUserTimeoutK(k.idle, k.intvl, k.userTimeout)
	}
	return (k.idle + time.Duration(n)*k.intvl - k.idleAt).Seconds()
}

// sweep hands visit the chain of firings (jiffies after the fault's, and
// whether that firing kills) for every alignment and every wheel level
// the first probe's timer may have been filed at: re-armed at a firing
// between L and L + idle, it lay up to idle ahead.
func (k keepaliveChain) sweep(visit func(firings func(yield func(at int64, kill bool) bool))) {
	for _, a := range alignments(k.maxDeltaJiffy) {
		f := origin + a
		l := f + k.l
		for g := int64(1); g <= wheelGran(k.t); g *= 8 {
			first := ((l+k.t)/g + 1) * g
			visit(func(yield func(int64, bool) bool) {
				p, probes := first, 0
				for range 1 << 16 {
					kill := (k.u > 0 && p-l >= k.u && probes > 0) || (k.u == 0 && probes >= k.cnt)
					if !yield(p-f, kill) || kill {
						return
					}
					probes++
					p = rearm(p, k.i)
				}
			})
		}
	}
}

// Retransmission forecasts when the kernel gives up on data in flight at
// the fault, its peer silent (tcp_timer.c tcp_retransmit_timer L531–686,
// tcp_write_timeout L241–304; KERNEL-RULES §2, §6): t1, the first RTO
// resend, comes a tail-loss probe and an RTO after the send ((412, 416] ms
// for one small write on a fast link); the kernel gives up at the first
// RTO firing t_k with t_k − t1 ≥ B(retries2) (tcp_model_timeout L186–199,
// rtoMax per socket, 0 meaning TCP_RTO_MAX), or with TCP_USER_TIMEOUT
// U ≠ 0 at t1 + U, the last re-arm clamped (L27–47). The send is dated by
// tcpi_last_data_sent (the segments in flight taken as sent together),
// the RTO by tcpi_rto and tcpi_backoff, the probe's timeout by tcpi_rtt.
// Nothing in flight: never.
func Retransmission(st ConnState, retries2 int, rtoMax, userTimeout time.Duration) Forecast {
	return WriterRetransmission(st, 0, retries2, rtoMax, userTimeout)
}

// WriterRetransmission is Retransmission for an application that writes
// every `every` (its last write dated by tcpi_last_data_sent): with data
// in flight at the fault, the head is that data; idle, the head is the
// next write, `every` after the last. Its later writes reschedule the
// tail-loss probe until t1 (tcp_output.c tcp_schedule_loss_probe ~L3038).
// every 0 is Retransmission.
func WriterRetransmission(st ConnState, every time.Duration, retries2 int, rtoMax, userTimeout time.Duration) Forecast {
	sent := -time.Duration(jiffiesAgo(st.SinceDataSentS)) * Jiffy
	switch {
	case st.Unacked > 0:
		rx := newRetransmitChain(st, retries2, rtoMax, userTimeout)
		state := fmt.Sprintf("data in flight (%d segments unacknowledged), last sent %.3f s before the fault", st.Unacked, st.SinceDataSentS)
		if st.Retransmits > 0 {
			return rx.underWay(st, state)
		}
		return rx.sweep(sent, every, st.Unacked, state)
	case every > 0:
		rx := newRetransmitChain(st, retries2, rtoMax, userTimeout)
		return rx.sweep(sent+every, every, 1, fmt.Sprintf("idle at the fault, the last write %.3f s before it: the next, %v after that, is never acknowledged", st.SinceDataSentS, every))
	case st.NotSentBytes > 0:
		return Never("data waits unsent with nothing in flight: the zero-window probe timer (tcp_timer.c tcp_probe_timer L387–436) rules, not modelled here")
	}
	return Never("nothing in flight: the retransmission timer is not armed (tcp_timer.c tcp_retransmit_timer L531)")
}

// RetransmissionAfterWrite forecasts the retransmission give-up of a
// connection idle at the fault whose application writes once, `in` after
// it (a request sent into the silence); then as Retransmission.
func RetransmissionAfterWrite(st ConnState, in time.Duration, retries2 int, rtoMax, userTimeout time.Duration) Forecast {
	rx := newRetransmitChain(st, retries2, rtoMax, userTimeout)
	return rx.sweep(in, 0, 1, fmt.Sprintf("idle at the fault; the first segment never acknowledged is a write %v after it", in))
}

// phases sweep where an instant lies inside its jiffy.
var phases = []time.Duration{0, Jiffy / 4, Jiffy / 2, 3 * Jiffy / 4, Jiffy - 1}

// floorJiffies splits an offset from the start of the fault's jiffy into
// whole jiffies (rounded down) and the phase inside the last.
func floorJiffies(d time.Duration) (int64, time.Duration) {
	j := int64(d / Jiffy)
	if d < 0 && d%Jiffy != 0 {
		j--
	}
	return j, d - time.Duration(j)*Jiffy
}

// sweep forecasts the give-up for a head segment sent `head` after the
// start of the fault's jiffy (± the phase swept), packets segments out,
// the application writing every `every` after it (0: no more).
func (rx retransmitChain) sweep(head, every time.Duration, packets int, state string) Forecast {
	var sp span
	for _, a := range alignments(rx.maxDelta()) {
		f := origin + a
		for _, phi := range phases {
			j, psi := floorJiffies(head + phi)
			ts := f + j
			sp.add(rx.giveUp(rx.firstResend(ts, packets, psi, every)) - f)
		}
	}
	return sp.forecast(rx.rule(state))
}

// underWay forecasts the give-up when RTO resends were under way at the
// fault (tcpi_retransmits k): the last send was the k-th resend, and t1
// lies the ideal back-off sum before it (the past wheel lateness is not
// in the state).
func (rx retransmitChain) underWay(st ConnState, state string) Forecast {
	last := -jiffiesAgo(st.SinceDataSentS)
	var sp span
	for _, a := range alignments(rx.maxDelta()) {
		f := origin + a
		t1, iv := f+last, rx.r
		for range st.Retransmits - 1 {
			iv = min(2*iv, rx.rtoMax)
			t1 -= iv
		}
		sp.add(rx.continueFrom(t1, f+last, min(2*iv, rx.rtoMax)) - f)
	}
	return sp.forecast(rx.rule(fmt.Sprintf("%s, %d RTO resends already made (t1 dated by the ideal back-off)", state, st.Retransmits)))
}

// FirstResend forecasts the first segment the retransmission machinery
// sends after the fault with data in flight: the tail-loss probe
// (tcp_output.c tcp_send_loss_probe ~L3109), or the next RTO resend when
// retransmission has begun; a path that resets written segments answers
// it with an RST. Nothing in flight: never.
func FirstResend(st ConnState) Forecast {
	if st.Unacked == 0 {
		return Never("nothing in flight: no retransmission timer is armed")
	}
	rx := newRetransmitChain(st, DefaultRetries2, RTOMax, 0)
	last := -jiffiesAgo(st.SinceDataSentS)
	var sp span
	for _, a := range alignments(rx.maxDelta()) {
		f := origin + a
		var at int64
		if st.Retransmits == 0 {
			// The last send is the latest: its probe is still due.
			at = arm(f+last, min(rx.pto(rx.unacked), rx.r))
		} else {
			iv := rx.r
			for range st.Retransmits {
				iv = min(2*iv, rx.rtoMax)
			}
			at = rearm(f+last, iv)
		}
		sp.add(at - f)
	}
	return sp.forecast(fmt.Sprintf("the first resend after the fault (a tail-loss probe at min(2·srtt + rto_min, head + RTO), tcp_schedule_loss_probe ~L3038, else the RTO timer, tcp_retransmit_timer L531–686), the last segment sent %.3f s before the fault", st.SinceDataSentS))
}

// retransmitChain is one connection's retransmission timer, in jiffies.
type retransmitChain struct {
	r, rtoMax, srtt2 int64 // RTO without back-off, its cap, 2·srtt rounded up
	unacked          int
	limitMs          int64 // B(retries2) or U, in ms
	retries2         int
	userTimeout      time.Duration
	rtoMaxD          time.Duration
}

func newRetransmitChain(st ConnState, retries2 int, rtoMax, userTimeout time.Duration) retransmitChain {
	if rtoMax <= 0 {
		rtoMax = RTOMax
	}
	r := ceilJiffies(RTOFast)
	if st.RTOS > 0 {
		r = max(1, jiffiesAgo(st.RTOS)>>min(st.Backoff, 30))
	}
	srtt2 := int64(1) // usecs_to_jiffies of a positive srtt is at least 1 j
	if st.RTTS > 0 {
		srtt2 = max(1, ceilJiffies(time.Duration(2*st.RTTS*float64(time.Second))))
	}
	rx := retransmitChain{r: r, rtoMax: ceilJiffies(rtoMax), srtt2: srtt2, unacked: max(st.Unacked, 1),
		retries2: retries2, userTimeout: userTimeout, rtoMaxD: rtoMax}
	rx.limitMs = Budget(retries2, rtoMax).Milliseconds()
	if userTimeout > 0 {
		rx.limitMs = userTimeout.Milliseconds()
	}
	return rx
}

func (rx retransmitChain) maxDelta() int64 {
	if rx.userTimeout > 0 {
		return min(rx.rtoMax, ceilJiffies(rx.userTimeout))
	}
	iv := rx.r
	for k := 0; k < rx.retries2+2 && iv < rx.rtoMax; k++ {
		iv = min(2*iv, rx.rtoMax)
	}
	return iv
}

// pto is the tail-loss probe's timeout (tcp_schedule_loss_probe): 2·srtt
// plus TCP_RTO_MIN with one segment out, else TCP_TIMEOUT_MIN (2 j).
func (rx retransmitChain) pto(packets int) int64 {
	if packets == 1 {
		return rx.srtt2 + ceilJiffies(RTOMin)
	}
	return rx.srtt2 + 2
}

// firstResend is t1, the jiffy of the first RTO resend, for a head
// segment sent at jiffy head (phase psi inside it) with packets segments
// out and its tail-loss probe not yet sent; an application writing every
// `every` sends more before the probe fires, each send rescheduling it.
func (rx retransmitChain) firstResend(head int64, packets int, psi, every time.Duration) int64 {
	schedule := func(now int64, packets int) int64 {
		timeout := rx.pto(packets)
		if delta := head + rx.r - now; delta > 0 {
			timeout = min(timeout, delta)
		}
		return arm(now, timeout)
	}
	tlp := schedule(head, packets)
	if every > 0 {
		for m := 1; ; m++ {
			w := head + int64((psi+time.Duration(m)*every)/Jiffy)
			if w >= tlp {
				break
			}
			packets++
			tlp = schedule(w, packets)
		}
	}
	// The probe goes out and the RTO is re-armed a full RTO from it
	// (tcp_send_loss_probe clears icsk_pending before tcp_rearm_rto).
	t1 := rearm(tlp, rx.r)
	if every > 0 {
		// A write between the probe and t1 schedules a probe again; with
		// one outstanding, that probe only re-arms the RTO at the head's
		// send + RTO, or 1 j when that has passed (tcp_rearm_rto).
		for m := 1; ; m++ {
			w := head + int64((psi+time.Duration(m)*every)/Jiffy)
			if w <= tlp {
				continue
			}
			if w >= t1 {
				break
			}
			p := arm(w, rx.pto(2))
			if p < t1 {
				t1 = rearm(p, max(1, head+rx.r-p))
			}
		}
	}
	return t1
}

// giveUp is the jiffy the kernel gives up at, from t1: each firing first
// asks tcp_write_timeout whether the time since t1 (retrans_stamp) has
// reached the limit, then resends and re-arms the doubled RTO, clamped to
// what is left of a user timeout.
func (rx retransmitChain) giveUp(t1 int64) int64 {
	return rx.continueFrom(t1, t1, min(2*rx.r, rx.rtoMax))
}

// continueFrom runs the chain from a firing at jiffy at, t1 at jiffy t1,
// the next re-arm rto jiffies.
func (rx retransmitChain) continueFrom(t1, at, rto int64) int64 {
	for range 256 {
		n := rto
		if rx.userTimeout > 0 {
			if rem := rx.limitMs - (at-t1)*msPerJiffy; rem <= 0 {
				n = 1
			} else {
				n = min(rto, ceilJiffies(time.Duration(rem)*time.Millisecond))
			}
		}
		at = rearm(at, n)
		if (at-t1)*msPerJiffy >= rx.limitMs {
			return at
		}
		rto = min(2*rto, rx.rtoMax)
	}
	return at
}

// rule names the retransmission rule applied and its figures.
func (rx retransmitChain) rule(state string) string {
	limit := fmt.Sprintf("the first RTO firing at least B(tcp_retries2=%d) = %v after t1 (tcp_write_timeout/retransmits_timed_out L213–304, tcp_model_timeout L186–199, rto_max %v)", rx.retries2, Budget(rx.retries2, rx.rtoMaxD), rx.rtoMaxD)
	if rx.userTimeout > 0 {
		limit = fmt.Sprintf("t1 + TCP_USER_TIMEOUT %v, the last re-arm clamped to it (tcp_write_timeout L281–283, tcp_clamp_rto_to_user_timeout L27–47)", rx.userTimeout)
	}
	return fmt.Sprintf("%s: t1, the first RTO resend (retrans_stamp, tcp_output.c tcp_retransmit_skb ~L3648), comes a tail-loss probe (2·srtt + rto_min, capped at the head's send + RTO; tcp_schedule_loss_probe ~L3038) and an RTO of %v later; the RTO doubles up to rto_max (tcp_retransmit_timer L531–686), and the kernel gives up at %s; each timer fires 1 j to one wheel step late (kernel/time/timer.c calc_wheel_index L542)",
		state, time.Duration(rx.r)*Jiffy, limit)
}
