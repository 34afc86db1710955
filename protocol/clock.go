package protocol

import (
	"time"

	"golang.org/x/sys/unix"
)

// Now returns CLOCK_MONOTONIC in nanoseconds, the clock every t_ns is read
// from. The clock is the same in every network namespace, so an instant read
// by the harness and one read by a program inside a lab host can be
// subtracted.
func Now() int64 {
	var ts unix.Timespec
	// clock_gettime(CLOCK_MONOTONIC) cannot fail for a valid clock id.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// SleepUntil blocks until CLOCK_MONOTONIC reaches deadline (nanoseconds), using
// an absolute clock_nanosleep so that the wake-up is not shifted by the time
// it took to compute the delay.
func SleepUntil(deadline int64) {
	ts := unix.NsecToTimespec(deadline)
	for {
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// Seconds converts a CLOCK_MONOTONIC difference in nanoseconds to seconds.
func Seconds(ns int64) float64 { return float64(ns) / 1e9 }

// Since returns the time elapsed since the CLOCK_MONOTONIC instant t.
func Since(t int64) time.Duration { return time.Duration(Now() - t) }
