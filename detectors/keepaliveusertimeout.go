package detectors

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// KeepaliveUserTimeout sets per-socket keepalive (TCP_KEEPIDLE/INTVL/CNT)
// and TCP_USER_TIMEOUT together, and blocks in read. On Linux the user
// timeout takes over from the count: tcp_keepalive_timer()
// (net/ipv4/tcp_timer.c) gives up, when TCP_USER_TIMEOUT is set, at the
// first keepalive timer expiry where the time since the last segment
// received is >= the user timeout and at least one probe is out, and
// ignores TCP_KEEPCNT entirely; so the user timeout can cut keepalive short
// or make it outlast cnt probes (Cloudflare, "When TCP sockets refuse to
// die", 2019).
type KeepaliveUserTimeout struct {
	Idle    time.Duration `param:"idle" default:"1s" min:"1s" max:"32767s" help:"TCP_KEEPIDLE (whole seconds)"`
	Intvl   time.Duration `param:"intvl" default:"1s" min:"1s" max:"32767s" help:"TCP_KEEPINTVL (whole seconds)"`
	Cnt     int           `param:"cnt" default:"9" min:"1" max:"127" help:"TCP_KEEPCNT (ignored by the kernel once the user timeout is set)"`
	Timeout time.Duration `param:"timeout" default:"3s" min:"1ms" max:"596h" help:"TCP_USER_TIMEOUT"`
}

func init() {
	harness.RegisterDetector("keepalive-user-timeout", "keepalive (idle/intvl/cnt) with TCP_USER_TIMEOUT: the user timeout, checked at probe timers, overrides cnt", &KeepaliveUserTimeout{})
}

// Validate refuses durations the keepalive options cannot hold.
func (d *KeepaliveUserTimeout) Validate() error {
	for name, v := range map[string]time.Duration{"idle": d.Idle, "intvl": d.Intvl} {
		if v%time.Second != 0 {
			return fmt.Errorf("%s=%s is not a whole number of seconds, and the kernel counts keepalive in seconds", name, v)
		}
	}
	return nil
}

// Predict is tcprules.KeepaliveUserTimeoutRange: the timer fires at idle,
// idle+intvl, ... after the last segment received, and the first firing
// with one probe out and the elapsed time >= timeout gives up:
// [k·intvl, idle + k·intvl], stretched by the timer wheel's 1/8.
func (d *KeepaliveUserTimeout) Predict() harness.Prediction {
	p := prediction(tcprules.KeepaliveUserTimeoutRange(d.Idle, d.Intvl, d.Timeout), "ETIMEDOUT")
	p.Rule += fmt.Sprintf(" (cnt=%d alone would give %d)", d.Cnt, d.Cnt)
	return p
}

// Watch sets both options and reads until the read fails.
func (d *KeepaliveUserTimeout) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	c := w.Conns[0]
	if err := c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: d.Idle, Interval: d.Intvl, Count: d.Cnt}); err != nil {
		return harness.Decide("error: set keepalive: " + err.Error())
	}
	if err := setUserTimeout(c, d.Timeout); err != nil {
		return harness.Decide("error: " + err.Error())
	}
	return readUntilEnd(ctx, c, nil)
}

// MaxSendGap: with its peer silent, a probe goes every intvl once idle has
// passed since the last segment; the timer wheel may fire it late.
func (d *KeepaliveUserTimeout) MaxSendGap() time.Duration {
	return tcprules.WheelLate(max(d.Idle, d.Intvl))
}

// PredictSample: keepalive with the user timeout in place of cnt
// (tcprules.Keepalive); with data in flight, the user timeout counted from
// the first RTO resend.
func (d *KeepaliveUserTimeout) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	return keepaliveSample(st, e, d.Idle, d.Intvl, d.Cnt, d.Timeout)
}

// PredictResetAfter: the first keepalive probe at or after `after`, when
// the path resets from then on (tcprules.KeepaliveResetAfter).
func (d *KeepaliveUserTimeout) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return tcprules.KeepaliveResetAfter(st, d.Idle, d.Intvl, d.Cnt, d.Timeout, after), true
}
