package harness

import (
	"syscall"
	"time"
)

// ProgramGrace is how long a foreign program has to exit after SIGTERM
// (protocol v1).
const ProgramGrace = 2 * time.Second

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
