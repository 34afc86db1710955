package harness

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/halfopen/halfopen/internal/topo"
)

// programGrace is how long a foreign program has to exit after SIGTERM
// (protocol v1).
const programGrace = 2 * time.Second

// stopHung sends SIGTERM and reports whether the process had to be killed
// because it did not exit within grace.
func stopHung(p *Process, grace time.Duration) bool {
	select {
	case <-p.Exited():
		return false
	default:
	}
	p.leaveRealtime()
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited():
		return false
	case <-time.After(grace):
		_ = p.Kill()
		return true
	}
}

// Probe is a host of its own for a foreign program that halfopen must hear
// from before any lab exists (an external detector's hello): one network
// namespace whose only link, the loopback, is down, in a cgroup of its own,
// under a reaper of its own. It is a lab of one host and goes as labs go:
// Close kills everything in it, however it detached (setsid, double fork,
// closed pipes, a new name), and removes it; if the orchestrator is killed
// first, the probe's reaper does the same.
//
//	[probe "ho-<run>-probe-watcher": lo down] (no link, no route, nothing to reach)
type Probe struct {
	// Host is where the program runs; its role is Watcher.
	Host *Host
	run  *Run
}

// NewProbe makes a probe. The binary must dispatch agent modes
// (MaybeRunAgent), since the probe starts a reaper.
func NewProbe(ctx context.Context) (*Probe, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	r := NewRun()
	if err := r.startReaper(); err != nil {
		return nil, errors.Join(fmt.Errorf("probe: %w", err), r.Close())
	}
	l := &Lab{ID: namespacePrefix + r.ID + "-probe", run: r, hosts: map[topo.Role]*Host{}}
	if err := r.remember(l); err != nil {
		return nil, errors.Join(fmt.Errorf("probe: %w", err), r.Close())
	}
	l.building.Lock()
	l.attachCgroup()
	err := l.createHosts(topo.Watcher)
	if err == nil {
		err = l.SetLinkUp(topo.Watcher, "lo", false)
	}
	l.building.Unlock()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("probe: %w", err), r.Close())
	}
	return &Probe{Host: l.Host(topo.Watcher), run: r}, nil
}

// Close kills everything in the probe and removes it.
func (p *Probe) Close() error {
	if err := p.run.Close(); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	return nil
}
