package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// ToxiproxyTimeout: Toxiproxy's timeout toxic drops every byte on the
// stream and, when timeout > 0, closes the watcher's side after timeout.
// With timeout=0 (the default) data stops silently and forever. The proxy's
// kernel still acknowledges what the watcher sends and answers its
// keepalive probes, so a kernel-level detector never decides; a heart-beat
// misses its answers and does.
type ToxiproxyTimeout struct {
	proxied
	Timeout  time.Duration `param:"timeout" default:"0s" min:"0s" help:"close the connection after this long; 0: never (Toxiproxy's timeout, whole ms)"`
	Stream   string        `param:"stream" optional:"" enum:"upstream|downstream" help:"Toxiproxy's stream (absent: the one toward the watcher)"`
	Toxicity float64       `param:"toxicity" default:"1" min:"0" max:"1" help:"probability that a connection is affected"`
}

func init() {
	harness.RegisterFault("toxiproxy-timeout", "Toxiproxy's timeout toxic: data stops; with timeout > 0 the proxy then closes", &ToxiproxyTimeout{})
}

// Inject adds the toxic.
func (f *ToxiproxyTimeout) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	_, at, err := f.injectToxic(ctx, lab, toxic{Name: "timeout", Type: "timeout", Toxicity: f.Toxicity,
		Attributes: map[string]any{"timeout": ms(f.Timeout)}}, f.Stream)
	return nil, at, err
}

// Effect: the application's bytes stop; the watcher's kernel hears its
// (proxy) peer as before.
func (f *ToxiproxyTimeout) Effect() harness.Effect { return harness.EffectSilent }

// Expect follows proxiedExpect: a kernel-level detector never decides
// unless the proxy closes.
func (f *ToxiproxyTimeout) Expect(det harness.Detector) (harness.Prediction, report.Expectation) {
	return proxiedExpect(det, f.Timeout > 0, f.Timeout, []string{"EOF", "ECONNRESET"}, "the timeout toxic drops the data toward the watcher")
}
