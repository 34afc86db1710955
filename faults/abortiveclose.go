package faults

import (
	"context"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/agentcmd"
)

// AbortiveClose: the peer resets its connection: SO_LINGER with a zero
// timeout, then close(), makes its kernel send an RST instead of a FIN
// (tcp_close() with a zero linger time). The watcher's read fails with
// ECONNRESET. Injected at the instant just before close() in the peer.
type AbortiveClose struct{}

func init() {
	harness.RegisterFault("abortive-close", "the peer resets its connection (SO_LINGER 0 + close): an RST", &AbortiveClose{})
}

// Inject tells the peer to reset its connection.
func (f *AbortiveClose) Inject(ctx context.Context, lab *harness.Lab, conn *harness.Conn) (harness.Heal, int64, error) {
	at, err := peerCommand(ctx, conn, agentcmd.CmdReset)
	return nil, at, err
}

// Effect is an RST.
func (f *AbortiveClose) Effect() harness.Effect { return harness.EffectRST }
