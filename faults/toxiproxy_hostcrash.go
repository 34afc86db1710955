package faults

import (
	"context"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// ToxiproxyHostCrash: host-crash behind the proxy. The path goes through
// Toxiproxy on the router and the peer host then vanishes as in host-crash
// (isolated, its processes killed, its namespace destroyed). The watcher's
// TCP peer is the proxy's kernel, which lives on: it acknowledges what the
// watcher sends and answers its keepalive probes, so keepalive and the user
// timeout never decide, where on the direct path they decide in their
// predicted range. The proxy's own upstream socket retransmits into the
// void; Toxiproxy dials it with Go's default keepalive (15 s idle, 15 s
// interval, 9 probes), so only after about 150 s does the proxy give up and
// close the watcher's side. A heart-beat, which needs the peer's own
// answers, decides as on the direct path. This is what happens behind every
// real proxy and load balancer.
type ToxiproxyHostCrash struct {
	proxied
	rules *ruleSet
}

func init() {
	harness.RegisterFault("toxiproxy-host-crash", "the peer host crashes behind the proxy: kernel-level detectors watch the proxy, not the peer", &ToxiproxyHostCrash{})
}

// Inject crashes the peer host.
func (f *ToxiproxyHostCrash) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	at, err := crashPeer(lab, "toxiproxy-host-crash", &f.rules)
	return nil, at, err
}

// Effect: the peer is silent; its proxy is not.
func (f *ToxiproxyHostCrash) Effect() harness.Effect { return harness.EffectSilent }

// Expect follows proxiedExpect: kernel-level detectors never decide.
func (f *ToxiproxyHostCrash) Expect(det harness.Detector) (harness.Prediction, report.Expectation) {
	return proxiedExpect(det, false, 0, nil, "the peer host crashed behind the proxy")
}

// Note says why the cell differs from host-crash on the direct path.
func (f *ToxiproxyHostCrash) Note(lab *harness.Lab, conn *harness.Conn) string {
	return f.proxied.Note(lab, conn) + "; the peer host crashed behind it: keepalive and the user timeout are answered by the proxy's kernel and never see the death (on the direct path they decide in their range), the proxy itself notices only via its upstream socket's Go default keepalive (~150 s); heart-beats, answered by the peer's application, still decide"
}

// Counters returns the packets the router dropped for the dead host.
func (f *ToxiproxyHostCrash) Counters() (uint64, uint64, error) { return f.rules.counters() }
