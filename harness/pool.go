package harness

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// A sample spends nearly all its life asleep, so many labs run at once;
// how many is not a constant but a measurement. The harness's own timing
// error (from a kernel event to an agent's stamp of it: a wake-up) must
// stay small under the full load, and what raises it under load is the CPU
// time of building and tearing down labs and of starting agents, which on
// a kernel without full preemption (CONFIG_PREEMPT_NONE, this machine's)
// delays the wake-up of the agents that stamp. So a latency probe
// (datagrams between two agents, all run long, in a lab of its own)
// measures the error continuously, and the pool is sized against the
// machine's own unloaded baseline (baseline.go: the same probe with no
// other lab, measured before the first sample): it grows while the load's
// increase of the probe's p99 over the baseline's p99 stays within
// poolGrowMargin and jobs are waiting, and shrinks by a quarter when the
// increase passes poolShrinkMargin (additive increase, multiplicative
// decrease). The margins follow from what the run must hold: an increase
// of at most 0.3 ms at p99 over the whole run (poolShrinkMargin), and the
// p99 over the probe's window of 200 datagrams is its third largest
// error, which moved by 0.08 ms between the windows of one unloaded
// baseline on machine B (0.15–0.23 ms; BenchmarkProbeBaseline's window-p99
// min and max), so growing stops at half the limit (poolGrowMargin) and
// leaves the other half to that noise and to the labs one tick of growth
// adds before the next measurement.
//
// The harness's absolute p99 stays gated at poolAbsoluteMs where the
// baseline leaves room for it (baseline p99 + poolGrowMargin within it):
// the pool also shrinks above it, and grows only below it. Where the
// machine's baseline alone is at or near it, the absolute mark would hold
// the pool at its floor whatever the load, as it did on a VM whose idle
// p99 sits at 1 ms; there the increase is what is gated, and the report
// says so (report.Environment.ProbeNote).
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
	poolShrinkMargin = report.ProbeIncreaseLimitMs     // ms over the baseline's p99 beyond which the pool shrinks
	poolGrowMargin   = report.ProbeIncreaseLimitMs / 2 // and within which it may grow
	poolAbsoluteMs   = report.HarnessErrorLimitMs
	poolBusyLow      = 0.55 // CPU busy fraction below which the pool may grow
	poolBusyHigh     = 0.8  // and above which it shrinks
	poolStep         = 2    // labs added at a time
	// poolTick is how often the pool is adjusted; probeEvery how often the
	// probe sends a datagram; probeWindow how many of its errors the p99 is
	// taken over (the last 10 s).
	poolTick    = 2 * time.Second
	probeEvery  = 50 * time.Millisecond
	probeWindow = 200
)

// poolMeasure is what the pool's controller sees at a tick.
type poolMeasure struct {
	p99      float64 // the probe's p99 over its window, ms
	baseline float64 // the machine's unloaded probe p99, ms
	busy     float64 // the CPUs' busy fraction over the last tick
	waited   bool    // a job waited for a lab during the tick
}

// poolMarks are the probe p99s (ms) below which the pool may grow and
// above which it shrinks, for a machine whose unloaded p99 is baseline.
func poolMarks(baseline float64) (grow, shrink float64) {
	grow, shrink = baseline+poolGrowMargin, baseline+poolShrinkMargin
	if baseline+poolGrowMargin <= poolAbsoluteMs {
		grow, shrink = min(grow, poolAbsoluteMs), min(shrink, poolAbsoluteMs)
	}
	return grow, shrink
}

// nextPoolLimit is the pool's next limit, between lo and hi, from the
// measurements of the last tick.
func nextPoolLimit(limit, lo, hi int, m poolMeasure) int {
	next, _ := poolDecision(limit, lo, hi, m)
	return next
}

// poolDecision is nextPoolLimit with what decided it, as the report counts
// it (report.Environment.PoolTicks).
func poolDecision(limit, lo, hi int, m poolMeasure) (int, string) {
	grow, shrink := poolMarks(m.baseline)
	switch {
	case m.p99 > shrink:
		return max(lo, limit*3/4), "shrank: probe"
	case m.busy > poolBusyHigh:
		return max(lo, limit*3/4), "shrank: CPU"
	case m.p99 > grow:
		return limit, "held: probe"
	case m.busy >= poolBusyLow:
		return limit, "held: CPU"
	case !m.waited:
		return limit, "held: no job waited"
	case limit >= hi:
		return limit, "held: at its bound"
	}
	return min(hi, limit+poolStep), "grew"
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
	// ticks counts the controller's decisions by what decided them.
	ticks map[string]int
	// baseline is the machine's unloaded probe p99, ms (hasBaseline: known).
	baseline    float64
	hasBaseline bool
	unloaded    *report.Quantiles // the whole baseline, for the report
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

// setBaseline gives the pool the machine's unloaded probe p99 (ms) that
// adjust measures the load's increase against; until then it keeps its
// limit.
func (p *pool) setBaseline(q report.Quantiles) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.baseline = q.P99
	p.hasBaseline = true
	p.unloaded = &q
}

// measureBaseline gives the pool the machine's unloaded baseline before
// the run's first sample (baseline.go): read from EnvBaseline's file or
// measured earlier by this process, or measured now with no other lab of
// this process. It is measured now (10 s) only for a pool that may grow,
// sized by measurement with more jobs than its first limit; a fixed pool
// or a small run records it only where it costs nothing. A pool without
// one keeps its first limit; a failed measurement is what Run returns.
func (m *Matrix) measureBaseline(ctx context.Context) {
	mayGrow := m.Adaptive() && len(m.schedule()) > m.pool.current()
	b, ok, err := baselineFor(ctx, m.run, m.opt.Exe, mayGrow)
	if err != nil {
		if ctx.Err() == nil {
			m.keep(fmt.Errorf("the latency probe's unloaded baseline: %w", err))
		}
		return
	}
	if ok {
		m.pool.setBaseline(b.ErrorMs)
	}
}

// writeProbe records the machine's unloaded baseline and the probe's
// errors over the run side by side (report.Environment).
func (m *Matrix) writeProbe(e *report.Environment) {
	m.pool.mu.Lock()
	unloaded := m.pool.unloaded
	m.pool.mu.Unlock()
	if unloaded == nil {
		return
	}
	q := *unloaded
	e.ProbeUnloadedMs = &q
	if loaded := m.calib.quantilesOf(probeDatagram); loaded != nil {
		e.ProbeLoadedMs = loaded
	}
}

// adjust sets the next limit from the probe's p99 and the CPUs' busy
// fraction.
func (p *pool) adjust(p99, busy float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.hasBaseline {
		return
	}
	var why string
	p.limit, why = poolDecision(p.limit, p.lo, p.hi, poolMeasure{p99: p99, baseline: p.baseline, busy: busy, waited: p.waited})
	if p.ticks == nil {
		p.ticks = map[string]int{}
	}
	p.ticks[why]++
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

// decisions returns a copy of the controller's decision counts.
func (p *pool) decisions() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ticks) == 0 {
		return nil
	}
	out := make(map[string]int, len(p.ticks))
	for k, n := range p.ticks {
		out[k] = n
	}
	return out
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

// probeSession is the latency probe's lab, with its watcher listening for
// datagrams.
type probeSession struct {
	lab  *Lab
	s    *session
	addr string
}

// openProbe builds the probe's lab and starts its agents.
func openProbe(ctx context.Context, run *Run, exe string) (*probeSession, error) {
	c, err := Resolve(CellConfig{Detector: "read-eof", Fault: calibrationFault, Side: protocol.SideClient})
	if err != nil {
		return nil, err
	}
	lab, err := run.NewLab(ctx)
	if err != nil {
		return nil, err
	}
	s, err := openSession(ctx, lab, c, nil, sessionOptions{Exe: exe})
	if err != nil {
		_ = lab.Close()
		return nil, err
	}
	addr := netip.AddrPortFrom(topo.WatcherAddr, probeDatagramPort).String()
	if _, err := s.Watcher.Request(ctx, agentcmd.Command{Cmd: agentcmd.CmdListenDatagrams, Addr: addr}, agentcmd.EventPort); err != nil {
		_ = lab.Close()
		return nil, err
	}
	return &probeSession{lab: lab, s: s, addr: addr}, nil
}

func (p *probeSession) close() { _ = p.lab.Close() }

// run measures until ctx ends; its errors also go to the calibration.
func (lp *latencyProbe) run(ctx context.Context, m *Matrix) error {
	p, err := openProbe(ctx, m.run, m.opt.Exe)
	if err != nil {
		return err
	}
	defer p.close()
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		c, err := p.cycle(ctx, seq)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return keepProbeLog(m.logDir(), m.run.ID, p.s, err)
		}
		if c.datagramOK {
			lp.add(c.datagramMs)
			m.calib.add(probeDatagram, c.datagramMs)
		}
		if c.scheduledOK {
			m.calib.add(probeScheduled, c.scheduledMs)
		}
	}
}

// keepProbeLog keeps the latency probe's agents' diagnostics (their log
// events and standard error, where an agent stopped by RLIMIT_RTTIME
// prints its goroutines' stacks) in dir, when the probe failed with err,
// and names the file in the error it returns.
func keepProbeLog(dir, runID string, s *session, err error) error {
	lines := sampleLog([]*Process{s.Watcher, s.Peer}, s.WatcherStartNs)
	if dir == "" || len(lines) == 0 {
		return err
	}
	path := filepath.Join(dir, "latency-probe-"+runID+".log")
	if merr := os.MkdirAll(dir, 0o755); merr != nil {
		return fmt.Errorf("%w (its agents' log could not be kept: %v)", err, merr)
	}
	if werr := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); werr != nil {
		return fmt.Errorf("%w (its agents' log could not be kept: %v)", err, werr)
	}
	return fmt.Errorf("%w (its agents' log: %s)", err, path)
}

// probeCycle is what one cycle of the latency probe measured.
type probeCycle struct {
	datagramMs, scheduledMs float64
	// datagramOK is false for a datagram that was lost; scheduledOK is
	// false for a decision whose command reached the agent after its
	// instant (it measures the pipe, not the clock).
	datagramOK, scheduledOK bool
}

// cycle is one cycle of the latency probe, the same for the run's probe
// and the machine's baseline, so that the baseline is measured with the
// run's own cadence: the peer sends datagram seq, and the watcher is then
// told to decide 20 ms ahead. On machine C the cadence alone moved the
// unloaded p99 from 0.35–0.46 ms (a datagram every 10 ms) to 0.52–0.54 ms
// (this cycle every probeEvery), so a baseline measured otherwise would
// charge the load with what the cadence costs.
func (p *probeSession) cycle(ctx context.Context, seq int) (probeCycle, error) {
	var c probeCycle
	var err error
	c.datagramMs, c.datagramOK, err = probeDatagramOnce(ctx, p.s, p.addr, seq)
	if err != nil {
		return c, err
	}
	at := protocol.Now() + int64(20*time.Millisecond)
	ev, err := p.s.Watcher.Request(ctx, agentcmd.Command{Cmd: agentcmd.CmdDecideAt, AtNs: at, Seq: seq}, agentcmd.EventDecided)
	if err != nil {
		return c, err
	}
	if ev.Msg != "late" {
		c.scheduledMs, c.scheduledOK = float64(ev.TNs-at)/1e6, true
	}
	return c, nil
}

// probeDatagramOnce has the peer send datagram seq and returns the error of
// the watcher's stamp on it, in ms; ok is false for a datagram that did not
// arrive within RequestTimeout (UDP may drop one; the next is measured).
func probeDatagramOnce(ctx context.Context, s *session, addr string, seq int) (ms float64, ok bool, err error) {
	sent, err := s.Peer.Request(ctx, agentcmd.Command{Cmd: agentcmd.CmdSendDatagram, Addr: addr, Seq: seq}, agentcmd.EventSent)
	if err != nil {
		return 0, false, err
	}
	wctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	for {
		got, err := s.Watcher.WaitEvent(wctx, agentcmd.EventReceived)
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
