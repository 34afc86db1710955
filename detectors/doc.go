// Package detectors holds halfopen's dead-peer detection strategies, one per
// file, each registered with its parameters and its predicted detection
// range for a silent peer, citing the kernel or algorithm rule it comes from.
//
// A detector's watcher side runs inside the watcher agent, a process living
// in the lab's watcher namespace, on connections made with Go's default
// 15 s keepalive turned off; its peer side is halfopen's built-in echo peer.
package detectors

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
)

// readUntilEnd reads c until a read fails or returns end of stream and
// returns the decision at that instant: "EOF" for a FIN, the errno's name
// otherwise (ECONNRESET, ETIMEDOUT, ...). onData, if set, is handed every
// chunk read. Go retries EINTR itself, as read-eof demands.
func readUntilEnd(ctx context.Context, c *net.TCPConn, onData func([]byte)) harness.Decision {
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 64*1024)
	for {
		n, err := c.Read(buf)
		if err != nil || n == 0 {
			d := harness.Decide(protocol.Reason(err))
			if ctx.Err() != nil {
				return harness.Decision{}
			}
			return d
		}
		if onData != nil {
			onData(buf[:n])
		}
	}
}

// decideFirst runs the watcher's reader and its timer-driven side at once and
// returns whichever decides first.
func decideFirst(ctx context.Context, fns ...func(ctx context.Context) harness.Decision) harness.Decision {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan harness.Decision, len(fns))
	for _, fn := range fns {
		go func() { out <- fn(ctx) }()
	}
	for range fns {
		if d := <-out; d.Reason != "" {
			return d
		}
	}
	return harness.Decision{}
}

// writeErr names a failed write as a decision.
func writeErr(err error) harness.Decision {
	if errors.Is(err, net.ErrClosed) {
		return harness.Decision{}
	}
	return harness.Decide(protocol.Reason(err))
}
