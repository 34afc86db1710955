package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/nftmatch"
	"github.com/halfopen/halfopen/internal/topo"
)

// RandomLoss: the router drops `percent` % of the packets between the peer
// and the watcher, both ways, each packet on its own random draw
// (nftables "numgen random mod 100 < percent", in prerouting at raw
// priority and in output for the router's own packets). TCP retransmits
// what is lost, so the connection must survive: a disturbance, observed for
// `for`, after which the loss stops.
type RandomLoss struct {
	Percent int           `param:"percent" default:"10" min:"0" max:"100" help:"share of packets dropped, in percent"`
	For     time.Duration `param:"for" default:"3s" min:"1ms" help:"how long the loss lasts (the disturbance window)"`

	rules *ruleSet
}

func init() {
	harness.RegisterFault("random-loss", "the router drops percent % of the packets, both ways, at random", &RandomLoss{})
}

// Inject installs the random drops.
func (f *RandomLoss) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	rs, err := newRuleSet(lab, topo.Router, "random-loss")
	if err != nil {
		return nil, 0, err
	}
	ports := []string{topo.RouterPeerLink, topo.RouterWatchLink}
	pathDrops(rs, ports, ports, nftmatch.RandomBelow(f.Percent))
	at, err := rs.commit()
	if err != nil {
		return nil, 0, err
	}
	f.rules = rs
	return func(context.Context) (int64, error) { return rs.remove() }, at, nil
}

// Effect is a disturbance: the connection must survive.
func (f *RandomLoss) Effect() harness.Effect { return harness.EffectTransient }

// Window is how long the loss lasts.
func (f *RandomLoss) Window() time.Duration { return f.For }

// Counters returns the packets the router dropped.
func (f *RandomLoss) Counters() (uint64, uint64, error) { return f.rules.counters() }

// Silence: a random share of packets is dropped for the window: from no
// silence at all to, by chance, the whole window.
func (f *RandomLoss) Silence() harness.Silence {
	return harness.Silence{Max: f.For, Lossy: f.Percent > 0}
}
