package faults

import (
	"context"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
)

// HostCrash: the peer host vanishes: no FIN, no RST, no answer, ever. The
// router first isolates it (drops to and from 198.18.1.0/24 in prerouting at
// raw priority, before routing, so no ICMP error betrays the crash, and in
// output), then every process of the host is SIGKILLed (their FINs die at
// the router) and its namespace destroyed. Injected at the instant the
// isolation was acknowledged by the kernel.
type HostCrash struct {
	rules *ruleSet
}

func init() {
	harness.RegisterFault("host-crash", "the peer host vanishes: isolated, its processes killed, its namespace destroyed", &HostCrash{})
}

// Inject isolates, kills and destroys the peer host.
func (f *HostCrash) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	at, err := crashPeer(lab, "host-crash", &f.rules)
	return nil, at, err
}

// crashPeer isolates the peer at the router, then destroys it.
func crashPeer(lab *harness.Lab, tag string, keep **ruleSet) (int64, error) {
	rs, err := silenceHost(lab, tag, topo.PeerNet)
	if err != nil {
		return 0, err
	}
	at, err := rs.commit()
	if err != nil {
		return 0, err
	}
	*keep = rs
	if err := lab.DestroyHost(topo.Peer); err != nil {
		return 0, err
	}
	return at, nil
}

// Effect is silence.
func (f *HostCrash) Effect() harness.Effect { return harness.EffectSilent }

// Counters returns the packets the router dropped for the dead host.
func (f *HostCrash) Counters() (uint64, uint64, error) { return f.rules.counters() }
