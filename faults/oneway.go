package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
)

// OneWay: the router drops, silently, the packets going one way and
// delivers the other way. With direction=to-watcher (the default) the
// peer's packets never reach the watcher: the watcher's probes and data
// reach the peer, whose acknowledgements die at the router, so to the
// watcher's kernel the peer is silent. With direction=to-peer the watcher's
// packets die and the peer's still arrive (it has nothing to say to an idle
// watcher, so again the watcher hears nothing). The drops sit in the
// router's prerouting hook at raw priority, so no ICMP error betrays them,
// and in its output hook for its own packets (a proxy's):
//
//	direction=to-watcher: [peer] --X [router] ----> [watcher]
//	direction=to-peer:    [peer] <---- [router] X-- [watcher]
//
// With `for` the path heals after that long: a disturbance.
type OneWay struct {
	Direction string        `param:"direction" default:"to-watcher" enum:"to-watcher|to-peer" help:"which way packets are dropped"`
	For       time.Duration `param:"for" optional:"" min:"1ms" help:"heal after this long (absent: permanent)"`

	rules *ruleSet
}

func init() {
	harness.RegisterFault("one-way", "the router silently drops the packets going one way (direction=to-watcher|to-peer)", &OneWay{})
}

// Inject installs the drops of one direction.
func (f *OneWay) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	rs, err := newRuleSet(lab, topo.Router, "one-way")
	if err != nil {
		return nil, 0, err
	}
	from, to := topo.RouterPeerLink, topo.RouterWatchLink
	if f.Direction == "to-peer" {
		from, to = to, from
	}
	pathDrops(rs, []string{from}, []string{to}, nil)
	at, err := rs.commit()
	if err != nil {
		return nil, 0, err
	}
	f.rules = rs
	return func(context.Context) (int64, error) { return rs.remove() }, at, nil
}

// Effect is silence, or a transient outage with `for`.
func (f *OneWay) Effect() harness.Effect { return transientIf(f.For) }

// Window is how long the drops last.
func (f *OneWay) Window() time.Duration { return f.For }

// Counters returns the packets the router dropped.
func (f *OneWay) Counters() (uint64, uint64, error) { return f.rules.counters() }

// Silence: with `for`, the path drops everything for that long (one way
// for one-way: the other way's answers are lost all the same).
func (f *OneWay) Silence() harness.Silence {
	return harness.Silence{Min: f.For, Max: f.For, Lossy: true}
}
