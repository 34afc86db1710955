package faults

import (
	"context"
	"errors"
	"time"

	"github.com/halfopen/halfopen/harness"
)

// RouterRestart: the router restarts. Both its ports go administratively
// down (the peer's and the watcher's NICs lose carrier) and it forgets its
// connection tracking state, as a rebooting box does; after `outage` its
// ports come back up and its connected routes return with their addresses.
// Nothing is forwarded meanwhile, and nothing is answered: the hosts' own
// routes stay (a carrier loss does not remove them), so their segments die
// unanswered. No end host forgets anything, so connections should survive
// an outage shorter than the detector's tolerance: a disturbance.
//
//	[peer] =/ /= [router, restarting for `outage`] =/ /= [watcher]
type RouterRestart struct {
	Outage time.Duration `param:"outage" default:"1s" min:"1ms" help:"how long the router forwards nothing"`
}

func init() {
	harness.RegisterFault("router-restart", "the router's ports go down and its conntrack state is lost for `outage`, then it recovers", &RouterRestart{})
}

// Inject takes both router ports down and flushes its conntrack table.
func (f *RouterRestart) Inject(ctx context.Context, lab *harness.Lab) (harness.Heal, int64, error) {
	for _, name := range []string{harness.RouterPeerLink, harness.RouterWatchLink} {
		if err := lab.SetLinkUp(harness.Router, name, false); err != nil {
			return nil, 0, err
		}
	}
	at := harness.Now()
	if _, err := forgetFlows(lab, true); err != nil {
		return nil, 0, err
	}
	return func(context.Context) (int64, error) {
		var errs []error
		for _, name := range []string{harness.RouterPeerLink, harness.RouterWatchLink} {
			errs = append(errs, lab.SetLinkUp(harness.Router, name, true))
		}
		return harness.Now(), errors.Join(errs...)
	}, at, nil
}

// Effect is a disturbance: the connection must survive.
func (f *RouterRestart) Effect() harness.Effect { return harness.EffectTransient }

// Window is the outage.
func (f *RouterRestart) Window() time.Duration { return f.Outage }
