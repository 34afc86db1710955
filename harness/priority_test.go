package harness

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/internal/topo"
)

// A lab's realtime processes run at SCHED_FIFO from the moment it measures,
// those started later too; a service (not Realtime) stays at normal
// priority, and so does everything before.
func TestMeasuringLabRunsItsStampersRealtime(t *testing.T) {
	_, lab := newTestLab(t)
	start := func(label string, realtime bool) *Process {
		p, err := lab.Host(topo.Watcher).Start(ProcSpec{Path: "/bin/sleep", Args: []string{"30"}, Label: label, Realtime: realtime})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	policy := func(p *Process) uint32 { return schedPolicy(t, p.Pid()) }
	agent, service := start("watcher", true), start("service", false)
	if policy(agent) != unix.SCHED_NORMAL {
		t.Error("an agent runs at real-time priority before its lab measures")
	}
	lab.Measuring()
	if policy(agent) != unix.SCHED_FIFO {
		t.Error("an agent of a measuring lab is not at SCHED_FIFO")
	}
	if policy(service) != unix.SCHED_NORMAL {
		t.Error("a service was moved to real-time priority")
	}
	if later := start("peer", true); policy(later) != unix.SCHED_FIFO {
		t.Error("an agent started in a measuring lab (a rebooted host's) is not at SCHED_FIFO")
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
}

// schedPolicy is the scheduling policy of process pid's main thread.
func schedPolicy(t *testing.T, pid int) uint32 {
	t.Helper()
	a, err := unix.SchedGetAttr(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a.Policy
}
