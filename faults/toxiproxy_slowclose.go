package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/report"
)

// ToxiproxySlowClose: Toxiproxy's slow_close toxic holds back the end of
// the stream for `delay`; the injection then has the peer close its end
// (shutdown(SHUT_WR), a FIN). The proxy reads the FIN at once, and closes
// the watcher's side `delay` later: the watcher's read returns 0 after
// delay. A heart-beat may decide first, since the peer stops answering
// when it closes.
type ToxiproxySlowClose struct {
	proxied
	Delay    time.Duration `param:"delay" default:"1s" min:"0s" help:"how long the close is held back (Toxiproxy's delay, whole ms)"`
	Stream   string        `param:"stream" optional:"" enum:"upstream|downstream" help:"Toxiproxy's stream (absent: the one toward the watcher)"`
	Toxicity float64       `param:"toxicity" default:"1" min:"0" max:"1" help:"probability that a connection is affected"`
}

func init() {
	harness.RegisterFault("toxiproxy-slow-close", "Toxiproxy's slow_close toxic, then the peer closes: the FIN reaches the watcher `delay` late", &ToxiproxySlowClose{})
}

// Inject adds the toxic, then closes the peer's end; the instant is the
// peer's close.
func (f *ToxiproxySlowClose) Inject(ctx context.Context, lab *harness.Lab, conn *harness.Conn) (harness.Heal, int64, error) {
	if _, _, err := f.injectToxic(ctx, lab, toxic{Name: "slow_close", Type: "slow_close", Toxicity: f.Toxicity,
		Attributes: map[string]any{"delay": ms(f.Delay)}}, f.Stream); err != nil {
		return nil, 0, err
	}
	at, err := peerCommand(ctx, conn, agentcmd.CmdClose)
	return nil, at, err
}

// Effect is a FIN (late).
func (f *ToxiproxySlowClose) Effect() harness.Effect { return harness.EffectFIN }

// Expect: the FIN arrives `delay` after the peer's close.
func (f *ToxiproxySlowClose) Expect(det harness.Detector) (harness.Prediction, report.Expectation) {
	return proxiedExpect(det, true, f.Delay, []string{"EOF", "ECONNRESET"}, "slow_close holds the peer's FIN for "+f.Delay.String())
}
