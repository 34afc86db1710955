package detectors

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// KeepaliveTuned is SO_KEEPALIVE with per-socket TCP_KEEPIDLE, TCP_KEEPINTVL
// and TCP_KEEPCNT (the reference text's set_keepalive; Go's
// net.KeepAliveConfig), with the watcher blocked in read, which fails with
// ETIMEDOUT when the kernel gives up.
type KeepaliveTuned struct {
	Idle  time.Duration `param:"idle" default:"1s" min:"1s" max:"32767s" help:"idle time before the first probe (TCP_KEEPIDLE, whole seconds)"`
	Intvl time.Duration `param:"intvl" default:"1s" min:"1s" max:"32767s" help:"time between probes (TCP_KEEPINTVL, whole seconds)"`
	Cnt   int           `param:"cnt" default:"3" min:"1" max:"127" help:"unanswered probes before giving up (TCP_KEEPCNT)"`
}

func init() {
	harness.RegisterDetector("keepalive-tuned", "SO_KEEPALIVE with per-socket TCP_KEEPIDLE/INTVL/CNT, blocked in read", &KeepaliveTuned{})
}

// Validate refuses durations the socket options cannot hold: they are whole
// seconds.
func (d *KeepaliveTuned) Validate() error {
	for name, v := range map[string]time.Duration{"idle": d.Idle, "intvl": d.Intvl} {
		if v%time.Second != 0 {
			return fmt.Errorf("%s=%s is not a whole number of seconds, and the kernel counts keepalive in seconds", name, v)
		}
	}
	return nil
}

// Predict is tcprules.KeepaliveRange: [cnt·intvl, idle + cnt·intvl], the
// upper bound stretched by the timer wheel's 1/8.
func (d *KeepaliveTuned) Predict() harness.Prediction {
	return prediction(tcprules.KeepaliveRange(d.Idle, d.Intvl, d.Cnt), "ETIMEDOUT")
}

// Watch enables keepalive on the connection and reads until it fails.
func (d *KeepaliveTuned) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	err := w.Conns[0].SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: d.Idle, Interval: d.Intvl, Count: d.Cnt})
	if err != nil {
		w.Log("set keepalive: %v", err)
		return harness.Decide("error: set keepalive: " + err.Error())
	}
	return readUntilEnd(ctx, w.Conns[0], nil)
}

// MaxSendGap: with its peer silent, a probe goes every intvl once idle has
// passed since the last segment; the timer wheel may fire it late.
func (d *KeepaliveTuned) MaxSendGap() time.Duration {
	return tcprules.WheelLate(max(d.Idle, d.Intvl))
}

// PredictSample: keepalive from the connection's idle clock at the fault
// (tcprules.Keepalive; the retransmission timer when data was in flight),
// its first probe into a resetting path.
func (d *KeepaliveTuned) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	return keepaliveSample(st, e, d.Idle, d.Intvl, d.Cnt, 0)
}

// PredictResetAfter: the first keepalive probe at or after `after`, when
// the path resets from then on (tcprules.KeepaliveResetAfter).
func (d *KeepaliveTuned) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return tcprules.KeepaliveResetAfter(st, d.Idle, d.Intvl, d.Cnt, 0, after), true
}
