package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// spinAgent says it started, then runs without sleeping for ever: what a
// bug that spins does at real-time priority.
const spinAgent = "test-spin"

func init() {
	RegisterAgent(spinAgent, func() error {
		stdoutEmitter.Emit(protocol.Event{Event: protocol.EventLog, Msg: "spinning"})
		for {
		}
	})
}

// saysOnCue is a program that prints its first line when a line arrives
// on its standard input, then sleeps.
var saysOnCue = []string{"-c", `read cue; echo started; exec sleep 30`}

// A lab's realtime processes run at real-time priority, bounded by RLIMIT_RTTIME,
// from the moment it measures and they have started (said their first
// line), those started later too; a service (not Realtime) stays at
// normal priority, and so does everything before.
func TestMeasuringLabRunsItsStampersRealtime(t *testing.T) {
	_, lab := newTestLab(t)
	start := func(label string, realtime bool) *Process {
		p, err := lab.Host(topo.Watcher).Start(ProcSpec{Path: "/bin/sh", Args: saysOnCue, Label: label, Realtime: realtime})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cue := func(p *Process) {
		if err := p.Send(agentcmd.Command{Cmd: "go"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !p.spoke.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("%s said nothing within 10 s of its cue", p.Label)
			}
			time.Sleep(time.Millisecond)
		}
	}
	policy := func(p *Process) uint32 { return schedPolicy(t, p.Pid()) }
	agent, service := start("watcher", true), start("service", false)
	cue(agent)
	cue(service)
	if policy(agent) != unix.SCHED_NORMAL {
		t.Error("an agent runs at real-time priority before its lab measures")
	}
	lab.Measuring()
	if policy(agent) != realtimePolicy {
		t.Error("an agent of a measuring lab is not at real-time priority")
	}
	var lim unix.Rlimit
	if err := unix.Prlimit(agent.Pid(), unix.RLIMIT_RTTIME, nil, &lim); err != nil {
		t.Fatal(err)
	}
	if want := uint64(realtimeRunLimit / time.Microsecond); lim.Cur != want || lim.Max != uint64(realtimeKillLimit/time.Microsecond) {
		t.Errorf("an agent at real-time priority has RLIMIT_RTTIME %d/%d µs, want %d/%d", lim.Cur, lim.Max, want, realtimeKillLimit/time.Microsecond)
	}
	if policy(service) != unix.SCHED_NORMAL {
		t.Error("a service was moved to real-time priority")
	}
	later := start("peer", true)
	if policy(later) != unix.SCHED_NORMAL {
		t.Error("an agent started in a measuring lab (a rebooted host's) is at real-time priority before it has started")
	}
	cue(later)
	if policy(later) != realtimePolicy {
		t.Error("an agent started in a measuring lab (a rebooted host's) is not at real-time priority once it has started")
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
}

// A process that spins at real-time priority is stopped from holding a
// CPU past realtimeRunLimit: halfopen's agent moves back to normal
// priority and says so as an error, with its goroutines' stacks on its
// standard error; a program that does not catch SIGXCPU is ended by it.
func TestRealtimeSpinIsBounded(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec ProcSpec
	}{
		{"agent", AgentProc(exe, "spinner", envAgent+"="+spinAgent)},
		{"program", ProcSpec{Path: "/bin/sh", Args: []string{"-c", "echo started; while :; do :; done"}, Label: "spinner", Realtime: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, lab := newTestLab(t)
			lab.Measuring()
			p, err := lab.Host(topo.Watcher).Start(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			switch tc.name {
			case "agent":
				_, err := p.WaitEvent(ctx, "never said")
				if err == nil || !strings.Contains(err.Error(), "RLIMIT_RTTIME") {
					t.Fatalf("the spinning agent said %v, want its RLIMIT_RTTIME error", err)
				}
				if got := schedPolicy(t, p.Pid()); got != unix.SCHED_NORMAL {
					t.Errorf("the agent that spun is at policy %d, want SCHED_NORMAL", got)
				}
				deadline := time.Now().Add(5 * time.Second)
				for !strings.Contains(p.Stderr(), "goroutine ") {
					if time.Now().After(deadline) {
						t.Fatalf("no goroutine stacks on the agent's standard error: %q", p.Stderr())
					}
					time.Sleep(10 * time.Millisecond)
				}
			case "program":
				select {
				case <-p.Exited():
				case <-ctx.Done():
					t.Fatal("a program spinning at real-time priority still ran 10 s later")
				}
				if err := p.endedError("spinning"); !strings.Contains(err.Error(), "CPU time limit exceeded") || !strings.Contains(err.Error(), "RLIMIT_RTTIME") {
					t.Errorf("the spinning program's end says %q, want SIGXCPU and why", err)
				}
			}
			if err := lab.Close(); err != nil {
				t.Fatal(err)
			}
		})
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

// When the latency probe fails, its agents' diagnostics are kept in a
// file the error names: an agent stopped by RLIMIT_RTTIME prints its
// goroutines' stacks on standard error, and the probe's lab is no
// sample's, so nothing else would keep them.
func TestLatencyProbeKeepsItsAgentsLog(t *testing.T) {
	_, lab := newTestLab(t)
	start := func(label, say string) *Process {
		p, err := lab.Host(topo.Watcher).Start(ProcSpec{Path: "/bin/sh", Args: []string{"-c", "echo '" + say + "' >&2; exec sleep 30"}, Label: label})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	s := &session{Watcher: start("watcher", "goroutine 7 [running]: spin()"), Peer: start("peer", "peer here"), WatcherStartNs: protocol.Now()}
	dir := t.TempDir()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Watcher.Stderr(), "goroutine 7") || !strings.Contains(s.Peer.Stderr(), "peer here") {
		if time.Now().After(deadline) {
			t.Fatal("the programs' standard error was not read within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	err := keepProbeLog(dir, "r1", s, errors.New("decide-at: watcher: RLIMIT_RTTIME"))
	path := filepath.Join(dir, "latency-probe-r1.log")
	if err == nil || !strings.Contains(err.Error(), "RLIMIT_RTTIME") || !strings.Contains(err.Error(), path) {
		t.Fatalf("the probe's error %v does not keep its cause and name %s", err, path)
	}
	b, rerr := os.ReadFile(path)
	if rerr != nil || !strings.Contains(string(b), "goroutine 7 [running]: spin()") || !strings.Contains(string(b), "peer here") {
		t.Errorf("the kept log (%v) is %q, want both agents' standard error", rerr, b)
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
}
