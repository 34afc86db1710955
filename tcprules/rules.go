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

// alignments are the fault jiffy's residues modulo the largest wheel step
// a chain with timers up to maxDelta jiffies meets, at most 1024 of them;
// or, when the wheel's jiffy at the fault was read, its residue and its
// neighbours (a tcpi_last_* value or a firing may sit one jiffy off).
// Where the step is larger than 1024 j (timers of 129 s and more at HZ
// 250, of 32 s and more at HZ 1000: a capped RTO), the 1024 residues are
// k·(stride+1) for k < 1024, stride = step/1024: spread across the step,
// and, stride+1 being odd, every residue modulo each finer step (8, 64,
// 512 j) among them, where a plain stride would keep only its multiples.
func alignments(maxDelta, wheelJiffy int64) []int64 {
	g := wheelGran(maxDelta)
	if wheelJiffy > 0 {
		return []int64{(wheelJiffy - 1) % g, wheelJiffy % g, (wheelJiffy + 1) % g}
	}
	const most = 1024
	n, p := g, int64(1)
	if g > most {
		n, p = most, g/most+1
	}
	out := make([]int64, 0, n+1)
	for k := range n {
		out = append(out, k*p%g)
	}
	if p > 1 {
		out = append(out, g-1)
	}
	return out
}

// span gathers, in seconds after the fault, where a rule's chain ends
// over the unknowns it sweeps, on a kernel of tick tk.
type span struct {
	tk     Tick
	lo, hi float64
	set    bool
}

func (s *span) addRange(lo, hi float64) {
	if !s.set || lo < s.lo {
		s.lo = lo
	}
	if !s.set || hi > s.hi {
		s.hi = hi
	}
	s.set = true
}

// add records a timer firing j jiffies after the fault's: the fault lies
// somewhere inside its jiffy, so the firing comes (j−1, j] jiffies after
// it (KERNEL-RULES §4, "± 1 j for where the start falls within its tick").
func (s *span) add(j int64) { s.addRange(s.tk.seconds(j-1), s.tk.seconds(j)) }

// addWrite records an application write x after the fault, dated from a
// tcpi_last_* value: ± 1 j.
func (s *span) addWrite(x time.Duration) {
	s.addRange((x - s.tk.Jiffy()).Seconds(), (x + s.tk.Jiffy()).Seconds())
}

// forecast turns the span into a Forecast: AtS is the window's middle.
func (s span) forecast(rule string) Forecast {
	lo, hi := max(0, s.lo), max(0, s.hi)
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
	return KernelTick().clock(sinceS, after, rule)
}

func (t Tick) clock(sinceS float64, after time.Duration, rule string) Forecast {
	at := after.Seconds() - t.seconds(t.ago(sinceS))
	j := t.Jiffy().Seconds()
	return Forecast{AtS: max(0, at), LoS: max(0, at-j), HiS: max(0, at+j), Rule: rule}
}

// NextTick is how long after the fault a ticker that runs every `every`
// and last ticked sinceS seconds before the fault ticks again.
func NextTick(sinceS float64, every time.Duration) time.Duration {
	return KernelTick().nextTick(sinceS, every)
}

func (t Tick) nextTick(sinceS float64, every time.Duration) time.Duration {
	since := t.dur(t.ago(sinceS))
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
// so every wheel level it could be filed at is swept. When the last
// segment received answered a keepalive probe (answeredProbe), the timer
// was re-armed intvl from that probe: the next probe comes at
// max(L + intvl, L + idle) and the wheel level is intvl's.
func Keepalive(st ConnState, idle, intvl time.Duration, cnt int, userTimeout time.Duration) Forecast {
	return KernelTick().keepalive(st, idle, intvl, cnt, userTimeout)
}

func (t Tick) keepalive(st ConnState, idle, intvl time.Duration, cnt int, userTimeout time.Duration) Forecast {
	if st.InFlight() {
		f := t.retransmission(st, DefaultRetries2, RTOMax, userTimeout)
		f.Rule = fmt.Sprintf("keepalive is inert while data is in flight (%d unacknowledged, %d bytes unsent; tcp_timer.c tcp_keepalive_timer L817–821), so the retransmission timer decides (tcp_retries2 taken as %d): %s",
			st.Unacked, st.NotSentBytes, DefaultRetries2, f.Rule)
		return f
	}
	ka := t.newKeepaliveChain(st, idle, intvl, cnt, userTimeout)
	sp := span{tk: t}
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
		how = fmt.Sprintf("killed at the first firing with a probe out and idle ≥ TCP_USER_TIMEOUT %v, cnt ignored (L831–840)", userTimeout)
	}
	return sp.forecast(fmt.Sprintf("tcp_keepalive_timer() (tcp_timer.c L779–865), idle: %s, %s: ideally %.3f s after the fault; the timer wheel (kernel/time/timer.c calc_wheel_index L542) fires each timer 1 j to one level step late",
		ka.describe(), how, ideal))
}

// KeepaliveResetAfter forecasts a keepalive detector under a path that
// drops what it is sent until `after` the fault and from then on answers
// it with an RST (a NAT that lost the flow: after 0; a host that reboots:
// its downtime): the first keepalive probe at or after `after`
// (tcp_keepalive_timer L779–865, tcp_output.c tcp_write_wakeup ~L4512)
// meets the RST, and the blocked read fails with ECONNRESET a round trip
// later; unless keepalive kills first (Keepalive). With data in flight
// keepalive is inert (L817–821) and WriterResetAfter applies.
func KeepaliveResetAfter(st ConnState, idle, intvl time.Duration, cnt int, userTimeout, after time.Duration) Forecast {
	return KernelTick().keepaliveResetAfter(st, idle, intvl, cnt, userTimeout, after)
}

func (t Tick) keepaliveResetAfter(st ConnState, idle, intvl time.Duration, cnt int, userTimeout, after time.Duration) Forecast {
	if st.InFlight() {
		f := t.writerResetAfter(st, 0, DefaultRetries2, RTOMax, userTimeout, after)
		f.Rule = "keepalive is inert while data is in flight (tcp_timer.c L817–821): " + f.Rule
		return f
	}
	ka := t.newKeepaliveChain(st, idle, intvl, cnt, userTimeout)
	from := t.ceil(after)
	sp := span{tk: t}
	ka.sweep(func(firings func(yield func(at int64, kill bool) bool)) {
		for at, kill := range firings {
			if kill || at >= from {
				sp.add(at)
				return
			}
		}
	})
	return sp.forecast(fmt.Sprintf("the first keepalive probe at or after %v meets the RST (tcp_keepalive_timer L779–865, tcp_output.c tcp_write_wakeup ~L4512), unless keepalive kills first (L831–840): %s, then every %v", after, ka.describe(), intvl))
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
	// probed: the last segment received answered a keepalive probe, so
	// the timer was re-armed intvl from that probe, not idle.
	probed bool
	wheel  int64 // ConnState.WheelJiffy
}

// answeredProbe tells from the state whether the last segment received
// was the answer to a keepalive probe: a pure ACK (tcpi_last_ack_recv
// later than tcpi_last_data_recv) arriving at least idle after the last
// data received, which is when the keepalive timer probes, and not within
// a delayed ACK's 250 ms of data the watcher sent (tcp_write_wakeup's
// probe carries no data, so it does not move tcpi_last_data_sent).
func (t Tick) answeredProbe(st ConnState, idle time.Duration) bool {
	j := t.Jiffy().Seconds()
	return st.SinceDataRecvS-st.SinceAckRecvS >= idle.Seconds()-j &&
		math.Abs(st.SinceDataSentS-st.SinceAckRecvS) > 0.25
}

func (t Tick) newKeepaliveChain(st ConnState, idle, intvl time.Duration, cnt int, userTimeout time.Duration) keepaliveChain {
	k := keepaliveChain{
		idleAt: st.KeepaliveIdle(), t: t.ceil(idle), i: t.ceil(intvl), u: t.ceil(userTimeout),
		cnt: cnt, idle: idle, intvl: intvl, userTimeout: userTimeout,
	}
	k.l = -t.ago(k.idleAt.Seconds())
	k.maxDeltaJiffy = max(k.t, k.i)
	k.probed = t.answeredProbe(st, idle)
	k.wheel = st.WheelJiffy
	return k
}

// idealKill is G in seconds after the fault without the wheel's rounding.
func (k keepaliveChain) idealKill() float64 {
	n := k.cnt
	if k.u > 0 {
		n = KeepaliveUserTimeoutK(k.idle, k.intvl, k.userTimeout)
	}
	return (k.firstProbe() + time.Duration(n)*k.intvl - k.idleAt).Seconds()
}

// firstProbe is how long after L the first probe is due: idle, or after
// an answered probe intvl if that is longer.
func (k keepaliveChain) firstProbe() time.Duration {
	if k.probed {
		return max(k.idle, k.intvl)
	}
	return k.idle
}

// describe says where the first probe's timer runs from, for a rule.
func (k keepaliveChain) describe() string {
	s := fmt.Sprintf("last segment received %.3f s before the fault (min of tcpi_last_data_recv and tcpi_last_ack_recv, include/net/tcp.h keepalive_time_elapsed L1780), first probe at L+%v", k.idleAt.Seconds(), k.firstProbe())
	if k.probed {
		s += " (that segment answered a probe, whose firing re-armed intvl: tcp_timer.c L841–849)"
	}
	return s
}

// sweep calls visit with the chain of firings (jiffies after the fault's, and
// whether that firing kills) for every alignment and every wheel level
// the first probe's timer may have been filed at: re-armed at a firing
// between L and L + idle, it lay up to idle ahead.
func (k keepaliveChain) sweep(visit func(firings func(yield func(at int64, kill bool) bool))) {
	for _, a := range alignments(k.maxDeltaJiffy, k.wheel) {
		f := origin + a
		l := f + k.l
		var firsts []int64
		if k.probed {
			// The probe went at L's jiffy or the one before; its firing
			// re-armed intvl, and a firing before L + idle re-arms for what
			// is left (tcp_keepalive_timer L779–865, KERNEL-RULES §1).
			for _, p0 := range []int64{l, l - 1} {
				p := rearm(p0, k.i)
				if p-l < k.t {
					p = rearm(p, k.t-(p-l))
				}
				firsts = append(firsts, p)
			}
		} else {
			for g := int64(1); g <= wheelGran(k.t); g *= 8 {
				firsts = append(firsts, ((l+k.t)/g+1)*g)
			}
		}
		for _, first := range firsts {
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
// resend, comes a tail-loss probe and an RTO after the send (one small
// write on a fast link: (412, 416] ms at HZ 250, (409, 417] at HZ 1000,
// (430, 440] at HZ 100); the kernel gives up at the first RTO firing t_k
// with t_k − t1 ≥ B(retries2) (tcp_model_timeout L186–199,
// rtoMax per socket, 0 meaning TCP_RTO_MAX), or with TCP_USER_TIMEOUT
// U ≠ 0 at t1 + U, the last re-arm clamped (L27–47). The send is dated by
// tcpi_last_data_sent (the segments in flight taken as sent together),
// the RTO by tcpi_rto and tcpi_backoff, the probe's timeout by tcpi_rtt.
// Nothing in flight: never.
func Retransmission(st ConnState, retries2 int, rtoMax, userTimeout time.Duration) Forecast {
	return KernelTick().retransmission(st, retries2, rtoMax, userTimeout)
}

func (t Tick) retransmission(st ConnState, retries2 int, rtoMax, userTimeout time.Duration) Forecast {
	return t.writerRetransmission(st, 0, retries2, rtoMax, userTimeout)
}

// WriterRetransmission is Retransmission for an application that writes
// every `every` (its last write dated by tcpi_last_data_sent): with data
// in flight at the fault, the head is that data; idle, the head is the
// next write, `every` after the last. Its later writes reschedule the
// tail-loss probe until t1 (tcp_output.c tcp_schedule_loss_probe ~L3038).
// every 0 is Retransmission.
func WriterRetransmission(st ConnState, every time.Duration, retries2 int, rtoMax, userTimeout time.Duration) Forecast {
	return KernelTick().writerRetransmission(st, every, retries2, rtoMax, userTimeout)
}

func (t Tick) writerRetransmission(st ConnState, every time.Duration, retries2 int, rtoMax, userTimeout time.Duration) Forecast {
	sent := -t.dur(t.ago(st.SinceDataSentS))
	switch {
	case st.Unacked > 0:
		rx := t.newRetransmitChain(st, retries2, rtoMax, userTimeout)
		state := fmt.Sprintf("data in flight (%d segments unacknowledged), last sent %.3f s before the fault", st.Unacked, st.SinceDataSentS)
		if st.Retransmits > 0 {
			return rx.underWay(st, state)
		}
		return rx.sweep(sent, every, st.Unacked, state)
	case every > 0:
		rx := t.newRetransmitChain(st, retries2, rtoMax, userTimeout)
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
	return KernelTick().retransmissionAfterWrite(st, in, retries2, rtoMax, userTimeout)
}

func (t Tick) retransmissionAfterWrite(st ConnState, in time.Duration, retries2 int, rtoMax, userTimeout time.Duration) Forecast {
	rx := t.newRetransmitChain(st, retries2, rtoMax, userTimeout)
	return rx.sweep(in, 0, 1, fmt.Sprintf("idle at the fault; the first segment never acknowledged is a write %v after it", in))
}

// sweep forecasts the give-up for a head segment sent `head` after the
// start of the fault's jiffy (± the phase swept), packets segments out,
// the application writing every `every` after it (0: no more).
func (rx retransmitChain) sweep(head, every time.Duration, packets int, state string) Forecast {
	sp := span{tk: rx.tk}
	for _, a := range alignments(rx.maxDelta(), rx.wheel) {
		f := origin + a
		for _, phi := range rx.tk.phases() {
			j, psi := rx.tk.floor(head + phi)
			ts := f + j
			sp.add(rx.giveUp(rx.firstResend(ts, packets, psi, every, nil)) - f)
		}
	}
	return sp.forecast(rx.rule(state))
}

// underWay forecasts the give-up when RTO resends were under way at the
// fault (tcpi_retransmits k): the last send was the k-th resend, and t1
// lies the ideal back-off sum before it (the past wheel lateness is not
// in the state).
func (rx retransmitChain) underWay(st ConnState, state string) Forecast {
	sp := span{tk: rx.tk}
	for _, a := range alignments(rx.maxDelta(), rx.wheel) {
		f := origin + a
		t1, iv := rx.t1UnderWay(st, f)
		sp.add(rx.continueFrom(t1, f-rx.tk.ago(st.SinceDataSentS), iv, nil) - f)
	}
	return sp.forecast(rx.rule(fmt.Sprintf("%s, %d RTO resends already made (t1 dated by the ideal back-off)", state, st.Retransmits)))
}

// t1UnderWay dates t1 when k = tcpi_retransmits resends were made by the
// fault at jiffy f, the last at tcpi_last_data_sent, and returns the next
// re-arm's length.
func (rx retransmitChain) t1UnderWay(st ConnState, f int64) (t1, next int64) {
	t1, iv := f-rx.tk.ago(st.SinceDataSentS), rx.r
	for range st.Retransmits - 1 {
		iv = min(2*iv, rx.rtoMax)
		t1 -= iv
	}
	return t1, min(2*iv, rx.rtoMax)
}

// WriterResetAfter forecasts a connection under a path that drops what
// it is sent until `after` the fault and from then on answers it with an
// RST: its segments are the application's writes every `every` (0: none;
// the next `every` after the last, tcpi_last_data_sent), sent until the
// first RTO resend, then the tail-loss probe and the RTO resends of what
// is in flight (tcp_output.c tcp_schedule_loss_probe ~L3038,
// tcp_send_loss_probe ~L3109; tcp_timer.c tcp_retransmit_timer L531–686;
// after an RTO the congestion window holds only the resend). The first
// at or after `after` meets the RST (ECONNRESET a round trip later),
// unless the kernel gives up first (WriterRetransmission). Idle and
// writing nothing: never.
func WriterResetAfter(st ConnState, every time.Duration, retries2 int, rtoMax, userTimeout, after time.Duration) Forecast {
	return KernelTick().writerResetAfter(st, every, retries2, rtoMax, userTimeout, after)
}

func (t Tick) writerResetAfter(st ConnState, every time.Duration, retries2 int, rtoMax, userTimeout, after time.Duration) Forecast {
	if st.Unacked == 0 && every <= 0 {
		return Never("idle, and it writes nothing: no segment meets the reset (no timer is armed on an idle socket without SO_KEEPALIVE)")
	}
	rx := t.newRetransmitChain(st, retries2, rtoMax, userTimeout)
	last := -t.dur(t.ago(st.SinceDataSentS))
	sp := span{tk: t}
	for _, a := range alignments(rx.maxDelta(), rx.wheel) {
		f := origin + a
		for _, phi := range t.phases() {
			// The first segment at or after `after`: a timer's send, at a
			// jiffy, or a write, at its own instant after the fault.
			var first time.Duration = -1
			var firstJ int64
			var firstWrite bool
			var head int64
			note := func(j int64, write time.Duration) {
				at := t.dur(j - f)
				if write >= 0 {
					at = t.dur(head-f) + write - phi
				}
				if first < 0 && at >= after {
					first, firstJ, firstWrite = at, j, write >= 0
				}
			}
			var g int64
			switch {
			case st.Unacked > 0 && st.Retransmits > 0:
				t1, iv := rx.t1UnderWay(st, f)
				g = rx.continueFrom(t1, f-t.ago(st.SinceDataSentS), iv, note)
			case st.Unacked > 0:
				j, psi := t.floor(last + phi)
				head = f + j
				t1 := rx.firstResend(head, st.Unacked, psi, every, note)
				g = rx.continueFrom(t1, t1, min(2*rx.r, rx.rtoMax), note)
			default:
				j, psi := t.floor(last + every + phi)
				head = f + j
				note(head, psi)
				t1 := rx.firstResend(head, 1, psi, every, note)
				g = rx.continueFrom(t1, t1, min(2*rx.r, rx.rtoMax), note)
			}
			switch {
			case first < 0 || firstJ >= g:
				sp.add(g - f)
			case firstWrite:
				sp.addWrite(first)
			default:
				sp.add(firstJ - f)
			}
		}
	}
	what := "its next write"
	if every <= 0 {
		what = "the first resend"
	}
	return sp.forecast(fmt.Sprintf("%s at or after %v meets the RST, the writes every %v sent until the first RTO resend, then the tail-loss probe and RTO resends (tcp_schedule_loss_probe ~L3038, tcp_retransmit_timer L531–686), unless the kernel gives up first; the last segment sent %.3f s before the fault (tcpi_last_data_sent)", what, after, every, st.SinceDataSentS))
}

// retransmitChain is one connection's retransmission timer, in jiffies
// of tk.
type retransmitChain struct {
	tk          Tick
	r, rtoMax   int64         // RTO without back-off and its cap, jiffies
	srtt2       time.Duration // 2·srtt
	unacked     int
	limitMs     int64 // B(retries2) or U, in ms
	retries2    int
	userTimeout time.Duration
	rtoMaxD     time.Duration
	wheel       int64 // ConnState.WheelJiffy
}

func (t Tick) newRetransmitChain(st ConnState, retries2 int, rtoMax, userTimeout time.Duration) retransmitChain {
	if rtoMax <= 0 {
		rtoMax = RTOMax
	}
	r := t.ceil(t.rtoFast())
	if st.RTOS > 0 {
		r = max(1, t.ago(st.RTOS)>>min(st.Backoff, 30))
	}
	srtt2 := 100 * time.Microsecond // a veth lab's, when tcpi_rtt was not read
	if st.RTTS > 0 {
		srtt2 = time.Duration(2 * st.RTTS * float64(time.Second))
	}
	rx := retransmitChain{tk: t, r: r, rtoMax: t.ceil(rtoMax), srtt2: srtt2, unacked: max(st.Unacked, 1),
		retries2: retries2, userTimeout: userTimeout, rtoMaxD: rtoMax, wheel: st.WheelJiffy}
	rx.limitMs = Budget(retries2, rtoMax).Milliseconds()
	if userTimeout > 0 {
		rx.limitMs = userTimeout.Milliseconds()
	}
	return rx
}

func (rx retransmitChain) maxDelta() int64 {
	if rx.userTimeout > 0 {
		return min(rx.rtoMax, rx.tk.ceil(rx.userTimeout))
	}
	iv := rx.r
	for k := 0; k < rx.retries2+2 && iv < rx.rtoMax; k++ {
		iv = min(2*iv, rx.rtoMax)
	}
	return iv
}

// pto is the tail-loss probe's timeout (tcp_schedule_loss_probe ~L3038,
// in µs, then rounded up to jiffies): 2·srtt plus tcp_rto_min with one
// segment out, else TCP_TIMEOUT_MIN_US (2 ms).
func (rx retransmitChain) pto(packets int) int64 {
	extra := 2 * time.Millisecond
	if packets == 1 {
		extra = RTOMin
	}
	return rx.tk.ceil(rx.srtt2 + extra)
}

// firstResend is t1, the jiffy of the first RTO resend, for a head
// segment sent at jiffy head (phase psi inside it) with packets segments
// out and its tail-loss probe not yet sent; an application writing every
// `every` sends more before the probe fires, each send rescheduling it.
//
// sent, if not nil, is told every jiffy a segment leaves, the writes
// (the head itself is the caller's) with their instant after the start of
// the head's jiffy, the probe with −1.
func (rx retransmitChain) firstResend(head int64, packets int, psi, every time.Duration, sent func(j int64, write time.Duration)) int64 {
	if sent == nil {
		sent = func(int64, time.Duration) {}
	}
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
			w, _ := rx.tk.floor(psi + time.Duration(m)*every)
			w += head
			if w >= tlp {
				break
			}
			sent(w, psi+time.Duration(m)*every)
			packets++
			tlp = schedule(w, packets)
		}
	}
	// The probe goes out and the RTO is re-armed a full RTO from it
	// (tcp_send_loss_probe clears icsk_pending before tcp_rearm_rto).
	sent(tlp, -1)
	t1 := rearm(tlp, rx.r)
	if every > 0 {
		// A write between the probe and t1 schedules a probe again; with
		// one outstanding, that probe only re-arms the RTO at the head's
		// send + RTO, or 1 j when that has passed (tcp_rearm_rto).
		for m := 1; ; m++ {
			w, _ := rx.tk.floor(psi + time.Duration(m)*every)
			w += head
			if w <= tlp {
				continue
			}
			if w >= t1 {
				break
			}
			sent(w, psi+time.Duration(m)*every)
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
	return rx.continueFrom(t1, t1, min(2*rx.r, rx.rtoMax), nil)
}

// continueFrom runs the chain from a firing at jiffy at, t1 at jiffy t1,
// the next re-arm rto jiffies, telling sent (if not nil) of each resend
// from at on, and returns the give-up jiffy.
func (rx retransmitChain) continueFrom(t1, at, rto int64, sent func(j int64, write time.Duration)) int64 {
	for range 256 {
		if sent != nil {
			sent(at, -1)
		}
		n := rto
		if rx.userTimeout > 0 {
			if rem := rx.limitMs - rx.tk.ms(at-t1); rem <= 0 {
				n = 1
			} else {
				n = min(rto, rx.tk.ceil(time.Duration(rem)*time.Millisecond))
			}
		}
		at = rearm(at, n)
		if rx.tk.ms(at-t1) >= rx.limitMs {
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
		state, rx.tk.dur(rx.r), limit)
}
