package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
)

// ToxiproxyLatency: Toxiproxy's latency toxic delays every chunk on the
// stream by latency ± jitter for `for`, then it is removed: a latency spike,
// a disturbance the connection must survive. Only data is delayed: the
// proxy's kernel answers keepalive probes and acknowledges bytes at once.
type ToxiproxyLatency struct {
	proxied
	Latency  time.Duration `param:"latency" default:"250ms" min:"0s" help:"added delay (Toxiproxy's latency, whole ms)"`
	Jitter   time.Duration `param:"jitter" default:"0s" min:"0s" help:"random ± spread of the delay (Toxiproxy's jitter, whole ms)"`
	For      time.Duration `param:"for" default:"2s" min:"1ms" help:"how long the toxic stays (the disturbance window)"`
	Stream   string        `param:"stream" optional:"" enum:"upstream|downstream" help:"Toxiproxy's stream (absent: the one toward the watcher)"`
	Toxicity float64       `param:"toxicity" default:"1" min:"0" max:"1" help:"probability that a connection is affected"`
}

func init() {
	harness.RegisterFault("toxiproxy-latency", "Toxiproxy's latency toxic for `for` on the path through the router (latency, jitter)", &ToxiproxyLatency{})
}

// Inject adds the toxic.
func (f *ToxiproxyLatency) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	return f.injectToxic(ctx, lab, toxic{Name: "latency", Type: "latency", Toxicity: f.Toxicity,
		Attributes: map[string]any{"latency": ms(f.Latency), "jitter": ms(f.Jitter)}}, f.Stream)
}

// Effect is a disturbance.
func (f *ToxiproxyLatency) Effect() harness.Effect { return harness.EffectTransient }

// Window is how long the toxic stays.
func (f *ToxiproxyLatency) Window() time.Duration { return f.For }

// Silence: every byte toward the watcher arrives up to latency + jitter
// late, none is lost.
func (f *ToxiproxyLatency) Silence() harness.Silence {
	return harness.Silence{Max: f.Latency + f.Jitter}
}
