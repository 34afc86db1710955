package machine

import (
	"strings"
	"testing"

	"github.com/halfopen/halfopen/internal/machine/kconfig"
)

func TestParseKernelTiming(t *testing.T) {
	for _, tc := range []struct {
		name, cfg     string
		hz            int
		idle, preempt string
	}{
		{"this VM", "CONFIG_NO_HZ_COMMON=y\nCONFIG_NO_HZ_IDLE=y\n# CONFIG_NO_HZ_FULL is not set\nCONFIG_PREEMPT_NONE=y\n# CONFIG_PREEMPT is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n", 250, "NO_HZ_IDLE", "none"},
		{"a desktop", "CONFIG_HZ_PERIODIC=y\nCONFIG_PREEMPT=y\nCONFIG_HZ=1000\n", 1000, "periodic", "full"},
		{"nothing known", "# empty\n", 0, "", ""},
	} {
		hz, idle, preempt := kernelTiming(kconfig.Parse(tc.cfg))
		if hz != tc.hz || idle != tc.idle || preempt != tc.preempt {
			t.Errorf("%s: HZ %d, idle tick %q, preemption %q; want %d, %q, %q", tc.name, hz, idle, preempt, tc.hz, tc.idle, tc.preempt)
		}
	}
	if got := (MachineTiming{HZ: 250, CPULatencyUs: -1, TimerSlackNs: -1}).String(); got != "tick 250 Hz (4 ms)" {
		t.Errorf("String() = %q", got)
	}
}

func TestProbeVerdict(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		tick, unloaded, loaded float64
		want                   string
	}{
		{"a 1 ms tick", 1, 1.0, 1.1, "the tick, not load"},
		{"idle states near 1 ms at HZ=250", 4, 0.95, 1.0, "the machine's own, with no load"},
		{"load", 4, 0.2, 0.9, "more than the pool's 0.3 ms limit: load"},
		{"neither", 4, 0.2, 0.3, "within the pool's 0.3 ms limit"},
	} {
		if got := ProbeVerdict(tc.tick, tc.unloaded, tc.loaded); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q lacks %q", tc.name, got, tc.want)
		}
	}
}

// This machine's facts are read, not guessed: the tick rate is the
// kernel configuration's where one is readable, and unknown where not.
func TestReadMachineTiming(t *testing.T) {
	mt := ReadMachineTiming()
	cfg, src, err := kconfig.Read()
	switch {
	case err != nil && mt.HZ != 0:
		t.Errorf("HZ %d with no kernel configuration readable (%v)", mt.HZ, err)
	case err == nil && (mt.HZ != cfg.HZ() || mt.HZ < 24 || mt.HZ > 1000):
		t.Errorf("HZ %d; %s says %d", mt.HZ, src, cfg.HZ())
	}
	if mt.TimerSlackNs < 0 {
		t.Error("no timer slack from /proc/self/timerslack_ns")
	}
}
