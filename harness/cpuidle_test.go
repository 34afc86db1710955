package harness

import (
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/internal/machine"
)

// While a run has labs, the kernel's CPU latency request is 0 µs (idle
// CPUs poll); Close lets go of it.
func TestRunHoldsIdlePollWhileItHasLabs(t *testing.T) {
	if _, err := os.Stat(machine.CPULatencyFile); err != nil {
		t.Skip(err)
	}
	run, lab := newTestLab(t)
	if note := run.CPUIdle(); !strings.HasPrefix(note, "polling") {
		t.Fatalf("CPUIdle() = %q, want polling", note)
	}
	// Reading the device gives the kernel's aggregate request.
	f, err := os.Open(machine.CPULatencyFile)
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
