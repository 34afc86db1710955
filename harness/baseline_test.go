package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/internal/machine"
	"github.com/halfopen/halfopen/report"
)

// BenchmarkProbeBaseline measures the latency probe with no other lab of
// the run (labs=0) and beside 2 per CPU built, started and torn down over
// and over, with idle CPUs polling (the run's PM QoS request) and halting
// (HALFOPEN_NO_IDLE_POLL=1), at the baseline's interval and at the run's
// probe interval: what the machine's p99 is made of before any load, and
// what load adds. window-p99 min/max are the p99s of the windows of
// probeWindow datagrams the pool's controller sees. Run it alone:
//
//	go test -run '^$' -bench ProbeBaseline -benchtime 1x ./harness/
func BenchmarkProbeBaseline(b *testing.B) {
	type variant struct {
		idle  string
		every time.Duration
		labs  int
	}
	var variants []variant
	for _, idle := range []string{"polling", "halting"} {
		variants = append(variants, variant{idle, baselineEvery, 0}, variant{idle, probeEvery, 0}, variant{idle, baselineEvery, 2 * runtime.NumCPU()})
	}
	for _, v := range variants {
		b.Run(fmt.Sprintf("idle=%s/every=%v/labs=%d", v.idle, v.every, v.labs), func(b *testing.B) {
			if err := Preflight(); err != nil {
				b.Skip(err)
			}
			if v.idle == "halting" {
				b.Setenv(envNoIdlePoll, "1")
			}
			run := NewRun()
			defer func() {
				if err := run.Close(); err != nil {
					b.Errorf("close run: %v", err)
				}
			}()
			for range b.N {
				bl, errs, err := measureProbe(context.Background(), run, "", machine.BaselineDatagrams, v.every, v.labs)
				if err != nil {
					b.Fatal(err)
				}
				lo, hi := windowP99s(errs)
				b.ReportMetric(bl.ErrorMs.P50, "p50-ms")
				b.ReportMetric(bl.ErrorMs.P99, "p99-ms")
				b.ReportMetric(bl.ErrorMs.Max, "max-ms")
				b.ReportMetric(float64(bl.ErrorMs.N), "n")
				b.ReportMetric(lo, "window-p99-min-ms")
				b.ReportMetric(hi, "window-p99-max-ms")
				b.ReportMetric(bl.Busy*100, "busy-%")
			}
		})
	}
}

// windowP99s are the smallest and largest p99 of consecutive windows of
// probeWindow errors.
func windowP99s(errs []float64) (lo, hi float64) {
	lo = -1
	for i := 0; i+probeWindow <= len(errs); i += probeWindow {
		p := report.QuantilesOf(errs[i : i+probeWindow]).P99
		if lo < 0 || p < lo {
			lo = p
		}
		hi = max(hi, p)
	}
	return max(lo, 0), hi
}

func TestWindowP99s(t *testing.T) {
	errs := make([]float64, 2*probeWindow+10)
	for i := range errs {
		errs[i] = 0.1
	}
	errs[3], errs[4], errs[5] = 2, 2, 2 // three outliers in the first window: its p99 (the 198th of 200)
	lo, hi := windowP99s(errs)
	if lo != 0.1 || hi != 2 {
		t.Errorf("window p99s %g..%g, want 0.1..2", lo, hi)
	}
}

// A process takes the baseline from HALFOPEN_BASELINE's file, keeps it,
// and measures none where it may not.
func TestBaselineFor(t *testing.T) {
	reset := func() {
		machineBaseline.mu.Lock()
		machineBaseline.b = nil
		machineBaseline.mu.Unlock()
	}
	reset()
	t.Cleanup(reset)
	dir := t.TempDir()
	t.Setenv(machine.EnvBaseline, filepath.Join(dir, "none.json"))
	if _, ok, err := baselineFor(context.Background(), nil, "", false); ok || err != nil {
		t.Fatalf("no file and no measuring: ok %v, err %v; want neither", ok, err)
	}
	path := filepath.Join(dir, "baseline.json")
	want := machine.Baseline{ErrorMs: report.Quantiles{P50: 0.5, P99: 1.0, N: 1000}}
	if err := machine.WriteBaseline(path, want); err != nil {
		t.Fatal(err)
	}
	t.Setenv(machine.EnvBaseline, path)
	got, ok, err := baselineFor(context.Background(), nil, "", true)
	if err != nil || !ok || got.ErrorMs != want.ErrorMs {
		t.Fatalf("from the file: %+v, ok %v, err %v", got, ok, err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := baselineFor(context.Background(), nil, "", true); err != nil || !ok || got.ErrorMs != want.ErrorMs {
		t.Errorf("once read, the baseline is the process's: %+v, ok %v, err %v", got, ok, err)
	}
	reset()
	if _, _, err := baselineFor(context.Background(), nil, "", true); err == nil || !strings.Contains(err.Error(), "not a probe baseline") {
		t.Errorf("a garbled file: %v, want it named as not a baseline", err)
	}
}
