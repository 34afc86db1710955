package faults

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// ProcessKill: the peer process is SIGKILLed. Its host lives on, so the
// kernel closes the dead process's sockets: a FIN, or an RST when bytes the
// process never read were still queued (tcp_close(), RFC 2525 §2.17).
// Injected at the instant just before kill(2).
type ProcessKill struct{}

func init() {
	harness.RegisterFault("process-kill", "the peer process is SIGKILLed; its kernel closes the socket (FIN, or RST with unread data)", &ProcessKill{})
}

// Inject kills every process of the peer host.
func (f *ProcessKill) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	h := lab.Host(topo.Peer)
	if h == nil {
		return nil, 0, errors.New("the peer host is gone")
	}
	procs := h.Processes()
	if len(procs) == 0 {
		return nil, 0, errors.New("the peer host runs no process")
	}
	// The instant is taken before kill(2): the kernel may close the
	// sockets, and the watcher see the FIN, before the call returns.
	at := protocol.Now()
	for _, p := range procs {
		if err := p.Signal(syscall.SIGKILL); err != nil {
			return nil, 0, fmt.Errorf("kill %s (pid %d): %w", p.Label, p.Pid(), err)
		}
	}
	return nil, at, nil
}

// Effect is a FIN, or an RST when unread data was queued.
func (f *ProcessKill) Effect() harness.Effect { return harness.EffectFINOrRST }
