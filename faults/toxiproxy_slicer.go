package faults

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
)

// ToxiproxySlicer: Toxiproxy's slicer toxic cuts every chunk on the stream
// into pieces of average_size ± size_variation bytes sent delay apart, for
// `for`: a disturbance the connection must survive.
type ToxiproxySlicer struct {
	proxied
	AverageSize   int           `param:"average_size" default:"1" min:"1" help:"average piece size in bytes"`
	SizeVariation int           `param:"size_variation" default:"0" min:"0" help:"± variation of the piece size in bytes"`
	Delay         time.Duration `param:"delay" default:"10ms" min:"0s" help:"time between pieces (Toxiproxy's delay, whole µs)"`
	For           time.Duration `param:"for" default:"2s" min:"1ms" help:"how long the toxic stays (the disturbance window)"`
	Stream        string        `param:"stream" optional:"" enum:"upstream|downstream" help:"Toxiproxy's stream (absent: the one toward the watcher)"`
	Toxicity      float64       `param:"toxicity" default:"1" min:"0" max:"1" help:"probability that a connection is affected"`
}

func init() {
	harness.RegisterFault("toxiproxy-slicer", "Toxiproxy's slicer toxic for `for` on the path through the router (average_size, size_variation, delay)", &ToxiproxySlicer{})
}

// Validate refuses a variation as large as the size, which Toxiproxy
// cannot draw from.
func (f *ToxiproxySlicer) Validate() error {
	if f.SizeVariation >= f.AverageSize && f.SizeVariation > 0 {
		return errSliceVariation
	}
	return nil
}

// Inject adds the toxic.
func (f *ToxiproxySlicer) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	return f.injectToxic(ctx, lab, toxic{Name: "slicer", Type: "slicer", Toxicity: f.Toxicity,
		Attributes: map[string]any{"average_size": f.AverageSize, "size_variation": f.SizeVariation, "delay": f.Delay.Microseconds()}}, f.Stream)
}

// Effect is a disturbance.
func (f *ToxiproxySlicer) Effect() harness.Effect { return harness.EffectTransient }

// Window is how long the toxic stays.
func (f *ToxiproxySlicer) Window() time.Duration { return f.For }

// Silence: a message is cut into pieces `delay` apart; one of
// maxMessageBytes takes at most that many pieces of average_size −
// size_variation bytes (at least 1).
func (f *ToxiproxySlicer) Silence() harness.Silence {
	piece := max(1, f.AverageSize-f.SizeVariation)
	return harness.Silence{Max: time.Duration((maxMessageBytes+piece-1)/piece) * f.Delay}
}
