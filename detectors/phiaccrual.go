package detectors

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// PhiAccrual sends a heart-beat ping every `interval` on the data
// connection (the echo peer answers each) and judges the answers with the
// φ accrual failure detector (Hayashibara, Défago, Yared, Katayama, "The φ
// Accrual Failure Detector", SRDS 2004): with the inter-arrival times of the
// last `window` pongs, of mean μ and standard deviation σ,
//
//	φ(t) = −log10(1 − F(t − t_last)),  F the CDF of N(μ, σ²),
//
// and the peer is suspected once φ >= threshold. As Akka's implementation
// does, the window starts with two seed intervals μ ± μ/4 (so σ starts at
// interval/4), and σ never goes below interval/10, so that a very regular
// history does not make the detector hair-triggered.
type PhiAccrual struct {
	Interval  time.Duration `param:"interval" default:"200ms" min:"1ms" help:"time between heart-beat pings"`
	Threshold float64       `param:"threshold" default:"8" min:"0.5" max:"300" help:"φ at which the peer is suspected (φ=8: one mistake in 10^8 under the model)"`
	Window    int           `param:"window" default:"100" min:"2" max:"100000" help:"inter-arrival times kept"`
}

func init() {
	harness.RegisterDetector("phi-accrual", "heart-beats judged by the φ accrual failure detector (Hayashibara et al. 2004)", &PhiAccrual{})
}

// pongByte is the ping the phi-accrual watcher sends and counts back; the
// lab's chatter is lower-case letters, so it never looks like a pong.
const pongByte = 'P'

// Predict bounds what the history can make of it: σ' lies between its floor
// interval/10 and the seeds' interval/4 (a steady history only narrows it),
// the mean is the interval, and the last pong came within one interval
// before the death, so the suspicion comes after
// [z·σ_min, interval + z·σ_max] (+20 ms), z the normal quantile of φ.
func (d *PhiAccrual) Predict() harness.Prediction {
	z := phiQuantile(d.Threshold)
	lo := time.Duration(z * float64(d.Interval) / 10)
	hi := d.Interval + time.Duration(z*float64(d.Interval)/4) + 20*time.Millisecond
	return harness.Prediction{
		Lo: lo, Hi: hi, Reasons: []string{"phi"},
		Rule: fmt.Sprintf("φ(Δ) = −log10(1−F(Δ)) crosses %g at Δ = μ + %.3f·σ (Hayashibara et al. 2004); μ ≈ interval, σ in [interval/10, interval/4] by its floor and seeds, the last pong within one interval before the death: [z·σ_min, interval + z·σ_max] (+20 ms)", d.Threshold, z),
	}
}

// Watch pings, counts pongs, and suspects when φ reaches the threshold.
func (d *PhiAccrual) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	c := w.Conns[0]
	hist := newPhiHistory(d.Window, d.Interval, harness.Now())
	return decideFirst(ctx,
		func(ctx context.Context) harness.Decision {
			return readUntilEnd(ctx, c, func(b []byte) {
				now := harness.Now()
				for range bytes.Count(b, []byte{pongByte}) {
					hist.heard(now)
				}
			})
		},
		func(ctx context.Context) harness.Decision {
			return pingAndJudge(ctx, c, d.Interval, pongByte, func(now int64) (string, time.Duration) {
				if hist.phi(now) >= d.Threshold {
					w.Log("phi %.2f >= %g after %.3f s without a pong (mean %.1f ms, sd %.1f ms)", hist.phi(now), d.Threshold, hist.sinceLast(now).Seconds(), hist.meanMs(), hist.stdMs())
					return "phi", 0
				}
				return "", max(time.Duration(hist.deadline(d.Threshold)-now), time.Millisecond)
			})
		},
	)
}

// phi is φ for a heart-beat Δ after the last one, given the mean and
// standard deviation of the inter-arrival times (same unit as Δ):
// −log10(1 − F(Δ)) with 1 − F(Δ) = ½·erfc((Δ−μ)/(σ√2)), written with erfc
// so that it stays exact far in the tail.
func phi(delta, mean, std float64) float64 {
	return -math.Log10(0.5 * math.Erfc((delta-mean)/(std*math.Sqrt2)))
}

// phiQuantile is z such that φ(μ + z·σ) = threshold, found by bisection.
func phiQuantile(threshold float64) float64 {
	lo, hi := -40.0, 40.0
	for range 200 {
		mid := (lo + hi) / 2
		if phi(mid, 0, 1) < threshold {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// phiHistory is the detector's state, a pure function of the instants
// (CLOCK_MONOTONIC nanoseconds) it is given, unit-tested without sleeping.
type phiHistory struct {
	mu        sync.Mutex
	window    int
	intervals []float64 // ns, oldest first
	last      int64
	minStd    float64
}

// newPhiHistory seeds the window with interval ± interval/4 and counts
// from start.
func newPhiHistory(window int, interval time.Duration, start int64) *phiHistory {
	i := float64(interval)
	return &phiHistory{window: window, intervals: []float64{i - i/4, i + i/4}, last: start, minStd: i / 10}
}

// heard records a heart-beat arriving at now.
func (h *phiHistory) heard(now int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now <= h.last {
		return
	}
	h.intervals = append(h.intervals, float64(now-h.last))
	if len(h.intervals) > h.window {
		h.intervals = h.intervals[len(h.intervals)-h.window:]
	}
	h.last = now
}

// stats returns the mean and the floored standard deviation, in ns.
func (h *phiHistory) stats() (mean, std float64) {
	for _, x := range h.intervals {
		mean += x
	}
	mean /= float64(len(h.intervals))
	for _, x := range h.intervals {
		std += (x - mean) * (x - mean)
	}
	std = math.Sqrt(std / float64(len(h.intervals)))
	return mean, max(std, h.minStd)
}

// phi returns φ at now.
func (h *phiHistory) phi(now int64) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	mean, std := h.stats()
	return phi(float64(now-h.last), mean, std)
}

// deadline returns the instant φ reaches threshold if no heart-beat comes.
func (h *phiHistory) deadline(threshold float64) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	mean, std := h.stats()
	return h.last + int64(math.Ceil(mean+phiQuantile(threshold)*std))
}

func (h *phiHistory) sinceLast(now int64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(now - h.last)
}

func (h *phiHistory) meanMs() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, _ := h.stats()
	return m / 1e6
}

func (h *phiHistory) stdMs() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, s := h.stats()
	return s / 1e6
}

// WriteEvery is its ping's interval.
func (d *PhiAccrual) WriteEvery() time.Duration { return d.Interval }

// PredictSample: a FIN or an RST at once; its next ping into a resetting
// path (pings are all it writes). Not for a silent peer: the suspicion
// comes at last pong + μ + z·σ, and σ is not a function of the last
// heart-beat alone: the two seeds (interval ± interval/4) dominate it
// until about a dozen pongs have pushed it down to its floor interval/10
// (between them 168 ms apart at 200 ms and φ 8), and how many pongs the
// window holds (the connection's age) is not in the state. Nor does the
// state date the last pong: other bytes (the warm-up's chatter) count as
// data received too.
func (d *PhiAccrual) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	if f, ok := closeSample(e); ok {
		return f, true
	}
	if e == harness.EffectResetOnWrite {
		// Its next ping goes within an interval of the last; φ crosses its
		// threshold no sooner than μ + z·σ_min after the last pong.
		return tcprules.WriterResetAfter(st, d.Interval, tcprules.DefaultRetries2, tcprules.RTOMax, 0, 0), true
	}
	return tcprules.Forecast{}, false
}
