package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/protocol"
)

// requestTimeout bounds how long an agent may take to answer a command.
const requestTimeout = 5 * time.Second

// Request sends a command to one of halfopen's own agents and waits, at
// most RequestTimeout, for the event that answers it (reply), which it
// returns. Events before the answer are consumed; an agentcmd.EventError or the
// agent's end is the error.
func (p *Process) Request(ctx context.Context, c agentcmd.Command, reply string) (protocol.Event, error) {
	if err := p.Send(c); err != nil {
		return protocol.Event{}, fmt.Errorf("%s: %s: %w", p.Label, c.Cmd, err)
	}
	wctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	ev, err := p.WaitEvent(wctx, reply)
	if err != nil {
		return protocol.Event{}, fmt.Errorf("%s: %s: %w", c.Cmd, p.Label, err)
	}
	return ev, nil
}

// cmdWrite tells halfopen's own watcher agent to write Bytes of a request
// on its data connection, as a client that sends a request and awaits the
// answer: the in-flight phase of a sample. It answers agentcmd.EventSent, stamped
// just before the write, with Msg naming the write's error if it failed
// (a connection the fault already ended). Foreign programs never get it:
// protocol v1 is unchanged.
const cmdWrite agentcmd.CommandName = "write"
