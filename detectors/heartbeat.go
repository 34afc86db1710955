package detectors

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// HeartbeatInband pings on the data connection every `interval` (the echo
// peer answers each ping byte) and declares the peer dead when nothing at
// all has been received for misses·interval.
type HeartbeatInband struct {
	Interval time.Duration `param:"interval" default:"200ms" min:"1ms" help:"time between pings"`
	Misses   int           `param:"misses" default:"3" min:"1" help:"intervals without any byte received before dead"`
}

func init() {
	harness.RegisterDetector("heartbeat-inband", "ping/pong on the data connection; dead after misses·interval of silence", &HeartbeatInband{})
}

// Predict: the last pong arrives at most one interval (plus a round trip)
// before the death and at least at it, and death is declared misses·interval
// after the last byte received: [(M−1)·I, M·I] after the death, plus up to
// one round trip and the tick granularity.
func (d *HeartbeatInband) Predict() harness.Prediction {
	return heartbeatPrediction(d.Interval, d.Misses)
}

func heartbeatPrediction(interval time.Duration, misses int) harness.Prediction {
	return harness.Prediction{
		Lo: time.Duration(misses-1) * interval, Hi: time.Duration(misses)*interval + 20*time.Millisecond,
		Reasons: []string{"heartbeat"},
		Rule:    "deadline = last byte received + M·I, and the last pong came within one interval before the death: [(M−1)·I, M·I] (+20 ms for round trip and timer slack)",
	}
}

// Watch pings and reads on the data connection.
func (d *HeartbeatInband) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	return heartbeat(ctx, w.Conns[0], d.Interval, d.Misses)
}

// heartbeat runs the ping/pong detector on one connection.
func heartbeat(ctx context.Context, c *net.TCPConn, interval time.Duration, misses int) harness.Decision {
	hb := newHeartbeatClock(time.Duration(misses)*interval, harness.Now())
	return decideFirst(ctx,
		func(ctx context.Context) harness.Decision {
			return readUntilEnd(ctx, c, func([]byte) { hb.heard(harness.Now()) })
		},
		func(ctx context.Context) harness.Decision {
			return pingAndJudge(ctx, c, interval, 'p', func(now int64) (string, time.Duration) {
				if left := hb.timeLeft(now); left > 0 {
					return "", left
				}
				return "heartbeat", 0
			})
		},
	)
}

// pingAndJudge writes the ping byte every interval and asks judge, at the
// instants it names, whether the peer is dead: judge returns a reason, or
// how long to wait before asking again. A failed write is a decision too.
func pingAndJudge(ctx context.Context, c *net.TCPConn, interval time.Duration, ping byte, judge func(now int64) (reason string, wait time.Duration)) harness.Decision {
	t := time.NewTicker(interval)
	defer t.Stop()
	_, wait := judge(harness.Now())
	check := time.NewTimer(wait)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return harness.Decision{}
		case <-t.C:
			if _, err := c.Write([]byte{ping}); err != nil {
				if ctx.Err() != nil {
					return harness.Decision{}
				}
				return writeErr(err)
			}
		case <-check.C:
			now := harness.Now()
			reason, wait := judge(now)
			if reason != "" {
				return harness.Decision{Reason: reason, AtNs: now}
			}
			check.Reset(wait)
		}
	}
}

// heartbeatClock is the heart-beat's pure deadline logic, a function of the
// instants it is given (CLOCK_MONOTONIC nanoseconds), unit-tested without
// sleeping.
type heartbeatClock struct {
	mu        sync.Mutex
	tolerance time.Duration
	last      int64
}

func newHeartbeatClock(tolerance time.Duration, start int64) *heartbeatClock {
	return &heartbeatClock{tolerance: tolerance, last: start}
}

// heard records a byte received at instant now.
func (h *heartbeatClock) heard(now int64) {
	h.mu.Lock()
	if now > h.last {
		h.last = now
	}
	h.mu.Unlock()
}

// timeLeft returns how long until the peer is declared dead (≤ 0: now).
func (h *heartbeatClock) timeLeft(now int64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.last + int64(h.tolerance) - now)
}

// WriteEvery is its ping's interval.
func (d *HeartbeatInband) WriteEvery() time.Duration { return d.Interval }

// PredictSample: the heart-beat's deadline runs from the last byte
// received on the watched connection, which the state dates
// (tcpi_last_data_recv): dead misses·interval after it; its next ping
// meets a resetting path.
func (d *HeartbeatInband) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	if f, ok := closeSample(e); ok {
		return f, true
	}
	switch e {
	case harness.EffectSilent:
		return d.deadline(st), true
	case harness.EffectResetOnWrite:
		return d.PredictResetAfter(st, 0)
	}
	return tcprules.Forecast{}, false
}

// deadline is its clock's verdict on a silent peer.
func (d *HeartbeatInband) deadline(st tcprules.ConnState) tcprules.Forecast {
	tolerance := time.Duration(d.Misses) * d.Interval
	return tcprules.Clock(st.SinceDataRecvS, tolerance, fmt.Sprintf("heart-beat deadline: the last byte received (tcpi_last_data_recv, %.3f s before the fault) + misses·interval = %v", st.SinceDataRecvS, tolerance))
}

// PredictResetAfter: its first ping (or resend) at or after `after` meets
// the reset, unless its deadline comes first (the pings before are lost).
func (d *HeartbeatInband) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return earlier(d.deadline(st), tcprules.WriterResetAfter(st, d.Interval, tcprules.DefaultRetries2, tcprules.RTOMax, 0, after)), true
}
