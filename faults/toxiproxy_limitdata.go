package faults

import (
	"context"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// ToxiproxyLimitData: Toxiproxy's limit_data toxic closes the connection
// once `bytes` more bytes have passed on its stream. Inject then has the
// peer send bytes+1 bytes (on the stream toward the watcher; on the other
// stream the watcher's own writes must reach the limit), so the watcher
// reads `bytes` bytes and then end of stream (a FIN, or an RST when the
// proxy still held unread bytes of the watcher's).
type ToxiproxyLimitData struct {
	proxied
	Bytes    int     `param:"bytes" default:"0" min:"0" help:"bytes let through before the close"`
	Stream   string  `param:"stream" optional:"" enum:"upstream|downstream" help:"Toxiproxy's stream (absent: the one toward the watcher)"`
	Toxicity float64 `param:"toxicity" default:"1" min:"0" max:"1" help:"probability that a connection is affected"`
}

func init() {
	harness.RegisterFault("toxiproxy-limit-data", "Toxiproxy's limit_data toxic: the proxy closes after `bytes` more bytes", &ToxiproxyLimitData{})
}

// Inject adds the toxic and sends the peer's bytes through it.
func (f *ToxiproxyLimitData) Inject(ctx context.Context, lab *harness.Lab, conn *harness.Conn) (harness.Heal, int64, error) {
	_, at, err := f.injectToxic(ctx, lab, toxic{Name: "limit_data", Type: "limit_data", Toxicity: f.Toxicity,
		Attributes: map[string]any{"bytes": f.Bytes}}, f.Stream)
	if err != nil {
		return nil, 0, err
	}
	if st := f.state(lab); st != nil && st.stream(f.Stream) == st.towardWatcher() {
		if err := peerSend(ctx, conn, f.Bytes+1); err != nil {
			return nil, 0, err
		}
	}
	return nil, at, nil
}

// Effect is a FIN, or an RST with unread data.
func (f *ToxiproxyLimitData) Effect() harness.Effect { return harness.EffectFINOrRST }

// Expect: the close follows the peer's bytes at once.
func (f *ToxiproxyLimitData) Expect(det harness.Detector) (harness.Prediction, report.Expectation) {
	return proxiedExpect(det, true, 0, []string{"EOF", "ECONNRESET"}, "limit_data closes once the peer's bytes pass the limit")
}
