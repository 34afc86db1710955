package harness

import (
	"context"
	"testing"
	"time"

	"github.com/halfopen/halfopen/internal/machine"
	"github.com/halfopen/halfopen/report"
)

// The controller is a function of the tick's measurements: the probe's
// p99 over its window against the machine's unloaded baseline, the CPUs'
// busy fraction, and whether jobs waited.
func TestNextPoolLimit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		limit, lo, hi int
		m             poolMeasure
		want          int
		why           string
	}{
		// The machine of issue 17: an idle p99 of 1 ms, where the absolute
		// marks (grow below 0.4 ms) held the pool at its floor.
		{"1 ms baseline, no increase, idle CPUs, jobs waiting: grow", 4, 4, 64, poolMeasure{p99: 1.0, baseline: 1.0, busy: 0.2, waited: true}, 6, "grew"},
		{"1 ms baseline, increase 0.1 ms: grow", 8, 4, 64, poolMeasure{p99: 1.1, baseline: 1.0, busy: 0.2, waited: true}, 10, "grew"},
		{"1 ms baseline, increase 0.2 ms: stay", 8, 4, 64, poolMeasure{p99: 1.2, baseline: 1.0, busy: 0.2, waited: true}, 8, "held: probe"},
		{"1 ms baseline, increase 0.35 ms: shrink by a quarter", 20, 4, 64, poolMeasure{p99: 1.35, baseline: 1.0, busy: 0.2, waited: true}, 15, "shrank: probe"},
		{"baseline above 1 ms: the increase is what counts", 8, 4, 64, poolMeasure{p99: 1.3, baseline: 1.2, busy: 0.2, waited: true}, 10, "grew"},
		// A machine with a low baseline keeps its room under the margins.
		{"0.2 ms baseline, increase 0.1 ms: grow", 8, 4, 64, poolMeasure{p99: 0.3, baseline: 0.2, busy: 0.3, waited: true}, 10, "grew"},
		{"0.2 ms baseline, increase 0.25 ms: stay", 8, 4, 64, poolMeasure{p99: 0.45, baseline: 0.2, busy: 0.3, waited: true}, 8, "held: probe"},
		{"0.2 ms baseline, increase 0.4 ms: shrink", 20, 4, 64, poolMeasure{p99: 0.6, baseline: 0.2, busy: 0.3, waited: true}, 15, "shrank: probe"},
		// Where the baseline leaves room under 1 ms, 1 ms stays the mark.
		{"0.8 ms baseline, p99 0.95 ms: grow", 8, 4, 64, poolMeasure{p99: 0.95, baseline: 0.8, busy: 0.3, waited: true}, 10, "grew"},
		{"0.8 ms baseline, p99 1.05 ms: shrink at the absolute mark, increase or not", 20, 4, 64, poolMeasure{p99: 1.05, baseline: 0.8, busy: 0.3, waited: true}, 15, "shrank: probe"},
		{"0.9 ms baseline leaves no room: increase 0.15 ms grows past 1 ms", 8, 4, 64, poolMeasure{p99: 1.05, baseline: 0.9, busy: 0.3, waited: true}, 10, "grew"},
		// The CPU-busy limits and the bounds hold whatever the probe says.
		{"no increase but busy CPUs: stay", 20, 4, 64, poolMeasure{p99: 0.2, baseline: 0.2, busy: 0.7, waited: true}, 20, "held: CPU"},
		{"no increase but saturated CPUs: shrink", 40, 4, 64, poolMeasure{p99: 0.2, baseline: 0.2, busy: 0.9, waited: true}, 30, "shrank: CPU"},
		{"nobody waiting: stay", 8, 4, 64, poolMeasure{p99: 0.2, baseline: 0.2, busy: 0.3}, 8, "held: no job waited"},
		{"shrinking at the floor: stay", 4, 4, 64, poolMeasure{p99: 3, baseline: 0.2, busy: 0.3, waited: true}, 4, "shrank: probe"},
		{"growing at the ceiling: stay", 64, 4, 64, poolMeasure{p99: 0.2, baseline: 0.2, busy: 0.3, waited: true}, 64, "held: at its bound"},
	} {
		if got, why := poolDecision(tc.limit, tc.lo, tc.hi, tc.m); got != tc.want || why != tc.why {
			t.Errorf("%s: poolDecision(%d, %+v) = %d %q, want %d %q", tc.name, tc.limit, tc.m, got, why, tc.want, tc.why)
		}
	}
}

// The run of issue 17, tick by tick: a probe whose p99 sits at the
// machine's 1 ms baseline and CPUs mostly idle. The pool sized against the
// baseline reaches its ceiling; when the load then raises the p99 by more
// than the margin, it falls back, and grows again once the increase is
// gone.
func TestPoolGrowsOnAOneMillisecondMachine(t *testing.T) {
	lo, hi := 4, 64
	limit := 8
	for range 40 {
		limit = nextPoolLimit(limit, lo, hi, poolMeasure{p99: 1.0, baseline: 1.0, busy: 0.3, waited: true})
	}
	if limit != hi {
		t.Fatalf("after 40 ticks at the baseline the limit is %d, want the ceiling %d", limit, hi)
	}
	for range 3 {
		limit = nextPoolLimit(limit, lo, hi, poolMeasure{p99: 1.5, baseline: 1.0, busy: 0.5, waited: true})
	}
	if limit != 27 { // 64 → 48 → 36 → 27
		t.Fatalf("after 3 ticks 0.5 ms over the baseline the limit is %d, want 27", limit)
	}
	limit = nextPoolLimit(limit, lo, hi, poolMeasure{p99: 1.05, baseline: 1.0, busy: 0.5, waited: true})
	if limit != 29 {
		t.Errorf("with the increase back under the margin the limit is %d, want 29", limit)
	}
}

// The marks follow the baseline, are capped at the absolute mark where the
// baseline leaves room, and always leave the grow mark at or above the
// baseline: no machine's idle error alone keeps the pool from growing.
func TestPoolMarks(t *testing.T) {
	for b := 0.0; b <= 2; b += 0.01 {
		grow, shrink := poolMarks(b)
		if grow < b || shrink < grow {
			t.Errorf("baseline %.2f ms: marks grow %.2f, shrink %.2f", b, grow, shrink)
		}
		if shrink > b+poolShrinkMargin+1e-9 || grow > b+poolGrowMargin+1e-9 {
			t.Errorf("baseline %.2f ms: marks grow %.2f, shrink %.2f beyond the margins", b, grow, shrink)
		}
		if b+poolGrowMargin <= poolAbsoluteMs && shrink > poolAbsoluteMs {
			t.Errorf("baseline %.2f ms leaves room, yet the pool shrinks only above %.2f ms", b, shrink)
		}
	}
}

// TestPoolLimitsWhatRuns: no more jobs hold a slot than the limit, a
// raised limit lets a waiting job in at once, and a cancelled wait ends.
func TestPoolLimitsWhatRuns(t *testing.T) {
	p := newPool(1, 1, 4)
	ctx := context.Background()
	if !p.acquire(ctx) {
		t.Fatal("the first slot was refused")
	}
	got := make(chan bool, 1)
	go func() { got <- p.acquire(ctx) }()
	select {
	case <-got:
		t.Fatal("a second job ran past a limit of 1")
	case <-time.After(20 * time.Millisecond):
	}
	p.adjust(0.1, 0.2) // no baseline yet: the limit stays
	select {
	case <-got:
		t.Fatal("the limit grew before the pool had the machine's baseline")
	case <-time.After(20 * time.Millisecond):
	}
	p.setBaseline(report.Quantiles{P50: 0.05, P99: 0.1, N: 1000})
	p.adjust(0.1, 0.2) // no increase, idle CPUs and a job waited: the limit grows
	if ok := <-got; !ok {
		t.Fatal("the waiting job was refused after the limit grew")
	}
	if p.maxUsed() != 1+poolStep {
		t.Errorf("highest limit %d, want %d", p.maxUsed(), 1+poolStep)
	}
	cctx, cancel := context.WithCancel(ctx)
	p.adjust(5, 0.2) // a large increase: back to the floor, 1, with 2 running
	go func() { got <- p.acquire(cctx) }()
	cancel()
	if ok := <-got; ok {
		t.Error("a cancelled wait took a slot")
	}
}

// Each round of the schedule starts its longest samples first: a run
// whose last sample is a long one started last ends that much later.
func TestScheduleStartsTheLongestFirst(t *testing.T) {
	configs := []CellConfig{
		{Detector: "read-eof", Fault: "graceful-close", Samples: 2},                            // decides in µs
		{Detector: "keepalive-tuned:idle=1s,intvl=1s,cnt=3", Fault: "blackhole", Samples: 2},   // 4.5 s
		{Detector: "read-eof", Fault: "blackhole", Samples: 2},                                 // never: its budget
		{Detector: "heartbeat-inband:interval=100ms,misses=3", Fault: "blackhole", Samples: 2}, // 0.3–0.4 s
	}
	m, err := NewMatrix(NewRun(), configs, Options{Calibrations: -1})
	if err != nil {
		t.Fatal(err)
	}
	jobs := m.schedule()
	if len(jobs) != 8 {
		t.Fatalf("%d jobs, want 8", len(jobs))
	}
	for r := 0; r < 2; r++ {
		round := jobs[4*r : 4*r+4]
		for i := 1; i < len(round); i++ {
			if a, b := round[i-1].cell.expectedDuration(), round[i].cell.expectedDuration(); a < b {
				t.Errorf("round %d: %s (%v) before %s (%v)", r, round[i-1].cell.Describe(), a, round[i].cell.Describe(), b)
			}
		}
		for _, j := range round {
			if j.index != r {
				t.Errorf("round %d holds sample %d of %s", r, j.index, j.cell.Describe())
			}
		}
	}
	if d := jobs[0].cell.expectedDuration(); d < 4*time.Second {
		t.Errorf("the first job is expected to last %v: the keepalive cell or the censored one should lead", d)
	}
}

func TestCPUTimes(t *testing.T) {
	before, err := parseCPUTimes("cpu  100 10 50 800 20 0 5 15 40 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if before != (cpuTimes{busy: 180, total: 1000}) {
		t.Fatalf("parsed %+v: busy is user+nice+system+irq+softirq+steal, guest left out (it is in user)", before)
	}
	after := cpuTimes{busy: 240, total: 1100}
	if got := after.busySince(before); got != 0.6 {
		t.Errorf("busy %g over the tick, want 0.6", got)
	}
	if got := before.busySince(before); got != 0 {
		t.Errorf("busy %g over no time, want 0", got)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := parseCPUTimes(bad); err == nil {
			t.Errorf("parseCPUTimes(%q) accepted it", bad)
		}
	}
	if _, err := readCPUTimes(); err != nil {
		t.Errorf("this machine's /proc/stat: %v", err)
	}
}

// A report's wall time runs from its start to its last measurement, also
// when several matrices share it (a gate suite's cells, one after another)
// and each knows only its own.
func TestWallTimeOfASharedReport(t *testing.T) {
	started := time.Now().Add(-10 * time.Second)
	w := report.Memory(&report.Report{Schema: report.SchemaV1, Started: started})
	cfg := []CellConfig{{Detector: "read-eof", Fault: "graceful-close"}}
	for range 2 {
		m, err := NewMatrix(NewRun(), cfg, Options{Report: w, Calibrations: -1})
		if err != nil {
			t.Fatal(err)
		}
		m.started = time.Now().Add(-time.Second) // each measured about 1 s
		m.finished = time.Now()
		m.writeCalibration()
	}
	if got := w.Snapshot().Environment.WallS; got < 10 || got > 60 {
		t.Errorf("wall %g s, want the 10 s since the report began, not one matrix's 1 s", got)
	}
}

// A run whose pool may grow measures the machine's unloaded baseline
// before its first sample, sizes its pool against it, and records it and
// the probe over the run side by side; a second matrix of the process
// reuses it.
func TestMatrixRecordsTheProbeBaseline(t *testing.T) {
	if err := Preflight(); err != nil {
		t.Skip(err)
	}
	reset := func() {
		machineBaseline.mu.Lock()
		machineBaseline.b = nil
		machineBaseline.mu.Unlock()
	}
	reset()
	t.Cleanup(reset)
	t.Setenv(machine.EnvBaseline, "")
	run := NewRun()
	t.Cleanup(func() {
		if err := run.Close(); err != nil {
			t.Errorf("close run: %v", err)
		}
	})
	cfg := []CellConfig{{Detector: "read-eof", Fault: "graceful-close", Samples: 12}}
	m, err := NewMatrix(run, cfg, Options{Seed: 1, Calibrations: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := m.Report().Environment
	if e.ProbeUnloadedMs == nil || e.ProbeUnloadedMs.N != machine.BaselineDatagrams {
		t.Fatalf("unloaded probe %+v, want %d datagrams", e.ProbeUnloadedMs, machine.BaselineDatagrams)
	}
	if e.ProbeLoadedMs == nil || e.ProbeLoadedMs.N == 0 {
		t.Fatalf("loaded probe %+v, want the run's datagrams", e.ProbeLoadedMs)
	}
	if !m.pool.hasBaseline || m.pool.baseline != e.ProbeUnloadedMs.P99 {
		t.Errorf("the pool sized against %v (known %v), the report holds %v", m.pool.baseline, m.pool.hasBaseline, e.ProbeUnloadedMs.P99)
	}
	m2, err := NewMatrix(run, cfg, Options{Seed: 2, Calibrations: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := m2.Report().Environment.ProbeUnloadedMs; got == nil || *got != *e.ProbeUnloadedMs {
		t.Errorf("the second matrix's baseline %+v, want the first's %+v", got, e.ProbeUnloadedMs)
	}
}
