package harness

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// A sample spends nearly all its life asleep, so many labs run at once;
// how many is not a constant but a measurement. The harness's own timing
// error (from a kernel event to an agent's stamp of it: a wake-up) must
// stay below 1 ms at p99 under the full load, and what raises it under
// load is the CPU time of building and tearing down labs and of starting
// agents, which on a kernel without full preemption (CONFIG_PREEMPT_NONE,
// this machine's) delays the wake-up of the agents that stamp. So a latency
// probe (datagrams between two agents, all run long, in a lab of its own)
// measures the error continuously, and the pool grows while the probe's
// p99 stays under poolLowWater and jobs are waiting, and shrinks by a
// quarter when it passes poolHighWater (additive increase, multiplicative
// decrease).
//
// The probe's agents run at real-time priority, and the probe alone does
// not see what load does to the rest: in one run that let the pool reach
// 64 labs on 2 CPUs, 21 of the matrix's 720 cells failed while the probe's
// p99 stayed at 0.38 ms (Python watchers still running 2 s after SIGTERM,
// Toxiproxy's API not answering, a heart-beat watcher whose capture shows
// no ping for 3.9 s). So the pool also grows only while the CPUs were busy
// less than poolBusyLow over the last tick, and shrinks when they were
// busy more than poolBusyHigh (busy: everything but idle and iowait in
// /proc/stat, steal included: time the hypervisor took is not ours).
const (
	poolLowWater  = 0.4  // ms: below this p99, the pool may grow
	poolHighWater = 0.7  // ms: above it, the pool shrinks
	poolBusyLow   = 0.55 // CPU busy fraction below which the pool may grow
	poolBusyHigh  = 0.8  // and above which it shrinks
	poolStep      = 2    // labs added at a time
	// poolTick is how often the pool is adjusted; probeEvery how often the
	// probe sends a datagram; probeWindow how many of its errors the p99 is
	// taken over (the last 10 s).
	poolTick    = 2 * time.Second
	probeEvery  = 50 * time.Millisecond
	probeWindow = 200
)

// nextPoolLimit is the pool's next limit, from the probe's p99 (ms) over
// its window, the CPUs' busy fraction over the last tick, and whether jobs
// waited for a lab during it.
func nextPoolLimit(limit, lo, hi int, p99, busy float64, waited bool) int {
	switch {
	case p99 > poolHighWater || busy > poolBusyHigh:
		return max(lo, limit*3/4)
	case p99 < poolLowWater && busy < poolBusyLow && waited:
		return min(hi, limit+poolStep)
	}
	return limit
}

// cpuTimes are the machine's busy and total CPU time (/proc/stat's first
// line, in clock ticks).
type cpuTimes struct{ busy, total uint64 }

// readCPUTimes reads /proc/stat; busy is all but idle and iowait.
func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseCPUTimes(string(b))
}

// parseCPUTimes reads the cpu line that begins /proc/stat: user nice
// system idle iowait irq softirq steal (guest time is in user time).
func parseCPUTimes(stat string) (cpuTimes, error) {
	line, _, _ := strings.Cut(stat, "\n")
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat begins %q, not with the cpu line", line)
	}
	var t cpuTimes
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat cpu field %d is %q", i+1, f)
		}
		if i >= 8 {
			break // guest time is already in user time
		}
		t.total += v
		if i != 3 && i != 4 {
			t.busy += v
		}
	}
	return t, nil
}

// busySince is the busy fraction of the CPUs between then and t.
func (t cpuTimes) busySince(then cpuTimes) float64 {
	if t.total <= then.total {
		return 0
	}
	return float64(t.busy-then.busy) / float64(t.total-then.total)
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

// adjust sets the next limit from the probe's p99 and the CPUs' busy
// fraction.
func (p *pool) adjust(p99, busy float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit = nextPoolLimit(p.limit, p.lo, p.hi, p99, busy, p.waited)
	p.waited = false
	p.highest = max(p.highest, p.limit)
	p.cond.Broadcast()
}

// current is the limit now.
func (p *pool) current() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit
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
// probeEvery its peer agent stamps and sends a datagram that its watcher
// agent stamps on reading it (the harness's error, and the pool's measure),
// and its watcher is told to decide 20 ms ahead (the machine's timer
// lateness, reported beside it); see calibrate.go.
type latencyProbe struct {
	mu     sync.Mutex
	recent []float64 // the last probeWindow datagram errors, ms
}

// probeDatagramPort is the watcher's UDP port for probe datagrams.
const probeDatagramPort = 7911

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
	c, err := Resolve(CellConfig{Detector: "read-eof", Fault: calibrationFault, Side: protocol.SideClient})
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
	addr := netip.AddrPortFrom(WatcherAddr, probeDatagramPort).String()
	if _, err := s.Watcher.Request(ctx, Command{Cmd: CmdListenDatagrams, Addr: addr}, EventPort); err != nil {
		return err
	}
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ms, ok, err := probeDatagramOnce(ctx, s, addr, seq)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if ok {
			lp.add(ms)
			m.calib.add(probeDatagram, ms)
		}
		at := protocol.Now() + int64(20*time.Millisecond)
		ev, err := s.Watcher.Request(ctx, Command{Cmd: CmdDecideAt, AtNs: at, Seq: seq}, EventDecided)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if ev.Msg != "late" {
			m.calib.add(probeScheduled, float64(ev.TNs-at)/1e6)
		}
	}
}

// probeDatagramOnce has the peer send datagram seq and returns the error of
// the watcher's stamp on it, in ms; ok is false for a datagram that did not
// arrive within RequestTimeout (UDP may drop one; the next is measured).
func probeDatagramOnce(ctx context.Context, s *Session, addr string, seq int) (ms float64, ok bool, err error) {
	sent, err := s.Peer.Request(ctx, Command{Cmd: CmdSendDatagram, Addr: addr, Seq: seq}, EventSent)
	if err != nil {
		return 0, false, err
	}
	wctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	for {
		got, err := s.Watcher.WaitEvent(wctx, EventReceived)
		if err != nil {
			if ctx.Err() == nil && wctx.Err() != nil {
				return 0, false, nil
			}
			return 0, false, err
		}
		if got.Seq == seq {
			return float64(got.TNs-sent.TNs) / 1e6, true, nil
		}
	}
}
