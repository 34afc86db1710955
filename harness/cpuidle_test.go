package harness

import (
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// While a run has labs, the kernel's CPU latency request is 0 µs (idle
// CPUs poll); Close lets go of it.
func TestRunHoldsIdlePollWhileItHasLabs(t *testing.T) {
	if _, err := os.Stat(cpuLatencyFile); err != nil {
		t.Skip(err)
	}
	run, lab := newTestLab(t)
	if note := run.CPUIdle(); !strings.HasPrefix(note, "polling") {
		t.Fatalf("CPUIdle() = %q, want polling", note)
	}
	// Reading the device gives the kernel's aggregate request.
	f, err := os.Open(cpuLatencyFile)
	if err != nil {
		t.Fatal(err)
	}
	var v [4]byte
	_, err = f.Read(v[:])
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := int32(binary.NativeEndian.Uint32(v[:])); got != 0 {
		t.Errorf("the kernel's CPU latency request is %d µs with a run's lab up, want 0", got)
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if err := run.Close(); err != nil {
		t.Fatal(err)
	}
	if run.idle.file != nil {
		t.Error("the request is still held after Close")
	}
	if note := run.CPUIdle(); !strings.Contains(note, "polling") {
		t.Errorf("after Close, CPUIdle() = %q: it should still say how the run's CPUs waited", note)
	}
}

func TestIdlePollCanBeTurnedOff(t *testing.T) {
	t.Setenv(envNoIdlePoll, "1")
	p := holdIdlePoll()
	if p.file != nil || !strings.HasPrefix(p.note, "halting") || !strings.Contains(p.note, envNoIdlePoll) {
		t.Errorf("with %s=1: file %v, note %q", envNoIdlePoll, p.file, p.note)
	}
}

// normalPriority takes every thread of a real-time process back to
// SCHED_NORMAL, as the harness does before it kills an agent.
func TestNormalPriorityBeforeExit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs CAP_SYS_NICE")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	policy := func() uint32 { return schedPolicy(t, pid) }
	setPolicy(pid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1})
	if got := policy(); got != unix.SCHED_FIFO {
		t.Fatalf("policy %d after setPolicy, want SCHED_FIFO", got)
	}
	normalPriority(pid)
	if got := policy(); got != unix.SCHED_NORMAL {
		t.Errorf("policy %d after normalPriority, want SCHED_NORMAL", got)
	}
}

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
		hz, idle, preempt := parseKernelTiming(tc.cfg)
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

// This machine's facts are read, not guessed: the kernel's configuration
// where it has /proc/config.gz.
func TestReadMachineTiming(t *testing.T) {
	if _, err := os.Stat("/proc/config.gz"); err != nil {
		t.Skip(err)
	}
	mt := ReadMachineTiming()
	if mt.HZ < 100 || mt.HZ > 1000 {
		t.Errorf("HZ %d from /proc/config.gz", mt.HZ)
	}
	if mt.TimerSlackNs < 0 {
		t.Error("no timer slack from /proc/self/timerslack_ns")
	}
}
