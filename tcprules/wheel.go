package tcprules

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
