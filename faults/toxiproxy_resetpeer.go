package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// ToxiproxyResetPeer: Toxiproxy's reset_peer toxic resets the connection
// `timeout` after the next chunk of data on its stream. Toxiproxy sets
// SO_LINGER 0 (what makes its close an RST) only on connections made while
// a reset_peer toxic exists (link.go, Start): on an older connection the
// toxic's close is a plain FIN. So Prepare adds the toxic with toxicity 0
// before the connection is made, and Inject raises its toxicity, then has
// the peer send one byte to set it off (on the stream toward the watcher;
// on the other stream the watcher's own writes must). The watcher's read
// fails with ECONNRESET `timeout` later.
type ToxiproxyResetPeer struct {
	proxied
	Timeout  time.Duration `param:"timeout" default:"0s" min:"0s" help:"reset this long after the next data (Toxiproxy's timeout, whole ms)"`
	Stream   string        `param:"stream" optional:"" enum:"upstream|downstream" help:"Toxiproxy's stream (absent: the one toward the watcher)"`
	Toxicity float64       `param:"toxicity" default:"1" min:"0" max:"1" help:"probability that the connection is reset"`
}

func init() {
	harness.RegisterFault("toxiproxy-reset-peer", "Toxiproxy's reset_peer toxic: an RST `timeout` after the next data", &ToxiproxyResetPeer{})
}

// Prepare puts the proxy on the path with the toxic disarmed.
func (f *ToxiproxyResetPeer) Prepare(ctx context.Context, lab *harness.Lab, conn *harness.Conn) error {
	if err := f.proxied.Prepare(ctx, lab, conn); err != nil {
		return err
	}
	st, err := f.prepared(lab)
	if err != nil {
		return err
	}
	return st.api.addToxic(ctx, toxic{Name: "reset_peer", Type: "reset_peer", Stream: st.stream(f.Stream), Toxicity: 0,
		Attributes: map[string]any{"timeout": ms(f.Timeout)}})
}

// Inject arms the toxic and sets it off with one byte from the peer.
func (f *ToxiproxyResetPeer) Inject(ctx context.Context, lab *harness.Lab, conn *harness.Conn) (harness.Heal, int64, error) {
	st, err := f.prepared(lab)
	if err != nil {
		return nil, 0, err
	}
	// The watcher's own traffic may set the toxic off before the call
	// returns: the instant is taken before it (see injectToxic).
	at := protocol.Now()
	if err := st.api.setToxicity(ctx, "reset_peer", f.Toxicity); err != nil {
		return nil, 0, err
	}
	if st.stream(f.Stream) == st.towardWatcher() {
		if err := peerSend(ctx, conn, 1); err != nil {
			return nil, 0, err
		}
	}
	return nil, at, nil
}

// Effect is an RST (late).
func (f *ToxiproxyResetPeer) Effect() harness.Effect { return harness.EffectRST }

// Expect: the RST arrives `timeout` after the byte.
func (f *ToxiproxyResetPeer) Expect(det harness.Detector) (harness.Prediction, report.Expectation) {
	return proxiedExpect(det, true, f.Timeout, []string{"ECONNRESET"}, "reset_peer resets the connection "+f.Timeout.String()+" after the peer's byte")
}
