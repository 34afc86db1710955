package tcprules

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/halfopen/halfopen/internal/machine/kconfig"
)

// DefaultHZ is the tick rate the rules assume where the running kernel's
// configuration cannot be read (KernelTick says so): 250, CONFIG_HZ's
// default (kernel/Kconfig.hz).
const DefaultHZ = 250

// Tick is the kernel clock the rules count in: every TCP timer, and
// TCP_INFO's tcpi_last_* and tcpi_rto, count jiffies of 1/HZ s, and the
// timer wheel rounds to them (KERNEL-RULES §4). The rules use the running
// kernel's (KernelTick); a report records it (report.Environment.Tick).
type Tick struct {
	// HZ is CONFIG_HZ, the jiffies in a second.
	HZ int `json:"hz"`
	// Source is the file HZ was read from, or, when Assumed, why none
	// could be read.
	Source string `json:"source,omitempty"`
	// Assumed is true when HZ is DefaultHZ because the running kernel's
	// configuration did not say.
	Assumed bool `json:"assumed,omitempty"`
}

// KernelTick is the running kernel's tick, read once from its
// configuration (/proc/config.gz, else /boot/config-RELEASE); where
// neither says, DefaultHZ, Assumed. Every rule of the package counts in it.
func KernelTick() Tick { return kernelTick() }

var kernelTick = sync.OnceValue(func() Tick {
	cfg, source, err := kconfig.Read()
	return tickOf(cfg, source, err)
})

// tickOf is the tick a kernel configuration read from source (or the
// error reading it) gives.
func tickOf(cfg kconfig.Config, source string, err error) Tick {
	switch {
	case err != nil:
		return Tick{HZ: DefaultHZ, Source: fmt.Sprintf("no kernel configuration readable (%v)", err), Assumed: true}
	case cfg.HZ() == 0:
		return Tick{HZ: DefaultHZ, Source: source + " sets no CONFIG_HZ", Assumed: true}
	}
	return Tick{HZ: cfg.HZ(), Source: source}
}

// Jiffy is one tick, 1/HZ s (4 ms at HZ 250), rounded down to the
// nanosecond where HZ does not divide a second.
func (t Tick) Jiffy() time.Duration { return time.Second / time.Duration(t.HZ) }

// rtoFast is RTOFast at this tick: rttvar at its floor RTOMin plus a
// fast link's srtt (above zero, under a jiffy), rounded up to jiffies.
func (t Tick) rtoFast() time.Duration { return t.dur(t.ceil(RTOMin + time.Nanosecond)) }

// String is the tick in one line: its rate and jiffy, and where it came
// from.
func (t Tick) String() string {
	if t.HZ <= 0 {
		return "unknown"
	}
	s := fmt.Sprintf("%d Hz (%s ms jiffies), ", t.HZ, strconv.FormatFloat(1000/float64(t.HZ), 'g', 4, 64))
	if t.Assumed {
		return s + "assumed: " + t.Source
	}
	return s + "read from " + t.Source
}

// The jiffy arithmetic of the rules. Durations convert exactly (a jiffy
// is not a whole number of nanoseconds at every HZ), whole seconds apart
// from their rest so that a CLOCK_MONOTONIC instant of a long uptime does
// not overflow.

const second = int64(time.Second)

// dur is j jiffies as a duration (rounded towards zero).
func (t Tick) dur(j int64) time.Duration {
	hz := int64(t.HZ)
	return time.Duration(j/hz*second + j%hz*second/hz)
}

// seconds is j jiffies in seconds.
func (t Tick) seconds(j int64) float64 { return float64(j) / float64(t.HZ) }

// ms is j jiffies in whole milliseconds, as retransmits_timed_out compares
// them with its millisecond limits.
func (t Tick) ms(j int64) int64 { return j * 1000 / int64(t.HZ) }

// ago is a tcpi_last_* or tcp_info duration in whole jiffies: the kernel
// reports jiffies_to_msecs of a jiffy difference.
func (t Tick) ago(seconds float64) int64 { return int64(math.Round(seconds * float64(t.HZ))) }

// ceil is msecs_to_jiffies: a non-negative duration rounded up to jiffies.
func (t Tick) ceil(d time.Duration) int64 {
	hz := int64(t.HZ)
	return int64(d)/second*hz + (int64(d)%second*hz+second-1)/second
}

// floor splits an offset from the start of the fault's jiffy into whole
// jiffies (rounded down) and the phase inside the last.
func (t Tick) floor(d time.Duration) (int64, time.Duration) {
	hz := int64(t.HZ)
	s, r := int64(d)/second, int64(d)%second
	if r < 0 {
		s, r = s-1, r+second
	}
	j := s*hz + r*hz/second
	return j, d - t.dur(j)
}

// phases sweep where an instant lies inside its jiffy.
func (t Tick) phases() []time.Duration {
	j := t.dur(1)
	return []time.Duration{0, j / 4, j / 2, 3 * j / 4, j - 1}
}
