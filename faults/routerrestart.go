package faults

import (
	"context"
	"errors"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// RouterRestart: the router restarts. For `outage` it forwards nothing and
// answers nothing, and it forgets its connection tracking state, as a
// rebooting box does; then it recovers. No end host forgets anything, so
// connections should survive an outage shorter than the detector's
// tolerance: a disturbance.
//
//	[peer] =/ /= [router, restarting for `outage`] =/ /= [watcher]
//
// With carrier=false (the default) the hosts sit behind switches that stay
// up: their NICs keep carrier and the router simply forwards and answers
// nothing (drops at raw priority in prerouting and output) while it also
// forgets its conntrack state. With carrier=true the hosts are attached to
// the router's ports directly and lose carrier for the outage; their own
// kernels then drop what TCP sends on a carrier-less link and back off as
// for local congestion, so recovery after the outage is slower (measured:
// a 200 ms heart-beat with 6 misses survives a 300 ms outage without
// carrier loss, and not with it).
type RouterRestart struct {
	Outage  time.Duration `param:"outage" default:"1s" min:"1ms" help:"how long the router forwards nothing"`
	Carrier bool          `param:"carrier" default:"false" help:"true: the hosts' NICs lose carrier (attached straight to the router's ports)"`

	rules *ruleSet
}

func init() {
	harness.RegisterFault("router-restart", "the router forwards nothing and forgets its conntrack state for `outage`, then recovers (carrier=true: its ports go down)", &RouterRestart{})
}

// Inject stops the router's forwarding (drops, or both ports down with
// carrier=true) and flushes its conntrack table.
func (f *RouterRestart) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	if !f.Carrier {
		rs, at, err := dropEverything(lab, "router-restart")
		if err != nil {
			return nil, 0, err
		}
		f.rules = rs
		if _, err := forgetFlows(lab, nil, true); err != nil {
			return nil, 0, err
		}
		return func(context.Context) (int64, error) { return rs.remove() }, at, nil
	}
	for _, name := range []string{topo.RouterPeerLink, topo.RouterWatchLink} {
		if err := lab.SetLinkUp(topo.Router, name, false); err != nil {
			return nil, 0, err
		}
	}
	at := protocol.Now()
	if _, err := forgetFlows(lab, nil, true); err != nil {
		return nil, 0, err
	}
	return func(context.Context) (int64, error) {
		var errs []error
		for _, name := range []string{topo.RouterPeerLink, topo.RouterWatchLink} {
			errs = append(errs, lab.SetLinkUp(topo.Router, name, true))
		}
		return protocol.Now(), errors.Join(errs...)
	}, at, nil
}

// Effect is a disturbance: the connection must survive.
func (f *RouterRestart) Effect() harness.Effect { return harness.EffectTransient }

// Window is the outage.
func (f *RouterRestart) Window() time.Duration { return f.Outage }

// Counters returns what the restarting router dropped (carrier=false).
func (f *RouterRestart) Counters() (uint64, uint64, error) {
	if f.rules == nil {
		return 0, 0, errors.New("router-restart with carrier=true drops nothing with nftables: its ports are down")
	}
	return f.rules.counters()
}

// Silence: the router forwards nothing for the outage; what it drops is
// resent by the hosts' timers.
func (f *RouterRestart) Silence() harness.Silence {
	return harness.Silence{Min: f.Outage, Max: f.Outage, Lossy: true}
}
