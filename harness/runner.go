package harness

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halfopen/halfopen/report"
)

// ListenPort is the port the listening end of the watched connection uses.
const ListenPort = 7000

// MaxRandomIdle bounds the seeded random idle time before a fault.
const MaxRandomIdle = 1500 * time.Millisecond

// CellConfig is one cell of a matrix: a detector against a fault on one side.
type CellConfig struct {
	Detector string
	Fault    string
	Side     Side
	Samples  int
	// Budget is how long a sample waits for a decision; zero derives it from
	// the prediction.
	Budget time.Duration
	// Idle fixes the idle time before the fault when FixedIdle is set;
	// otherwise each sample draws it from its seed in [0, MaxRandomIdle].
	Idle      time.Duration
	FixedIdle bool
	// Sysctls are set in every namespace of each of the cell's labs.
	Sysctls map[string]string
}

// Cell is a resolved cell: parsed specs, the theory's expectation, budget.
type Cell struct {
	Config     CellConfig
	Detector   Detector
	DetSpec    Spec
	Fault      Fault
	FaultSpec  Spec
	Effect     Effect
	Kind       string
	Prediction Prediction
	// Expect is "detect" or "never" (what theory says of this cell).
	Expect string
	Budget time.Duration
	// Samples holds the measured samples in the order they finished.
	Samples []report.Sample
	// Mistakes are the false positives of a disturbance cell.
	Mistakes       []report.Mistake
	FalsePositives int
	ObservedConnS  float64
	// Wire traffic and watcher CPU over the disturbance windows.
	OverheadPackets, OverheadBytes uint64
	OverheadCPUTicks               uint64
}

// Overhead returns the cell's traffic per connection-minute and the
// watcher's CPU share over its observed windows, or nil before any.
func (c *Cell) Overhead() *report.Overhead {
	if c.ObservedConnS <= 0 || c.Kind != report.KindDisturbance {
		return nil
	}
	mins := c.ObservedConnS / 60
	return &report.Overhead{
		PacketsPerConnMin: float64(c.OverheadPackets) / mins,
		BytesPerConnMin:   float64(c.OverheadBytes) / mins,
		WatcherCPUPercent: 100 * float64(c.OverheadCPUTicks) / clockTicks / c.ObservedConnS,
		WindowS:           c.ObservedConnS,
	}
}

// Options tune a matrix run.
type Options struct {
	// Pool is the number of labs at once (default: 4 per CPU, at most 16).
	Pool int
	// Seed makes fault instants reproducible.
	Seed int64
	// Exe is the binary re-executed as agents (default: this one).
	Exe string
	// Calibrations is the number of calibration labs (default: one per 8
	// samples, at least 3); negative disables calibration.
	Calibrations int
	// Report receives every sample the moment it is measured (may be nil).
	Report *report.Writer
	// Progress is called after each sample (may be nil).
	Progress func(Progress)
}

// Progress reports one finished job of a matrix.
type Progress struct {
	Done, Total int
	Cell        *Cell // nil for a calibration job
	Sample      report.Sample
}

// String is the progress line: "[done/total] cell: sample".
func (p Progress) String() string {
	what := "calibration"
	if p.Cell != nil {
		what = p.Cell.Describe()
	}
	return fmt.Sprintf("[%d/%d] %s: %s", p.Done, p.Total, what, p.Sample.Summary())
}

// Resolve parses and checks a cell without touching the machine, so that
// bad input is refused before any lab exists.
func Resolve(c CellConfig) (*Cell, error) {
	det, dsp, err := NewDetector(c.Detector)
	if err != nil {
		return nil, err
	}
	flt, fsp, err := NewFault(c.Fault)
	if err != nil {
		return nil, err
	}
	if c.Side == "" {
		c.Side = SideClient
	}
	if _, err := ParseSide(string(c.Side)); err != nil {
		return nil, err
	}
	if c.Samples <= 0 {
		c.Samples = 1
	}
	if c.Budget < 0 || c.Idle < 0 {
		return nil, errors.New("budget and idle must not be negative")
	}
	for k := range c.Sysctls {
		if _, err := sysctlPath(k); err != nil {
			return nil, err
		}
	}
	cell := &Cell{Config: c, Detector: det, DetSpec: dsp, Fault: flt, FaultSpec: fsp, Effect: flt.Effect(), Kind: report.KindDetection}
	cell.Prediction, cell.Expect = expectation(det, cell.Effect)
	if cell.Effect == EffectResetOnWrite {
		cell.Prediction, cell.Expect = ExpectResetOnWrite(det, resetAfter(flt))
	}
	if fe, ok := flt.(Expecter); ok && cell.Effect != EffectTransient {
		cell.Prediction, cell.Expect = fe.Expect(det)
	}
	if fr, ok := flt.(FaultReasons); ok && cell.Effect == EffectSilent && slices.Contains(cell.Prediction.Reasons, "ETIMEDOUT") {
		cell.Prediction.Reasons = fr.Reasons()
	}
	if cell.Effect == EffectTransient {
		cell.Kind = report.KindDisturbance
		cell.Expect = "survive"
	}
	cell.Budget = c.Budget
	if cell.Budget == 0 {
		cell.Budget = defaultBudget(cell)
	}
	return cell, nil
}

// FaultReasons is a silent fault whose path reports an error of its own
// when a timer gives up (a router's ICMP unreachable becomes the socket's
// soft error, reported in place of ETIMEDOUT).
type FaultReasons interface {
	Reasons() []string
}

// ClosePredictor is a detector whose reaction to a FIN or an RST is not
// immediate (it polls), so it predicts that too.
type ClosePredictor interface {
	PredictClose(e Effect) Prediction
}

// expectation returns what theory says the detector does under a fault effect.
func expectation(det Detector, e Effect) (Prediction, string) {
	if cp, ok := det.(ClosePredictor); ok && e != EffectSilent && e != EffectTransient {
		return cp.PredictClose(e), "detect"
	}
	const rule = "a blocked read returns as soon as the segment arrives over two veth hops (tens of µs); 50 ms allows for a loaded 2-core machine"
	switch e {
	case EffectFIN:
		return Prediction{Hi: 50 * time.Millisecond, Rule: "FIN: read returns 0 (RFC 793 CLOSE-WAIT); " + rule, Reasons: []string{"EOF"}}, "detect"
	case EffectRST:
		return Prediction{Hi: 50 * time.Millisecond, Rule: "RST: read fails with ECONNRESET (RFC 793 §3.4); " + rule, Reasons: []string{"ECONNRESET"}}, "detect"
	case EffectFINOrRST:
		return Prediction{Hi: 50 * time.Millisecond, Rule: "the peer's kernel closes its socket: FIN, or RST if unread data was queued (tcp_close(), RFC 2525 §2.17); " + rule, Reasons: []string{"EOF", "ECONNRESET"}}, "detect"
	case EffectTransient:
		return det.Predict(), "survive"
	}
	p := det.Predict()
	if p.Never {
		return p, "never"
	}
	return p, "detect"
}

func defaultBudget(c *Cell) time.Duration {
	p := c.Prediction
	switch {
	case c.Kind == report.KindDisturbance:
		return 0
	case p.Never:
		return 3 * time.Second
	default:
		return p.Hi + max(1500*time.Millisecond, p.Hi/2)
	}
}

// Matrix runs cells through a bounded pool of fresh labs.
type Matrix struct {
	run   *Run
	opt   Options
	cells []*Cell

	mu          sync.Mutex
	calibration map[string][]float64 // probe name -> errors in ms
	sysctlsSeen map[string]string
}

// NewMatrix resolves every cell; the first bad spec is an error.
func NewMatrix(run *Run, configs []CellConfig, opt Options) (*Matrix, error) {
	if len(configs) == 0 {
		return nil, errors.New("no cells to run")
	}
	m := &Matrix{run: run, opt: opt, calibration: map[string][]float64{}, sysctlsSeen: map[string]string{}}
	for _, c := range configs {
		cell, err := Resolve(c)
		if err != nil {
			return nil, err
		}
		m.cells = append(m.cells, cell)
	}
	if m.opt.Pool <= 0 {
		m.opt.Pool = min(4*runtime.NumCPU(), 16)
	}
	if m.opt.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this program to re-execute as agents: %w", err)
		}
		m.opt.Exe = exe
	}
	return m, nil
}

// Cells returns the resolved cells.
func (m *Matrix) Cells() []*Cell { return m.cells }

// PoolSize returns the number of labs run at once.
func (m *Matrix) PoolSize() int { return m.opt.Pool }

type job struct {
	cell  *Cell
	index int
	seed  int64
	calib bool
}

// Run measures every sample of every cell. Samples are interleaved across
// cells, and calibration labs across samples, so that a partial run covers
// the whole matrix and calibration sees the same load.
func (m *Matrix) Run(ctx context.Context) error {
	var jobs []job
	maxSamples := 0
	for _, c := range m.cells {
		maxSamples = max(maxSamples, c.Config.Samples)
	}
	for i := 0; i < maxSamples; i++ {
		for ci, c := range m.cells {
			if i < c.Config.Samples {
				jobs = append(jobs, job{cell: c, index: i, seed: m.opt.Seed + int64(ci)*1000 + int64(i)})
			}
		}
	}
	ncal := m.opt.Calibrations
	if ncal == 0 {
		ncal = max(3, len(jobs)/8)
	}
	if ncal > 0 {
		step := max(1, len(jobs)/ncal)
		var mixed []job
		for i, j := range jobs {
			if i%step == 0 && ncal > 0 {
				mixed = append(mixed, job{calib: true, seed: m.opt.Seed + int64(i)})
				ncal--
			}
			mixed = append(mixed, j)
		}
		for ; ncal > 0; ncal-- {
			mixed = append(mixed, job{calib: true})
		}
		jobs = mixed
	}
	if err := m.writeHeader(); err != nil {
		return err
	}
	total := len(jobs)
	var done atomic.Int64
	work := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < m.opt.Pool; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				var s report.Sample
				if j.calib {
					s = m.calibrate(ctx)
				} else {
					s = m.sample(ctx, j)
				}
				n := int(done.Add(1))
				if m.opt.Progress != nil {
					m.opt.Progress(Progress{Done: n, Total: total, Cell: map[bool]*Cell{false: j.cell}[j.calib], Sample: s})
				}
			}
		}()
	}
feed:
	for _, j := range jobs {
		select {
		case work <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

// writeHeader creates every cell in the report before the first sample, so
// that a cell with no sample yet still shows its prediction and budget.
func (m *Matrix) writeHeader() error {
	if m.opt.Report == nil {
		return nil
	}
	return m.opt.Report.Update(func(r *report.Report) {
		r.Seed = m.opt.Seed
		r.Environment.Pool = m.opt.Pool
		r.Environment.CPUs = runtime.NumCPU()
		for _, c := range m.cells {
			rc := r.Cell(c.DetSpec.String(), c.FaultSpec.String(), string(c.Config.Side), c.Kind)
			rc.BudgetS = c.Budget.Seconds()
			rc.PredictedS = c.Prediction.Seconds()
			rc.PredictedRule = c.Prediction.Rule
			rc.Expect = c.Expect
			rc.Reasons = c.Prediction.Reasons
			rc.Path = "direct"
		}
	})
}

// record stores a finished sample in the cell and the report.
func (m *Matrix) record(c *Cell, ms measured) {
	s, mistakes, observedS, path, note := ms.Sample, ms.mistakes, ms.observedS, ms.path, ms.note
	m.mu.Lock()
	c.Samples = append(c.Samples, s)
	c.Mistakes = append(c.Mistakes, mistakes...)
	c.FalsePositives += s.FalsePositives
	c.ObservedConnS += observedS
	c.OverheadPackets += ms.packets
	c.OverheadBytes += ms.bytes
	c.OverheadCPUTicks += ms.cpuTicks
	overhead := c.Overhead()
	m.mu.Unlock()
	if m.opt.Report == nil {
		return
	}
	_ = m.opt.Report.Update(func(r *report.Report) {
		rc := r.Cell(c.DetSpec.String(), c.FaultSpec.String(), string(c.Config.Side), c.Kind)
		rc.Samples = append(rc.Samples, s)
		rc.Mistakes = append(rc.Mistakes, mistakes...)
		rc.FalsePositives += s.FalsePositives
		rc.ObservedConnS += observedS
		if overhead != nil {
			rc.Overhead = overhead
		}
		if path != "" {
			rc.Path = path
		}
		if note != "" {
			rc.Note = note
		}
		if r.Environment.Sysctls == nil {
			r.Environment.Sysctls = map[string]string{}
		}
		maps.Copy(r.Environment.Sysctls, m.sysctlsSnapshot())
	})
}

func (m *Matrix) sysctlsSnapshot() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.sysctlsSeen)
}

// recordedSysctls are read back from every watcher namespace into the report.
var recordedSysctls = []string{
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_retries2", "net.ipv4.tcp_retries1", "net.ipv4.tcp_syn_retries",
}

func errSample(seed int64, format string, args ...any) report.Sample {
	return report.Sample{Reason: "error", Error: fmt.Sprintf(format, args...), Seed: seed}
}

// pair is the two processes of a sample.
type pair struct {
	watcher, peer *Process
	builtin       bool
}

// startPair starts the listening end first, waits until it is ready, then
// the dialing end, and waits until both are connected.
func (m *Matrix) startPair(ctx context.Context, lab *Lab, c *Cell, reconnect bool) (*pair, error) {
	side := c.Config.Side
	listenAddr := netip.AddrPortFrom(PeerAddr, ListenPort)
	if side == SideServer {
		listenAddr = netip.AddrPortFrom(WatcherAddr, ListenPort)
	}
	// The dialing end goes through lab.Via (a proxy put there by a fault's
	// Prepare) or straight to the listener.
	if !lab.Via.IsValid() {
		lab.Via = listenAddr
		lab.PathName = "direct"
	}
	watcherAddr, peerAddr := lab.Via.String(), listenAddr.String()
	if side == SideServer {
		watcherAddr, peerAddr = listenAddr.String(), lab.Via.String()
	}
	conns := 1
	if cc, ok := c.Detector.(ConnCounter); ok {
		conns = cc.Conns()
	}
	common := []string{
		fmt.Sprintf("%s=%d", envProtocol, ProtocolVersion),
		envSide + "=" + string(side),
		fmt.Sprintf("%s=%d", envConns, conns),
	}
	if reconnect {
		common = append(common, envReconnect+"=1")
	}
	wspec := ProcSpec{Path: m.opt.Exe, Label: "watcher", Env: append([]string{
		envAgent + "=watcher", envRole + "=watcher", envAddr + "=" + watcherAddr, envDetector + "=" + c.DetSpec.String(),
	}, common...)}
	pspec := ProcSpec{Path: m.opt.Exe, Label: "peer", Env: append([]string{
		envAgent + "=peer", envRole + "=peer", envAddr + "=" + peerAddr,
	}, common...)}
	p := &pair{builtin: true}
	if prog, ok := c.Detector.(Program); ok {
		p.builtin = false
		wspec = prog.WatcherProgram(side, watcherAddr)
		wspec.Env = append(wspec.Env, common...)
		if ps, ok := prog.PeerProgram(side, peerAddr); ok {
			pspec = ps
			pspec.Env = append(pspec.Env, common...)
		}
	}
	first, second := pspec, wspec
	firstHost, secondHost := Peer, Watcher
	if side == SideServer {
		first, second = wspec, pspec
		firstHost, secondHost = Watcher, Peer
	}
	setupCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a, err := lab.Host(firstHost).Start(first)
	if err != nil {
		return nil, err
	}
	if _, err := a.WaitEvent(setupCtx, EventReady); err != nil {
		return nil, err
	}
	b, err := lab.Host(secondHost).Start(second)
	if err != nil {
		return nil, err
	}
	p.watcher, p.peer = b, a
	if side == SideServer {
		p.watcher, p.peer = a, b
	}
	lab.Agents[Watcher], lab.Agents[Peer] = p.watcher, p.peer
	for _, proc := range []*Process{p.watcher, p.peer} {
		ev, err := proc.WaitEvent(setupCtx, EventConnected)
		if err != nil {
			return nil, fmt.Errorf("connection never established: %w", err)
		}
		// The dialing end's local port names the data connection in the
		// router's conntrack table (its original source port, before NAT).
		dialer := p.watcher
		if side == SideServer {
			dialer = p.peer
		}
		if proc == dialer {
			if ap, err := netip.ParseAddrPort(ev.Local); err == nil {
				lab.DataPort = ap.Port()
			}
		}
	}
	return p, nil
}

// prepareLab sets the cell's kernel parameters and lets the fault arrange
// the path before any connection exists.
func (m *Matrix) prepareLab(ctx context.Context, lab *Lab, c *Cell, flt Fault) error {
	lab.Side = c.Config.Side
	if len(c.Config.Sysctls) > 0 {
		for _, r := range []Role{Peer, Router, Watcher} {
			if err := lab.SetSysctls(r, c.Config.Sysctls); err != nil {
				return err
			}
		}
		m.noteSysctls("all/", c.Config.Sysctls)
	}
	if sn, ok := c.Detector.(SysctlNeeder); ok {
		kv := sn.Sysctls()
		if err := lab.SetSysctls(Watcher, kv); err != nil {
			return err
		}
		m.noteSysctls("watcher/", kv)
	}
	m.mu.Lock()
	seen := len(m.sysctlsSeen) > 0
	m.mu.Unlock()
	if !seen {
		read := map[string]string{}
		for _, k := range recordedSysctls {
			if v, err := lab.ReadSysctl(Watcher, k); err == nil {
				read[k] = v
			}
		}
		m.noteSysctls("watcher-default/", read)
	}
	if p, ok := flt.(Preparer); ok {
		if err := p.Prepare(ctx, lab); err != nil {
			return fmt.Errorf("prepare %s: %w", c.FaultSpec, err)
		}
	}
	return nil
}

func (m *Matrix) noteSysctls(prefix string, kv map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range kv {
		if prefix == "watcher-default/" {
			if _, set := m.sysctlsSeen["all/"+k]; set {
				continue
			}
		}
		m.sysctlsSeen[prefix+k] = v
	}
}

// sample measures one sample of a cell in a fresh lab.
func (m *Matrix) sample(ctx context.Context, j job) report.Sample {
	c := j.cell
	s := m.measure(ctx, j)
	if s.Error != "" && ctx.Err() != nil {
		// An interrupted sample is not a measurement: keep it out of the report.
		return s.Sample
	}
	m.record(c, s)
	return s.Sample
}

type measured struct {
	report.Sample
	mistakes  []report.Mistake
	observedS float64
	path      string
	note      string
	// Wire packets and bytes, and watcher CPU ticks, over a disturbance window.
	packets, bytes, cpuTicks uint64
}

func (m *Matrix) measure(ctx context.Context, j job) (out measured) {
	c := j.cell
	rng := rand.New(rand.NewPCG(uint64(j.seed), 0x68616c666f70656e))
	lab, err := m.run.NewLab(ctx)
	if err != nil {
		out.Sample = errSample(j.seed, "%v", err)
		return out
	}
	defer lab.Close()
	// Each sample gets its own fault, so a fault may keep what it installed
	// in its fields while samples of the same cell run in parallel labs.
	flt, _, err := NewFault(c.FaultSpec.String())
	if err != nil {
		out.Sample = errSample(j.seed, "%v", err)
		return out
	}
	if err := m.prepareLab(ctx, lab, c, flt); err != nil {
		out.Sample = errSample(j.seed, "%v", err)
		return out
	}
	p, err := m.startPair(ctx, lab, c, c.Kind == report.KindDisturbance)
	if err != nil {
		out.Sample = errSample(j.seed, "%v", err)
		return out
	}
	if !p.builtin {
		// Before the lab goes: a foreign program must end on SIGTERM within
		// 2 s and must not have printed a line outside protocol v1.
		defer func() { endPrograms(c, p, &out) }()
	}
	out.path = lab.PathName
	if n, ok := flt.(interface{ Note(*Lab) string }); ok {
		out.note = n.Note(lab)
	}
	// Warm-up: the peer (the reference text's client "sending at irregular
	// times") sends a few messages at seeded random gaps; the idle time
	// before the fault counts from the last one.
	last := Now()
	if p.builtin {
		for i := 0; i < 3; i++ {
			time.Sleep(time.Duration(20+rng.IntN(100)) * time.Millisecond)
			if err := p.peer.Send(Command{Cmd: "send", Bytes: 32 + rng.IntN(200), Seq: i}); err != nil {
				out.Sample = errSample(j.seed, "%v", err)
				return out
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ev, err := p.peer.WaitEvent(wctx, EventSent)
			cancel()
			if err != nil {
				out.Sample = errSample(j.seed, "warm-up: %v", err)
				return out
			}
			last = ev.TNs
		}
	}
	idle := c.Config.Idle
	if !c.Config.FixedIdle {
		idle = time.Duration(rng.Int64N(int64(MaxRandomIdle) + 1))
	}
	if err := waitQuiet(ctx, p.watcher, last+int64(idle)); err != nil {
		out.Sample = errSample(j.seed, "%v", err)
		return out
	}
	heal, at, err := flt.Inject(ctx, lab)
	if err != nil {
		out.Sample = errSample(j.seed, "inject %s: %v", c.FaultSpec, err)
		return out
	}
	base := report.Sample{Seed: j.seed, IdleS: idle.Seconds(), InjectedNs: at}
	if c.Kind == report.KindDisturbance {
		return m.observe(ctx, lab, c, flt, p, heal, at, base, out)
	}
	out.Sample = waitDecision(ctx, p.watcher, at, c.Budget, base)
	if saw, ok := c.Detector.(interface{ PeerSaw(*Process) string }); ok {
		out.Sample.PeerSaw = saw.PeerSaw(p.peer)
	}
	return out
}

// waitQuiet waits until the instant `until`, failing early if the watcher
// decides (a false positive while healthy) or ends before it.
func waitQuiet(ctx context.Context, w *Process, until int64) error {
	d := time.Duration(until - Now())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// Sleep the last sub-millisecond on the clock itself.
			SleepUntil(until)
			return nil
		case ev, ok := <-w.Events():
			if !ok {
				return w.endedError("before the fault")
			}
			if ev.Event == EventDead {
				return fmt.Errorf("the watcher decided %q before the fault (a false positive while healthy)", ev.Reason)
			}
		}
	}
}

// decisionGrace is how long a decision stamped before the budget's end may
// take to reach the orchestrator (a loaded machine delays the pipe, not the stamp).
const decisionGrace = 250 * time.Millisecond

// waitDecision waits for the watcher's "dead" until the budget after the
// injection; a sample with no decision in time is censored.
func waitDecision(ctx context.Context, w *Process, at int64, budget time.Duration, s report.Sample) report.Sample {
	end := at + int64(budget)
	deadline := time.NewTimer(time.Duration(end - Now()))
	defer deadline.Stop()
	// The decision's own instant, not its arrival, says whether it came in
	// time: after the deadline, events already on their way are read for a
	// grace period, and one stamped before the deadline still counts.
	var grace <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			s.Reason, s.Error = "error", "interrupted: "+context.Cause(ctx).Error()
			return s
		case <-deadline.C:
			grace = time.After(decisionGrace)
		case <-grace:
			s.Reason = "budget"
			return s
		case ev, ok := <-w.Events():
			if !ok {
				s.Reason, s.Error = "error", w.endedError("before deciding").Error()
				return s
			}
			switch ev.Event {
			case EventDead:
				if ev.TNs < at {
					s.Reason, s.Error = "error", fmt.Sprintf("the watcher decided %q %.3f s before the fault", ev.Reason, Seconds(at-ev.TNs))
					return s
				}
				if ev.TNs > end {
					s.Reason = "budget"
					return s
				}
				secs := Seconds(ev.TNs - at)
				s.Detected, s.Seconds, s.Reason, s.DecidedNs = true, &secs, ev.Reason, ev.TNs
				return s
			case EventError:
				s.Reason, s.Error = "error", "watcher: "+ev.Msg
				return s
			}
		}
	}
}

// observe runs a disturbance: the fault heals after its window, the
// connection is watched for as long again plus the budget, and every
// decision is a false positive, with its duration until the watcher is
// connected again.
func (m *Matrix) observe(ctx context.Context, lab *Lab, c *Cell, flt Fault, p *pair, heal Heal, at int64, s report.Sample, out measured) measured {
	window := time.Duration(0)
	if w, ok := flt.(Windowed); ok {
		window = w.Window()
	}
	tail := c.Config.Budget
	if tail == 0 {
		tail = max(2*time.Second, c.Prediction.Hi)
	}
	healAt := at + int64(window)
	end := healAt + int64(tail)
	// Overhead: wire packets counted on the router and the watcher's CPU
	// time, over the observed window.
	wire, err := newWireCounter(lab)
	if err != nil {
		out.Sample = errSample(s.Seed, "%v", err)
		return out
	}
	cpu0, _ := cpuTicks(p.watcher.Pid())
	healed := heal == nil
	var mistakes []report.Mistake
	var suspectedAt int64
	for {
		now := Now()
		if now >= end {
			break
		}
		wake := end
		if !healed && healAt < wake {
			wake = healAt
		}
		t := time.NewTimer(time.Duration(wake - now))
		select {
		case <-ctx.Done():
			t.Stop()
			out.Sample = errSample(s.Seed, "interrupted: %v", context.Cause(ctx))
			return out
		case <-t.C:
			if !healed && Now() >= healAt {
				if _, err := heal(ctx); err != nil {
					out.Sample = errSample(s.Seed, "heal %s: %v", c.FaultSpec, err)
					return out
				}
				healed = true
			}
		case ev, ok := <-p.watcher.Events():
			t.Stop()
			if !ok {
				out.Sample = errSample(s.Seed, "%v", p.watcher.endedError("during the disturbance"))
				return out
			}
			switch ev.Event {
			case EventDead:
				s.FalsePositives++
				suspectedAt = ev.TNs
				if !s.Detected {
					secs := Seconds(ev.TNs - at)
					s.Detected, s.Seconds, s.Reason, s.DecidedNs = true, &secs, ev.Reason, ev.TNs
				}
			case EventConnected:
				if suspectedAt != 0 {
					mistakes = append(mistakes, report.Mistake{StartS: Seconds(suspectedAt - at), EndS: Seconds(ev.TNs - at)})
					suspectedAt = 0
				}
			}
		}
		t.Stop()
	}
	if !healed {
		if _, err := heal(ctx); err != nil {
			out.Sample = errSample(s.Seed, "heal %s: %v", c.FaultSpec, err)
			return out
		}
	}
	if suspectedAt != 0 {
		mistakes = append(mistakes, report.Mistake{StartS: Seconds(suspectedAt - at), EndS: Seconds(end - at)})
	}
	if !s.Detected {
		s.Reason = "survived"
	}
	if pk, by, err := wire.read(); err == nil {
		out.packets, out.bytes = pk, by
	}
	if cpu1, err := cpuTicks(p.watcher.Pid()); err == nil && cpu1 >= cpu0 {
		out.cpuTicks = cpu1 - cpu0
	}
	s.WindowS = Seconds(end - at)
	out.Sample, out.mistakes, out.observedS = s, mistakes, s.WindowS
	return out
}

// calibrate measures the harness's own timing error in a fresh lab, under
// whatever load the pool is under: (1) scheduled decisions, where the
// watcher agent is told to decide at a known CLOCK_MONOTONIC instant and
// the error is the instant it reports minus the one it was given; (2) a FIN
// on a veth, where the peer's shutdown() is timed against the watcher's
// read returning 0, whose true value is the few µs the FIN takes.
func (m *Matrix) calibrate(ctx context.Context) report.Sample {
	fail := func(err error) report.Sample {
		return report.Sample{Reason: "error", Error: "calibration: " + err.Error()}
	}
	c, err := Resolve(CellConfig{Detector: "read-eof", Fault: calibrationFault, Side: SideClient})
	if err != nil {
		return fail(err)
	}
	lab, err := m.run.NewLab(ctx)
	if err != nil {
		return fail(err)
	}
	defer lab.Close()
	p, err := m.startPair(ctx, lab, c, false)
	if err != nil {
		return fail(err)
	}
	var sched []float64
	for i := 0; i < 20; i++ {
		at := Now() + int64(20*time.Millisecond)
		if err := p.watcher.Send(Command{Cmd: "decide-at", AtNs: at, Seq: i}); err != nil {
			return fail(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ev, err := p.watcher.WaitEvent(wctx, EventDecided)
		cancel()
		if err != nil {
			return fail(err)
		}
		if ev.Msg != "late" {
			sched = append(sched, float64(ev.TNs-at)/1e6)
		}
	}
	if err := p.peer.Send(Command{Cmd: "close"}); err != nil {
		return fail(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	closed, err := p.peer.WaitEvent(wctx, EventClosed)
	if err != nil {
		return fail(err)
	}
	s := waitDecision(wctx, p.watcher, closed.TNs, 2*time.Second, report.Sample{InjectedNs: closed.TNs})
	if !s.Detected {
		return fail(fmt.Errorf("the FIN was not seen: %s %s", s.Reason, s.Error))
	}
	m.mu.Lock()
	m.calibration[probeScheduled] = append(m.calibration[probeScheduled], sched...)
	m.calibration[probeFIN] = append(m.calibration[probeFIN], *s.Seconds*1e3)
	m.mu.Unlock()
	m.writeCalibration()
	return s
}

const (
	calibrationFault = "graceful-close"
	probeScheduled   = "scheduled-decision"
	probeFIN         = "fin-on-veth"
)

// CalibrationMs returns the calibration error quantiles measured so far
// (both probes together) and per probe.
func (m *Matrix) CalibrationMs() (*report.Quantiles, []report.CalibrationProbe) {
	m.mu.Lock()
	defer m.mu.Unlock()
	methods := map[string]string{
		probeScheduled: "the watcher agent is told to decide at a CLOCK_MONOTONIC instant 20 ms ahead (clock_nanosleep TIMER_ABSTIME); error = the instant it stamps on waking - the instant it was given; a command that reached the agent after its instant is left out",
		probeFIN:       "the peer's shutdown(SHUT_WR) instant against the watcher's read returning 0 over two veth hops; the FIN's own flight is a few µs, so this bounds the error from above",
	}
	var all []float64
	var probes []report.CalibrationProbe
	names := make([]string, 0, len(m.calibration))
	for n := range m.calibration {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		xs := m.calibration[n]
		all = append(all, xs...)
		probes = append(probes, report.CalibrationProbe{Name: n, Method: methods[n], ErrorMs: quantilesMs(xs)})
	}
	if len(all) == 0 {
		return nil, nil
	}
	q := quantilesMs(all)
	return &q, probes
}

func (m *Matrix) writeCalibration() {
	if m.opt.Report == nil {
		return
	}
	q, probes := m.CalibrationMs()
	_ = m.opt.Report.Update(func(r *report.Report) {
		r.Environment.CalibrationErrorMs = q
		r.Environment.Calibration = probes
	})
}

// quantilesMs returns nearest-rank p50/p99/max of xs.
func quantilesMs(xs []float64) report.Quantiles {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := func(p float64) float64 {
		if len(s) == 0 {
			return 0
		}
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return report.Quantiles{P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1], N: len(s)}
}

// Describe is a one-line summary of a cell for progress output.
func (c *Cell) Describe() string {
	return strings.Join([]string{c.DetSpec.String(), c.FaultSpec.String(), string(c.Config.Side)}, " × ")
}

// Connect readies lab as the runner does for one sample (the side, the
// detector's kernel parameters, the fault's Prepare when flt is not nil),
// starts the built-in peer and a watcher running detector, and waits until
// both are connected. It is the setup of one sample, for tests and tools
// that inject faults by hand.
func Connect(ctx context.Context, lab *Lab, detector string, side Side, flt Fault) (watcher, peer *Process, err error) {
	c, err := Resolve(CellConfig{Detector: detector, Fault: calibrationFault, Side: side})
	if err != nil {
		return nil, nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	m := &Matrix{opt: Options{Exe: exe}, calibration: map[string][]float64{}, sysctlsSeen: map[string]string{}}
	if err := m.prepareLab(ctx, lab, c, flt); err != nil {
		return nil, nil, err
	}
	p, err := m.startPair(ctx, lab, c, false)
	if err != nil {
		return nil, nil, err
	}
	return p.watcher, p.peer, nil
}
