package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
)

// ToxiproxyBandwidth: Toxiproxy's bandwidth toxic limits the stream to
// `rate` KB/s for `for`: a bandwidth squeeze, a disturbance the connection
// must survive.
type ToxiproxyBandwidth struct {
	proxied
	Rate     int           `param:"rate" default:"1" min:"1" help:"bandwidth limit in KB/s (Toxiproxy's rate)"`
	For      time.Duration `param:"for" default:"2s" min:"1ms" help:"how long the toxic stays (the disturbance window)"`
	Stream   string        `param:"stream" optional:"" enum:"upstream|downstream" help:"Toxiproxy's stream (absent: the one toward the watcher)"`
	Toxicity float64       `param:"toxicity" default:"1" min:"0" max:"1" help:"probability that a connection is affected"`
}

func init() {
	harness.RegisterFault("toxiproxy-bandwidth", "Toxiproxy's bandwidth toxic for `for` on the path through the router (rate)", &ToxiproxyBandwidth{})
}

// Inject adds the toxic.
func (f *ToxiproxyBandwidth) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	return f.injectToxic(ctx, lab, toxic{Name: "bandwidth", Type: "bandwidth", Toxicity: f.Toxicity,
		Attributes: map[string]any{"rate": f.Rate}}, f.Stream)
}

// Effect is a disturbance.
func (f *ToxiproxyBandwidth) Effect() harness.Effect { return harness.EffectTransient }

// Window is how long the toxic stays.
func (f *ToxiproxyBandwidth) Window() time.Duration { return f.For }

// Silence: a message of maxMessageBytes takes its size over the rate to
// pass; none is lost.
func (f *ToxiproxyBandwidth) Silence() harness.Silence {
	return harness.Silence{Max: time.Duration(maxMessageBytes) * time.Second / time.Duration(f.Rate*1000)}
}

// maxMessageBytes bounds what a watcher and its peer send each other at
// once while a disturbance runs: heart-beats and probes of a few bytes, and
// the peer's chatter of at most 231 bytes before it (harness warm-up).
const maxMessageBytes = 256
