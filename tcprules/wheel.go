package tcprules

import "time"

// The timer wheel (kernel/time/timer.c, KERNEL-RULES §4): every TCP timer
// is a timer_list on the jiffy wheel. A timer whose expiry lies delta
// jiffies after the wheel's clock is filed at the level whose range holds
// delta (level 0 below 63 j, level l below 63·8^l j) and fires at the
// first multiple of that level's step, 8^l j, strictly after its expiry
// (calc_index L525, calc_wheel_index L542): never early, late by 1 j up to
// one step. Inside a timer callback the wheel's clock is already one
// jiffy on (__run_timers increments base->clk before expiring), so a
// re-arm n j ahead is filed by n − 1.

// wheelGran is the step, in jiffies, of the level a timer delta jiffies
// ahead of the wheel's clock is filed at.
func wheelGran(delta int64) int64 {
	gran := int64(1)
	for start := int64(63); delta >= start; start *= 8 {
		gran *= 8
	}
	return gran
}

// wheelFire is the jiffy a timer expiring at jiffy expires fires at, when
// it was armed with the wheel's clock at clk. Jiffies are non-negative
// here (callers offset them).
func wheelFire(clk, expires int64) int64 {
	g := wheelGran(expires - clk)
	return (expires/g + 1) * g
}

// rearm is the jiffy a timer re-armed n jiffies ahead from the callback
// of a timer that fired at jiffy at fires at.
func rearm(at, n int64) int64 { return wheelFire(at+1, at+n) }

// arm is the jiffy a timer armed n jiffies ahead from process context at
// jiffy at fires at.
func arm(at, n int64) int64 { return wheelFire(at, at+n) }

// WheelJiffyAt is the running kernel's timer wheel's jiffy at a
// CLOCK_MONOTONIC instant: jiffies advance on tick boundaries that are
// multiples of a jiffy (KernelTick) of the monotonic clock
// (kernel/time/tick-common.c tick_init_jiffy_update aligns them), so the
// count is floor(mono / jiffy) plus a constant of the boot, offset. The
// offset is best taken from timer firings whose level is known (they land
// on multiples of its step); on the lab's machine (HZ 250) it was the one
// /proc/timer_list gives (jiffies − floor(now / jiffy)) minus 2: with it,
// 56 real retransmission and keepalive give-ups fell on multiples of 8 j
// (47, the other 9 one jiffy late), and the 12 whose last timer was filed
// at level 2 on multiples of 64 j (± that jiffy).
func WheelJiffyAt(monoNs, offset int64) int64 { return KernelTick().wheelJiffyAt(monoNs, offset) }

func (t Tick) wheelJiffyAt(monoNs, offset int64) int64 {
	j, _ := t.floor(time.Duration(monoNs))
	return j + offset
}
