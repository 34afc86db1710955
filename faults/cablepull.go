package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// PeerCablePull: the peer's cable is pulled at the router. The router's
// port facing the peer goes administratively down, as a switch port does
// when its cable goes; the peer's end loses carrier. The router loses its
// connected route to 198.18.1.0/24, so what the watcher sends next is
// answered by the router with ICMP net unreachable: Linux TCP takes that as
// a soft error (tcp_v4_err) and, when a timer finally gives up, reports
// ENETUNREACH in place of ETIMEDOUT (tcp_write_err). The watcher's own link
// stays up. With `for` the cable is plugged back after that long.
type PeerCablePull struct {
	For time.Duration `param:"for" optional:"" min:"1ms" help:"plug the cable back after this long (absent: permanent)"`
}

func init() {
	harness.RegisterFault("peer-cable-pull", "the router's port to the peer goes down; the watcher's link stays up", &PeerCablePull{})
}

// Inject sets the router's peer-side port down.
func (f *PeerCablePull) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	if err := lab.SetLinkUp(topo.Router, topo.RouterPeerLink, false); err != nil {
		return nil, 0, err
	}
	at := protocol.Now()
	return func(context.Context) (int64, error) {
		err := lab.SetLinkUp(topo.Router, topo.RouterPeerLink, true)
		return protocol.Now(), err
	}, at, nil
}

// Effect is silence (timers decide), or a transient outage with `for`.
func (f *PeerCablePull) Effect() harness.Effect { return transientIf(f.For) }

// Window is how long the cable stays out.
func (f *PeerCablePull) Window() time.Duration { return f.For }

// Reasons are the errors a timer-based detector reports: the router's ICMP
// net unreachable replaces ETIMEDOUT.
func (f *PeerCablePull) Reasons() []string {
	return []string{"ETIMEDOUT", "ENETUNREACH", "EHOSTUNREACH"}
}

// Silence: with `for`, the path drops everything for that long (one way
// for one-way: the other way's answers are lost all the same).
func (f *PeerCablePull) Silence() harness.Silence {
	return harness.Silence{Min: f.For, Max: f.For, Lossy: true}
}
