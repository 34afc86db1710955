package harness

import (
	"context"
	"testing"
	"time"

	"github.com/halfopen/halfopen/report"
)

func TestNextPoolLimit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		limit, lo, hi int
		p99, busy     float64
		waited        bool
		want          int
	}{
		{"low error, idle CPUs, jobs waiting: grow", 8, 4, 64, 0.2, 0.3, true, 10},
		{"low error, nobody waiting: stay", 8, 4, 64, 0.2, 0.3, false, 8},
		{"between the marks: stay", 8, 4, 64, 0.5, 0.3, true, 8},
		{"high error: shrink by a quarter", 20, 4, 64, 1.5, 0.3, true, 15},
		{"high error at the floor: stay", 4, 4, 64, 3, 0.3, true, 4},
		{"low error at the ceiling: stay", 64, 4, 64, 0.1, 0.3, true, 64},
		{"low error but busy CPUs: stay", 20, 4, 64, 0.2, 0.7, true, 20},
		{"low error but saturated CPUs: shrink", 40, 4, 64, 0.2, 0.9, true, 30},
	} {
		if got := nextPoolLimit(tc.limit, tc.lo, tc.hi, tc.p99, tc.busy, tc.waited); got != tc.want {
			t.Errorf("%s: nextPoolLimit(%d, p99 %.1f ms, busy %.1f) = %d, want %d", tc.name, tc.limit, tc.p99, tc.busy, got, tc.want)
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
	p.adjust(0.1, 0.2) // low error, idle CPUs and a job waited: the limit grows
	if ok := <-got; !ok {
		t.Fatal("the waiting job was refused after the limit grew")
	}
	if p.maxUsed() != 1+poolStep {
		t.Errorf("highest limit %d, want %d", p.maxUsed(), 1+poolStep)
	}
	cctx, cancel := context.WithCancel(ctx)
	p.adjust(5, 0.2) // high error: back to the floor, 1, with 2 running
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
