package faults

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// HalfOpen is the reference text's own case: the peer host dies while the
// connection is idle and the watcher is blocked in recv. The death is that
// of host-crash (isolated at the router, processes killed, namespace
// destroyed: no FIN, no RST), and afterwards the watcher's socket stays
// ESTABLISHED with nobody behind it: a half-open connection.
//
// What differs from host-crash: host-crash strikes at the runner's instant
// whatever is in flight; half-open strikes only once the watcher's kernel
// shows the connection truly idle, with no byte unacknowledged and nothing
// queued to send or to read (sock_diag in the watcher's namespace:
// tcpi_unacked = 0, send and receive queues empty), waiting up to 1 s for
// it. The runner's warm-up and idle time already leave the watcher idle in
// recv; half-open proves it at the instant of the crash. A detector that
// writes periodically (user-timeout, heart-beats) is still caught between
// writes, so what it had in flight does not shorten its time.
type HalfOpen struct {
	rules *ruleSet
	// IdleWait is how long the injection waited for the connection to be idle.
	IdleWait time.Duration
	// WasIdle is false when the connection never went idle within 1 s.
	WasIdle bool
}

func init() {
	harness.RegisterFault("half-open", "the reference text's case: the peer host dies while the connection is idle and the watcher is blocked in recv", &HalfOpen{})
}

// Inject waits until the watched connection is idle, then crashes the peer.
func (f *HalfOpen) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	start := protocol.Now()
	idle, err := waitIdle(ctx, lab, time.Second)
	if err != nil {
		return nil, 0, err
	}
	f.IdleWait, f.WasIdle = protocol.Since(start), idle
	at, err := crashPeer(lab, "half-open", &f.rules)
	return nil, at, err
}

// waitIdle polls the watcher's established TCP sockets until none has a
// byte unacknowledged or queued, or until limit passes (false).
func waitIdle(ctx context.Context, lab *harness.Lab, limit time.Duration) (bool, error) {
	w := lab.Host(topo.Watcher)
	if w == nil {
		return false, fmt.Errorf("host %s is gone", topo.Watcher)
	}
	h, err := netlink.NewHandleAt(w.NS, unix.NETLINK_INET_DIAG)
	if err != nil {
		return false, fmt.Errorf("open sock_diag in the watcher: %w", err)
	}
	defer h.Close()
	deadline := protocol.Now() + int64(limit)
	for {
		socks, err := h.SocketDiagTCPInfo(unix.AF_INET)
		if err != nil {
			return false, fmt.Errorf("read the watcher's sockets: %w", err)
		}
		idle, seen := true, false
		for _, s := range socks {
			if s.InetDiagMsg == nil || s.InetDiagMsg.State != unix.BPF_TCP_ESTABLISHED {
				continue
			}
			seen = true
			if s.InetDiagMsg.RQueue != 0 || s.InetDiagMsg.WQueue != 0 || (s.TCPInfo != nil && s.TCPInfo.Unacked != 0) {
				idle = false
			}
		}
		if seen && idle {
			return true, nil
		}
		if protocol.Now() >= deadline || ctx.Err() != nil {
			return false, nil
		}
		time.Sleep(time.Millisecond)
	}
}

// Effect is silence.
func (f *HalfOpen) Effect() harness.Effect { return harness.EffectSilent }

// Note says what the cell measures beyond host-crash.
func (f *HalfOpen) Note(*harness.Lab, *harness.Conn) string {
	return "half-open: the peer host crashed only once the watcher's kernel showed the connection idle (sock_diag: nothing unacknowledged or queued), the watcher blocked in recv; its socket stays ESTABLISHED afterwards"
}

// Counters returns the packets the router dropped for the dead host.
func (f *HalfOpen) Counters() (uint64, uint64, error) { return f.rules.counters() }
