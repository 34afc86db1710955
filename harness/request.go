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
