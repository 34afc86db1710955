package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// LocalCablePull: the watcher's own cable is pulled. A pulled cable is a
// carrier loss, not an administrative "link down": the router's end of the
// watcher's veth goes down, so the watcher's eth0 loses carrier
// (NO-CARRIER, operstate LOWERLAYERDOWN) while staying administratively up
// with its address and routes, as a real NIC does:
//
//	[peer] ==== [router] =/ /= [watcher eth0: UP, NO-CARRIER]
//
// What the watcher sends dies in its own stack: its neighbour entries are
// flushed on carrier loss, ARP goes unanswered, and when resolution fails
// the kernel reports the queued segments to the socket as a local ICMP host
// unreachable (arp_error_report), a soft error that a timer reports in
// place of ETIMEDOUT. Nothing reaches the peer. With `for` the cable is
// plugged back after that long: a disturbance.
type LocalCablePull struct {
	For time.Duration `param:"for" optional:"" min:"1ms" help:"plug the cable back after this long (absent: permanent)"`
}

func init() {
	harness.RegisterFault("local-cable-pull", "the watcher's own cable is pulled: its eth0 loses carrier", &LocalCablePull{})
}

// Inject takes the far end of the watcher's veth down.
func (f *LocalCablePull) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	if err := lab.SetLinkUp(topo.Router, topo.RouterWatchLink, false); err != nil {
		return nil, 0, err
	}
	at := protocol.Now()
	return func(context.Context) (int64, error) {
		err := lab.SetLinkUp(topo.Router, topo.RouterWatchLink, true)
		return protocol.Now(), err
	}, at, nil
}

// Effect is silence (timers decide), or a transient outage with `for`.
func (f *LocalCablePull) Effect() harness.Effect { return transientIf(f.For) }

// Window is how long the cable stays out.
func (f *LocalCablePull) Window() time.Duration { return f.For }

// Reasons are the errors a timer-based detector reports: failed neighbour
// resolution on the watcher's own link replaces ETIMEDOUT.
func (f *LocalCablePull) Reasons() []string {
	return []string{"ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"}
}

// Silence: with `for`, the path drops everything for that long (one way
// for one-way: the other way's answers are lost all the same).
func (f *LocalCablePull) Silence() harness.Silence {
	return harness.Silence{Min: f.For, Max: f.For, Lossy: true}
}

// CutsWatcherLink: the watcher's own link loses carrier.
func (f *LocalCablePull) CutsWatcherLink() {}
