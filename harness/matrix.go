package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halfopen/halfopen/report"
)

// Options tune a matrix run.
type Options struct {
	// Pool fixes the number of labs at once; 0 sizes it by measurement
	// (pool.go): from 4 per CPU, growing while the harness's timing error
	// stays low and shrinking when it rises.
	Pool int
	// Seed is the run's seed: every sample's seed and idle stratum derive
	// from it and the sample's cell key (SampleSeed, Strata), so the same
	// seed reproduces a run, and a cell's samples do not depend on the
	// other cells of the matrix.
	Seed int64
	// SeedLog, when set, gets one line with the seed when Run starts
	// (SeedLine): a suite or a gate prints it so that its run can be
	// reproduced.
	SeedLog io.Writer
	// Exe is the binary re-executed as agents (default: this one).
	Exe string
	// Calibrations is the number of calibration labs that time a FIN
	// (default: one per 32 samples, at least 3; the latency probe times
	// scheduled decisions all run long); negative disables calibration and
	// the probe.
	Calibrations int
	// Report is the run's one store: every sample goes into it the moment
	// it is measured (default: a report kept in memory).
	Report *report.Writer
	// Progress is called after each sample (may be nil).
	Progress func(Progress)
	// LogDir keeps the output of service peers, a file per sample (default:
	// only their last lines, in sample errors).
	LogDir string
	// CaptureDir keeps pcapng captures of the router's ports for samples
	// that surprise (default: captures/ beside the report; none for a
	// report kept in memory). Pcap keeps every sample's capture.
	CaptureDir string
	Pcap       bool
}

// Progress reports one finished job of a matrix.
type Progress struct {
	Done, Total int
	Labs        int   // the pool's limit when the job ended
	Cell        *Cell // nil for a calibration job
	Sample      report.Sample
}

// String is the progress line: "[done/total, labs] cell: sample".
func (p Progress) String() string {
	what := "calibration"
	if p.Cell != nil {
		what = p.Cell.Describe()
	}
	return fmt.Sprintf("[%d/%d, %d labs] %s: %s", p.Done, p.Total, p.Labs, what, p.Sample.Summary())
}

// Matrix runs cells through a bounded pool of fresh labs and records every
// sample, once, in its report.
type Matrix struct {
	run   *Run
	opt   Options
	cells []*Cell
	store *report.Writer
	calib calibration
	pool  *pool
	probe latencyProbe
	// captureDir is where captures are kept; "" keeps none.
	captureDir string
	// started and finished bound Run's measuring (report.Environment.WallS);
	// finished is zero while it runs.
	started, finished time.Time

	mu            sync.Mutex
	sysctlsNeeded map[report.CellKey]bool
	storeErr      error // the first sample the report could not keep
}

// NewMatrix resolves every cell; the first bad spec is an error.
func NewMatrix(run *Run, configs []CellConfig, opt Options) (*Matrix, error) {
	if len(configs) == 0 {
		return nil, errors.New("no cells to run")
	}
	m := &Matrix{run: run, opt: opt, store: opt.Report, sysctlsNeeded: map[report.CellKey]bool{}}
	if m.store == nil {
		m.store = report.Memory(&report.Report{})
	}
	for _, c := range configs {
		cell, err := Resolve(c)
		if err != nil {
			return nil, err
		}
		key := cell.Key()
		cell.record = func() report.Cell {
			rc, _ := m.store.CellOf(key)
			return rc
		}
		m.sysctlsNeeded[key] = true
		m.cells = append(m.cells, cell)
	}
	m.captureDir = m.opt.CaptureDir
	if m.captureDir == "" && m.store.Path() != "" {
		m.captureDir = filepath.Join(filepath.Dir(m.store.Path()), "captures")
	}
	if m.opt.Pool > 0 {
		m.pool = newPool(m.opt.Pool, m.opt.Pool, m.opt.Pool)
	} else {
		m.pool = newPool(poolBounds())
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

// PoolSize returns the number of labs run at once: the fixed pool, or the
// largest limit the measured pool has reached so far.
func (m *Matrix) PoolSize() int { return m.pool.maxUsed() }

// Adaptive says whether the pool is sized by measurement.
func (m *Matrix) Adaptive() bool { return m.opt.Pool <= 0 }

// Report returns a copy of the run's report as it is now.
func (m *Matrix) Report() *report.Report { return m.store.Snapshot() }

// job is one sample of a cell, or a calibration lab.
type job struct {
	cell  *Cell
	index int
	seed  int64
	// stratum is the part of the idle range [stratum/n, (stratum+1)/n) of
	// MaxRandomIdle this sample draws its idle time in, n the cell's samples.
	stratum int
	calib   bool
}

// schedule interleaves samples across cells in rounds, the longest
// expected first in each, and calibration labs across samples, so that a
// partial run covers the whole matrix and calibration sees the same load.
func (m *Matrix) schedule() []job {
	var jobs []job
	maxSamples := 0
	for _, c := range m.cells {
		maxSamples = max(maxSamples, c.Config.Samples)
	}
	for i := 0; i < maxSamples; i++ {
		round := len(jobs)
		for _, c := range m.cells {
			if i < c.Config.Samples {
				jobs = append(jobs, job{cell: c, index: i, seed: sampleSeed(m.opt.Seed, c.Key(), i), stratum: strata(m.opt.Seed, c.Key(), c.Config.Samples)[i]})
			}
		}
		// Longest first within a round, so that the run does not end
		// waiting for one long sample started last.
		slices.SortStableFunc(jobs[round:], func(a, b job) int {
			return cmp.Compare(b.cell.expectedDuration(), a.cell.expectedDuration())
		})
	}
	ncal := m.opt.Calibrations
	if ncal == 0 {
		ncal = max(3, len(jobs)/32)
	}
	if ncal <= 0 {
		return jobs
	}
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
	return mixed
}

// Run measures every sample of every cell.
func (m *Matrix) Run(ctx context.Context) error {
	jobs := m.schedule()
	m.mu.Lock()
	m.started = time.Now()
	m.mu.Unlock()
	if err := m.writeHeader(); err != nil {
		return err
	}
	total := len(jobs)
	stop := m.measurePool(ctx)
	var done atomic.Int64
	var wg sync.WaitGroup
	for _, j := range jobs {
		if !m.pool.acquire(ctx) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer m.pool.release()
			s := m.do(ctx, j)
			n := int(done.Add(1))
			if m.opt.Progress != nil {
				p := Progress{Done: n, Total: total, Labs: m.pool.current(), Sample: s}
				if !j.calib {
					p.Cell = j.cell
				}
				m.opt.Progress(p)
			}
		}()
	}
	wg.Wait()
	stop()
	m.mu.Lock()
	m.finished = time.Now()
	m.mu.Unlock()
	m.writeCalibration()
	m.keep(m.store.Update(func(r *report.Report) {
		r.Environment.Pool = max(r.Environment.Pool, m.pool.maxUsed())
		for why, n := range m.pool.decisions() {
			if r.Environment.PoolTicks == nil {
				r.Environment.PoolTicks = map[string]int{}
			}
			r.Environment.PoolTicks[why] += n
		}
	}))
	m.mu.Lock()
	defer m.mu.Unlock()
	return errors.Join(context.Cause(ctx), m.storeErr)
}

// measurePool runs the latency probe for the run, and, for a pool sized by
// measurement, adjusts its limit every poolTick. Calibration off
// (Calibrations < 0) runs no probe and keeps the pool where it starts. The
// returned function stops both and waits for them.
func (m *Matrix) measurePool(ctx context.Context) (stop func()) {
	if m.opt.Calibrations < 0 {
		return func() {}
	}
	m.measureBaseline(ctx)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := m.probe.run(ctx, m); err != nil {
			m.keep(fmt.Errorf("latency probe: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(poolTick)
		defer t.Stop()
		last, cpuErr := readCPUTimes()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now, err := readCPUTimes()
			busy := now.busySince(last)
			last, cpuErr = now, errors.Join(cpuErr, err)
			if cpuErr != nil {
				busy = 1 // the load is unknown: never grow on it
			}
			if p99, ok := m.probe.p99(); ok && m.Adaptive() {
				m.pool.adjust(p99, busy)
			}
			m.writeCalibration()
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// keep notes the first failure to store a measurement; Run returns it, and
// the run goes on, so that what can still be kept is.
func (m *Matrix) keep(err error) {
	if err == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.storeErr == nil {
		m.storeErr = fmt.Errorf("record a measurement: %w", err)
	}
}

// do runs one job and records what it measured. An interrupted sample is
// not a measurement and stays out of the report.
func (m *Matrix) do(ctx context.Context, j job) report.Sample {
	if j.calib {
		s, err := m.calibrate(ctx)
		if err != nil {
			return report.Sample{Reason: "error", Error: "calibration: " + err.Error()}
		}
		m.writeCalibration()
		return s
	}
	out, err := m.measure(ctx, j)
	if err != nil {
		pcap := out.Sample.Pcap
		out = outcome{Sample: errSample(j.seed, err)}
		out.Sample.Pcap = pcap
	}
	if err != nil && ctx.Err() != nil {
		return out.Sample
	}
	m.record(j.cell, out)
	return out.Sample
}

// writeHeader creates every cell in the report before the first sample, so
// that a cell with no sample yet still shows its prediction and budget.
func (m *Matrix) writeHeader() error {
	if m.opt.SeedLog != nil {
		fmt.Fprintln(m.opt.SeedLog, seedLine(m.opt.Seed))
	}
	return m.store.Update(func(r *report.Report) {
		r.Seed = m.opt.Seed
		r.Environment.Pool = max(r.Environment.Pool, m.pool.maxUsed())
		r.Environment.CPUs = runtime.NumCPU()
		r.Environment.CPUIdle = m.run.CPUIdle()
		r.Environment.Privilege = currentPrivilege()
		for _, c := range m.cells {
			h := c.header()
			rc := r.CellInPhase(h.Detector, h.Fault, h.Side, h.Kind, h.Phase)
			rc.BudgetS, rc.PredictedS, rc.PredictedRule = h.BudgetS, h.PredictedS, h.PredictedRule
			rc.Expect, rc.Reasons = h.Expect, h.Reasons
			rc.Path = "direct"
		}
	})
}

// wantSysctls says whether a sample of c should read its namespaces'
// sysctls back: the first sample of each cell to get that far does.
func (m *Matrix) wantSysctls(c *Cell) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := c.Key()
	want := m.sysctlsNeeded[k]
	m.sysctlsNeeded[k] = false
	return want
}

// record stores a finished sample in the run's report: the only place a
// sample is kept.
func (m *Matrix) record(c *Cell, out outcome) {
	err := m.store.Update(func(r *report.Report) {
		k := c.Key()
		rc := r.CellInPhase(c.DetSpec.String(), c.FaultSpec.String(), k.Side, k.Kind, k.Phase)
		rc.Add(out.Sample, out.Mistakes)
		if out.Path != "" {
			rc.Path = out.Path
		}
		if out.Note != "" {
			rc.Note = out.Note
		}
		if out.Sysctls != nil {
			rc.Sysctls = out.Sysctls
		}
	})
	m.keep(err)
}

// wall is how long Run has measured, or measured.
func (m *Matrix) wall() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started.IsZero() {
		return 0
	}
	if m.finished.IsZero() {
		return time.Since(m.started)
	}
	return m.finished.Sub(m.started)
}

// Throughput is the run's samples so far against the wall time it has
// measured.
func (m *Matrix) Throughput() report.Throughput {
	t := report.Throughput{WallS: m.wall().Seconds()}
	for _, c := range m.cells {
		rec := c.Record()
		t.Add(&rec)
	}
	return t
}

// writeCalibration records the calibration so far and the wall time the
// report has been measuring: since the report began, which also holds when
// several matrices share one report (a gate suite's cells, one MeasureAll
// after another), or, for a report without a start, this matrix's own.
// Of matrices sharing a report, the calibration is the last one's.
func (m *Matrix) writeCalibration() {
	q, probes := m.CalibrationMs()
	wall := m.wall().Seconds()
	err := m.store.Update(func(r *report.Report) {
		if q != nil || len(probes) > 0 {
			r.Environment.CalibrationErrorMs = q
			r.Environment.Calibration = probes
		}
		m.writeProbe(&r.Environment)
		if !r.Started.IsZero() {
			wall = time.Since(r.Started).Seconds()
		}
		r.Environment.WallS = max(r.Environment.WallS, wall)
	})
	m.keep(err)
}
