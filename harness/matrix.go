package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/halfopen/halfopen/report"
)

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
	// Report is the run's one store: every sample goes into it the moment
	// it is measured (default: a report kept in memory).
	Report *report.Writer
	// Progress is called after each sample (may be nil).
	Progress func(Progress)
	// LogDir keeps the output of service peers, a file per sample (default:
	// only their last lines, in sample errors).
	LogDir string
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

// Matrix runs cells through a bounded pool of fresh labs and records every
// sample, once, in its report.
type Matrix struct {
	run   *Run
	opt   Options
	cells []*Cell
	store *report.Writer
	calib calibration

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

// Report returns a copy of the run's report as it is now.
func (m *Matrix) Report() *report.Report { return m.store.Snapshot() }

// job is one sample of a cell, or a calibration lab.
type job struct {
	cell  *Cell
	index int
	seed  int64
	calib bool
}

// schedule interleaves samples across cells, and calibration labs across
// samples, so that a partial run covers the whole matrix and calibration
// sees the same load.
func (m *Matrix) schedule() []job {
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
	if err := m.writeHeader(); err != nil {
		return err
	}
	total := len(jobs)
	var done atomic.Int64
	work := make(chan job)
	var wg sync.WaitGroup
	for range m.opt.Pool {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				s := m.do(ctx, j)
				n := int(done.Add(1))
				if m.opt.Progress != nil {
					p := Progress{Done: n, Total: total, Sample: s}
					if !j.calib {
						p.Cell = j.cell
					}
					m.opt.Progress(p)
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
	m.mu.Lock()
	defer m.mu.Unlock()
	return errors.Join(context.Cause(ctx), m.storeErr)
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
		out = outcome{Sample: errSample(j.seed, err)}
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
	return m.store.Update(func(r *report.Report) {
		r.Seed = m.opt.Seed
		r.Environment.Pool = m.opt.Pool
		r.Environment.CPUs = runtime.NumCPU()
		for _, c := range m.cells {
			k := c.Key()
			rc := r.Cell(c.DetSpec.String(), c.FaultSpec.String(), k.Side, k.Kind)
			rc.BudgetS = c.Budget.Seconds()
			rc.PredictedS = c.Prediction.Seconds()
			rc.PredictedRule = c.Prediction.Rule
			rc.Expect = c.Expect
			rc.Reasons = c.Prediction.Reasons
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
		rc := r.Cell(c.DetSpec.String(), c.FaultSpec.String(), k.Side, k.Kind)
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

func (m *Matrix) writeCalibration() {
	q, probes := m.CalibrationMs()
	err := m.store.Update(func(r *report.Report) {
		r.Environment.CalibrationErrorMs = q
		r.Environment.Calibration = probes
	})
	m.keep(err)
}
