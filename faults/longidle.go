package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
)

// LongIdle: nothing fails; the connection simply stays idle for `for`. A
// disturbance: a detector that drops a healthy idle connection (a
// heart-beat with no tolerance, a keepalive whose probes go unanswered) is
// wrong, and every decision counts as a false positive.
type LongIdle struct {
	For time.Duration `param:"for" default:"10s" min:"1ms" help:"how long the connection stays idle (the disturbance window)"`
}

func init() {
	harness.RegisterFault("long-idle", "nothing fails: the connection stays idle for `for`", &LongIdle{})
}

// Inject does nothing and returns the instant the idle window starts.
func (f *LongIdle) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	return nil, protocol.Now(), nil
}

// Effect is a disturbance.
func (f *LongIdle) Effect() harness.Effect { return harness.EffectTransient }

// Window is how long the connection is watched idle.
func (f *LongIdle) Window() time.Duration { return f.For }
