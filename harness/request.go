package harness

import (
	"context"
	"fmt"
	"time"
)

// RequestTimeout bounds how long an agent may take to answer a command.
const RequestTimeout = 5 * time.Second

// Request sends a command to one of halfopen's own agents and waits, at
// most RequestTimeout, for the event that answers it (reply), which it
// returns. Events before the answer are consumed; an EventError or the
// agent's end is the error.
func (p *Process) Request(ctx context.Context, c Command, reply string) (Event, error) {
	if err := p.Send(c); err != nil {
		return Event{}, fmt.Errorf("%s: %s: %w", p.Label, c.Cmd, err)
	}
	wctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	ev, err := p.WaitEvent(wctx, reply)
	if err != nil {
		return Event{}, fmt.Errorf("%s: %s: %w", c.Cmd, p.Label, err)
	}
	return ev, nil
}

// CmdWrite tells halfopen's own watcher agent to write Bytes of a request
// on its data connection, as a client that sends a request and awaits the
// answer: the in-flight phase of a sample. It answers EventSent, stamped
// just before the write, with Msg naming the write's error if it failed
// (a connection the fault already ended). Foreign programs never get it:
// protocol v1 is unchanged.
const CmdWrite CommandName = "write"
