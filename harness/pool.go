package harness

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/halfopen/halfopen/report"
)

// A sample spends nearly all its life asleep, so many labs run at once;
// how many is not a constant but a measurement. The harness's own timing
// error must stay below 1 ms at p99 under the full load, and on a kernel
// without full preemption (CONFIG_PREEMPT_NONE, this machine's) what raises
// it is the kernel work of building and tearing down labs, which delays
// the wake-up of the agents that stamp decisions. So a latency probe (a
// watcher agent told to decide at known instants, all run long, in a lab
// of its own) measures the error continuously, and the pool grows while
// the probe's p99 stays under poolLowWater and jobs are waiting, and
// shrinks by a quarter when it passes poolHighWater (additive increase,
// multiplicative decrease).
const (
	poolLowWater  = 0.4 // ms: below this p99, the pool may grow
	poolHighWater = 0.7 // ms: above it, the pool shrinks
	poolStep      = 2   // labs added at a time
	// poolTick is how often the pool is adjusted; probeEvery how often the
	// probe schedules a decision; probeWindow how many of its errors the
	// p99 is taken over (the last 10 s).
	poolTick    = 2 * time.Second
	probeEvery  = 50 * time.Millisecond
	probeWindow = 200
)

// nextPoolLimit is the pool's next limit, from the probe's p99 (ms) over
// its window and whether jobs waited for a lab during the last tick.
func nextPoolLimit(limit, lo, hi int, p99 float64, waited bool) int {
	switch {
	case p99 > poolHighWater:
		return max(lo, limit*3/4)
	case p99 < poolLowWater && waited:
		return min(hi, limit+poolStep)
	}
	return limit
}

// pool bounds the labs at once by a limit that may change while it runs.
type pool struct {
	mu      sync.Mutex
	cond    *sync.Cond
	limit   int
	lo, hi  int
	running int
	waited  bool // a job waited for a lab since the last adjustment
	highest int  // the largest limit used
}

func newPool(start, lo, hi int) *pool {
	p := &pool{limit: start, lo: lo, hi: hi, highest: start}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// acquire waits for a free lab slot, or for ctx to end (false).
func (p *pool) acquire(ctx context.Context) bool {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.running >= p.limit && ctx.Err() == nil {
		p.waited = true
		p.cond.Wait()
	}
	if ctx.Err() != nil {
		return false
	}
	p.running++
	return true
}

func (p *pool) release() {
	p.mu.Lock()
	p.running--
	p.cond.Broadcast()
	p.mu.Unlock()
}

// adjust sets the next limit from the probe's p99.
func (p *pool) adjust(p99 float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit = nextPoolLimit(p.limit, p.lo, p.hi, p99, p.waited)
	p.waited = false
	p.highest = max(p.highest, p.limit)
	p.cond.Broadcast()
}

func (p *pool) maxUsed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.highest
}

// poolBounds are the adaptive pool's start and bounds on this machine.
func poolBounds() (start, lo, hi int) {
	n := runtime.NumCPU()
	return 4 * n, 2 * n, 32 * n
}

// latencyProbe runs in a lab of its own for the whole run: every
// probeEvery it tells its watcher agent to decide 20 ms ahead and records
// the error of the instant it stamps, as calibration and for the pool.
type latencyProbe struct {
	mu     sync.Mutex
	recent []float64 // the last probeWindow errors, ms
}

func (lp *latencyProbe) p99() (float64, bool) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if len(lp.recent) < probeWindow/4 {
		return 0, false
	}
	q := report.QuantilesOf(lp.recent)
	return q.P99, true
}

func (lp *latencyProbe) add(ms float64) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.recent = append(lp.recent, ms)
	if len(lp.recent) > probeWindow {
		lp.recent = lp.recent[len(lp.recent)-probeWindow:]
	}
}

// run measures until ctx ends; its errors also go to the calibration.
func (lp *latencyProbe) run(ctx context.Context, m *Matrix) error {
	c, err := Resolve(CellConfig{Detector: "read-eof", Fault: calibrationFault, Side: SideClient})
	if err != nil {
		return err
	}
	lab, err := m.run.NewLab(ctx)
	if err != nil {
		return err
	}
	defer lab.Close()
	s, err := OpenSession(ctx, lab, c, nil, SessionOptions{Exe: m.opt.Exe})
	if err != nil {
		return err
	}
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		at := Now() + int64(20*time.Millisecond)
		ev, err := s.Watcher.Request(ctx, Command{Cmd: CmdDecideAt, AtNs: at, Seq: seq}, EventDecided)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if ev.Msg == "late" {
			continue
		}
		ms := float64(ev.TNs-at) / 1e6
		lp.add(ms)
		m.calib.add(probeScheduled, ms)
	}
}
