package harness

import (
	"fmt"
	"syscall"
	"time"
)

// ProgramGrace is how long a foreign program has to exit after SIGTERM
// (protocol v1).
const ProgramGrace = 2 * time.Second

// endPrograms ends the processes of a sample whose watcher is a foreign
// program, as protocol v1 says: SIGTERM, then SIGKILL after ProgramGrace.
// A program that had to be killed, or that printed a line outside the
// protocol, turns the sample into an error with that sentence, unless it
// already is one.
func endPrograms(c *Cell, p *pair, out *measured) {
	procs := []*Process{p.watcher}
	if prog, ok := c.Detector.(Program); ok {
		if _, foreign := prog.PeerProgram(c.Config.Side, ""); foreign {
			procs = append(procs, p.peer)
		}
	}
	var problem error
	for _, proc := range procs {
		if proc == nil {
			continue
		}
		if err := proc.ProtocolErr(); err != nil && problem == nil {
			problem = fmt.Errorf("the %s broke protocol v1: %v", proc.Label, err)
		}
		if stopHung(proc, ProgramGrace) && problem == nil {
			problem = fmt.Errorf("the %s (pid %d) was still running %v after SIGTERM and was killed", proc.Label, proc.Pid(), ProgramGrace)
		}
	}
	if problem != nil && out.Error == "" {
		out.Sample = errSample(out.Seed, "%v", problem)
		out.mistakes, out.observedS = nil, 0
	}
}

// stopHung sends SIGTERM and reports whether the process had to be killed
// because it did not exit within grace.
func stopHung(p *Process, grace time.Duration) bool {
	select {
	case <-p.Exited():
		return false
	default:
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited():
		return false
	case <-time.After(grace):
		_ = p.Kill()
		return true
	}
}
