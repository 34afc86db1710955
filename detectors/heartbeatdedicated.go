package detectors

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// HeartbeatDedicated is heartbeat-inband's ping/pong on a second connection
// between the same hosts, as the reference text's last article allows
// ("create a dedicated heart-beat connection n"): it watches the hosts and
// the path, not the data connection, which it only reads for a FIN or an
// RST. A middlebox that forgets only the data flow leaves its heart-beats
// flowing: it never notices.
type HeartbeatDedicated struct {
	Interval time.Duration `param:"interval" default:"200ms" min:"1ms" help:"time between pings"`
	Misses   int           `param:"misses" default:"3" min:"1" help:"intervals without any byte received before dead"`
}

func init() {
	harness.RegisterDetector("heartbeat-dedicated", "ping/pong on a second, dedicated connection; dead after misses·interval of silence", &HeartbeatDedicated{})
}

// Conns asks for the data connection and the heart-beat connection.
func (d *HeartbeatDedicated) Conns() int { return 2 }

// Predict: as heartbeat-inband, [(M−1)·I, M·I] after the death of the path.
func (d *HeartbeatDedicated) Predict() harness.Prediction {
	p := heartbeatPrediction(d.Interval, d.Misses)
	p.Rule += "; on the dedicated connection, so only when the hosts or the whole path die"
	return p
}

// Watch pings on Conns[1] and reads Conns[0] for its end.
func (d *HeartbeatDedicated) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	return decideFirst(ctx,
		func(ctx context.Context) harness.Decision { return readUntilEnd(ctx, w.Conns[0], nil) },
		func(ctx context.Context) harness.Decision { return heartbeat(ctx, w.Conns[1], d.Interval, d.Misses) },
	)
}

// WriteEvery is its ping's interval, on the dedicated connection.
func (d *HeartbeatDedicated) WriteEvery() time.Duration { return d.Interval }

// PredictSample: only a FIN or an RST on the data connection, which its
// blocked read sees at once. Its heart-beat clock runs on the second
// connection: the last pong there is not the watched connection's last
// data received, and the state at the fault is read for the watched
// connection only; nor does the Effect say whether the fault silences or
// resets the heart-beat connection too (a middlebox that forgets the data
// flow leaves it talking). So no per-sample rule for a silent peer or a
// resetting path: the cell's range stands alone.
func (d *HeartbeatDedicated) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	return closeSample(e)
}
