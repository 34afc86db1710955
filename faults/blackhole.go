package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/nftmatch"
	"github.com/halfopen/halfopen/internal/topo"
)

// Blackhole: the router drops, silently, every packet between the peer and
// the watcher, both ways. The drops sit in the router's prerouting hook at
// raw priority, before routing, so no ICMP error is ever generated, and in
// its output hook for the router's own packets (a proxy's). With `for` the
// path heals after that long: a disturbance.
type Blackhole struct {
	For time.Duration `param:"for" optional:"" min:"1ms" help:"heal after this long (absent: permanent)"`

	rules *ruleSet
}

func init() {
	harness.RegisterFault("blackhole", "the router silently drops every packet between peer and watcher, both ways", &Blackhole{})
}

// Inject installs the drops.
func (f *Blackhole) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	rs, at, err := dropEverything(lab, "blackhole")
	if err != nil {
		return nil, 0, err
	}
	f.rules = rs
	return func(context.Context) (int64, error) { return rs.remove() }, at, nil
}

// dropEverything makes the router drop, silently, every packet that arrives
// from either host (prerouting at raw priority, before routing, so no ICMP
// error is generated) and every packet it sends them itself (a proxy's).
func dropEverything(lab *harness.Lab, tag string) (*ruleSet, int64, error) {
	rs, err := newRuleSet(lab, topo.Router, tag)
	if err != nil {
		return nil, 0, err
	}
	pre := rs.chain("pre", nftablesPrerouting, nftablesRaw)
	rs.drop(pre, nftmatch.IIF(topo.RouterPeerLink))
	rs.drop(pre, nftmatch.IIF(topo.RouterWatchLink))
	out := rs.chain("out", nftablesOutput, nftablesRaw)
	rs.drop(out, nftmatch.OIF(topo.RouterPeerLink))
	rs.drop(out, nftmatch.OIF(topo.RouterWatchLink))
	at, err := rs.commit()
	if err != nil {
		return nil, 0, err
	}
	return rs, at, nil
}

// Effect is silence, or a transient outage with `for`.
func (f *Blackhole) Effect() harness.Effect { return transientIf(f.For) }

// Window is how long the outage lasts.
func (f *Blackhole) Window() time.Duration { return f.For }

// Counters returns the packets the blackhole dropped.
func (f *Blackhole) Counters() (uint64, uint64, error) { return f.rules.counters() }

// transientIf is the effect of a fault that heals after d (when d > 0).
func transientIf(d time.Duration) harness.Effect {
	if d > 0 {
		return harness.EffectTransient
	}
	return harness.EffectSilent
}

// Silence: with `for`, the path drops everything for that long (one way
// for one-way: the other way's answers are lost all the same).
func (f *Blackhole) Silence() harness.Silence {
	return harness.Silence{Min: f.For, Max: f.For, Lossy: true}
}
