package faults

import (
	"context"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/agentcmd"
)

// GracefulClose: the peer closes its end in order. It calls
// shutdown(SHUT_WR), so its kernel sends a FIN even if echoed bytes are still
// unread (a plain close() would then send an RST). The watcher's read
// returns 0. Injected at the instant just before shutdown() in the peer:
// the FIN wakes the watcher before the call returns.
type GracefulClose struct{}

func init() {
	harness.RegisterFault("graceful-close", "the peer closes its end: a FIN crosses the router", &GracefulClose{})
}

// Inject tells the peer to shut its connection down.
func (f *GracefulClose) Inject(ctx context.Context, lab *harness.Lab, conn *harness.Conn) (harness.Heal, int64, error) {
	at, err := peerCommand(ctx, conn, agentcmd.CmdClose)
	return nil, at, err
}

// Effect is a FIN.
func (f *GracefulClose) Effect() harness.Effect { return harness.EffectFIN }
