// Package machine reads what the kernel says of this machine's timing (its
// tick, idle and preemption model, cpuidle driver, the PM QoS latency
// request) and words a verdict on a timer-lateness probe, for
// `halfopen doctor`.
package machine

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/halfopen/halfopen/internal/machine/kconfig"
	"github.com/halfopen/halfopen/report"
)

// CPULatencyFile is the PM QoS device of the CPU wake-up latency request.
const CPULatencyFile = "/dev/cpu_dma_latency"

// MachineTiming is what the kernel says of this machine's wake-ups: the
// facts a probe p99 may be made of before any load.
type MachineTiming struct {
	HZ         int    // CONFIG_HZ (0: unknown); the tick is 1/HZ (tcprules.KernelTick is the one the forecasts use)
	IdleTick   string // "NO_HZ_IDLE", "NO_HZ_FULL", "periodic" or ""
	Preempt    string // the preemption model, e.g. "none", "voluntary", "full"
	CPUIdle    string // cpuidle driver/governor, e.g. "haltpoll/haltpoll"
	HaltPollNs string // haltpoll's guest_halt_poll_ns, "" without it
	// CPULatencyUs is the kernel's aggregate PM QoS CPU latency request,
	// µs (-1: unknown): 0 while a run holds its request.
	CPULatencyUs int64
	TimerSlackNs int64 // this process's timer slack (-1: unknown)
}

// TickMs is the tick period in milliseconds, or 0 if HZ is unknown.
func (t MachineTiming) TickMs() float64 {
	if t.HZ <= 0 {
		return 0
	}
	return 1000 / float64(t.HZ)
}

// String is the facts on one line.
func (t MachineTiming) String() string {
	var parts []string
	if t.HZ > 0 {
		parts = append(parts, fmt.Sprintf("tick %d Hz (%s ms)", t.HZ, strconv.FormatFloat(t.TickMs(), 'g', 3, 64)))
	} else {
		parts = append(parts, "tick rate unknown (no kernel configuration readable)")
	}
	if t.IdleTick != "" {
		parts = append(parts, "idle tick "+t.IdleTick)
	}
	if t.Preempt != "" {
		parts = append(parts, "preemption "+t.Preempt)
	}
	if t.CPUIdle != "" {
		s := "cpuidle " + t.CPUIdle
		if t.HaltPollNs != "" {
			s += " (guest_halt_poll_ns " + t.HaltPollNs + ")"
		}
		parts = append(parts, s)
	}
	if t.CPULatencyUs >= 0 {
		parts = append(parts, fmt.Sprintf("cpu_dma_latency %d µs", t.CPULatencyUs))
	}
	if t.TimerSlackNs >= 0 {
		parts = append(parts, fmt.Sprintf("timer slack %d ns", t.TimerSlackNs))
	}
	return strings.Join(parts, ", ")
}

// ReadMachineTiming reads the facts from /proc and /sys; what it cannot
// read stays unknown.
func ReadMachineTiming() MachineTiming {
	t := MachineTiming{CPULatencyUs: -1, TimerSlackNs: -1}
	if cfg, _, err := kconfig.Read(); err == nil {
		t.HZ, t.IdleTick, t.Preempt = kernelTiming(cfg)
	}
	if b, err := os.ReadFile("/sys/kernel/debug/sched/preempt"); err == nil {
		// "none (voluntary) full": the model in parentheses is the one in force.
		if _, rest, ok := strings.Cut(string(b), "("); ok {
			if m, _, ok := strings.Cut(rest, ")"); ok {
				t.Preempt = m
			}
		}
	}
	drv := readTrim("/sys/devices/system/cpu/cpuidle/current_driver")
	gov := readTrim("/sys/devices/system/cpu/cpuidle/current_governor_ro")
	if gov == "" {
		gov = readTrim("/sys/devices/system/cpu/cpuidle/current_governor")
	}
	if drv != "" || gov != "" {
		t.CPUIdle = drv + "/" + gov
	}
	t.HaltPollNs = readTrim("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
	if f, err := os.Open(CPULatencyFile); err == nil {
		var v [4]byte
		if n, err := f.Read(v[:]); err == nil && n == 4 {
			t.CPULatencyUs = int64(int32(binary.NativeEndian.Uint32(v[:])))
		}
		_ = f.Close()
	}
	if s := readTrim("/proc/self/timerslack_ns"); s != "" {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			t.TimerSlackNs = v
		}
	}
	return t
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// kernelTiming reads CONFIG_HZ, the idle tick and the preemption model
// from a kernel configuration.
func kernelTiming(set kconfig.Config) (hz int, idleTick, preempt string) {
	hz = set.HZ()
	switch {
	case set["CONFIG_NO_HZ_FULL"] == "y":
		idleTick = "NO_HZ_FULL"
	case set["CONFIG_NO_HZ_IDLE"] == "y":
		idleTick = "NO_HZ_IDLE"
	case set["CONFIG_HZ_PERIODIC"] == "y":
		idleTick = "periodic"
	}
	switch {
	case set["CONFIG_PREEMPT_RT"] == "y":
		preempt = "rt"
	case set["CONFIG_PREEMPT"] == "y":
		preempt = "full"
	case set["CONFIG_PREEMPT_LAZY"] == "y":
		preempt = "lazy"
	case set["CONFIG_PREEMPT_VOLUNTARY"] == "y":
		preempt = "voluntary"
	case set["CONFIG_PREEMPT_NONE"] == "y":
		preempt = "none"
	}
	return hz, idleTick, preempt
}

// ProbeVerdict says in one sentence what the probe's p99 is made of on a
// machine whose tick is tickMs (0: unknown), from its unloaded and loaded
// p99s (ms).
func ProbeVerdict(tickMs, unloaded, loaded float64) string {
	inc := loaded - unloaded
	var base string
	switch {
	case tickMs > 0 && math.Abs(unloaded-tickMs) <= 0.1*tickMs:
		base = fmt.Sprintf("the unloaded p99 (%.3g ms) sits at the tick period (%.3g ms): the tick, not load", unloaded, tickMs)
	case unloaded >= 0.8*report.HarnessErrorLimitMs:
		base = fmt.Sprintf("the unloaded p99 (%.3g ms) is the machine's own, with no load: wake-ups through its idle states or hypervisor, not the tick (%.3g ms)", unloaded, tickMs)
	default:
		base = fmt.Sprintf("the unloaded p99 is low (%.3g ms)", unloaded)
	}
	if inc > report.ProbeIncreaseLimitMs {
		return fmt.Sprintf("%s; load adds %.3g ms at p99, more than the pool's %.3g ms limit: load.", base, inc, report.ProbeIncreaseLimitMs)
	}
	return fmt.Sprintf("%s; load adds %.3g ms at p99, within the pool's %.3g ms limit.", base, inc, report.ProbeIncreaseLimitMs)
}
