package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/internal/machine"
	"github.com/halfopen/halfopen/report"
)

// BenchmarkProbeBaseline measures the latency probe with no other lab of
// the run (load=none), and beside 2 per CPU of each load, over and over: a
// sample's labs with their agents built, started and torn down (labs), and
// bare labs built and torn down (bare-labs: namespaces, links and the lab's
// cgroup, the kernel's share of a sample), with the run's frozen cgroup
// and without it (bare-labs-unfrozen, cgroup.go); with idle CPUs polling
// (the run's PM QoS request) and halting (HALFOPEN_NO_IDLE_POLL=1): what
// the machine's p99 is made of before any load, and what each load adds.
// window-p99 min/max are the p99s of the windows of probeWindow datagrams
// the pool's controller sees. Run it alone:
//
//	go test -run '^$' -bench ProbeBaseline -benchtime 1x ./harness/
func BenchmarkProbeBaseline(b *testing.B) {
	bareLabs := func(run *Run) func(context.Context) error {
		return func(ctx context.Context) error {
			lab, err := run.NewLab(ctx)
			if err != nil {
				return err
			}
			return lab.Close()
		}
	}
	loads := []struct {
		name     string
		unfrozen bool
		load     func(run *Run, exe string) func(context.Context) error
	}{
		{"none", false, nil},
		{"labs", false, func(run *Run, exe string) func(context.Context) error {
			return func(ctx context.Context) error { return churnLab(ctx, run, exe) }
		}},
		{"bare-labs", false, func(run *Run, _ string) func(context.Context) error { return bareLabs(run) }},
		{"bare-labs-unfrozen", true, func(run *Run, _ string) func(context.Context) error { return bareLabs(run) }},
	}
	for _, idle := range []string{"polling", "halting"} {
		for _, l := range loads {
			b.Run(fmt.Sprintf("idle=%s/load=%s", idle, l.name), func(b *testing.B) {
				if err := Preflight(); err != nil {
					b.Skip(err)
				}
				if idle == "halting" {
					b.Setenv(envNoIdlePoll, "1")
				}
				run := NewRun()
				run.noFrozenCgroup = l.unfrozen
				defer func() {
					if err := run.Close(); err != nil {
						b.Errorf("close run: %v", err)
					}
				}()
				exe, err := agentExe("")
				if err != nil {
					b.Fatal(err)
				}
				labs, load := 0, func(context.Context) error { return nil }
				if l.load != nil {
					labs, load = 2*runtime.NumCPU(), l.load(run, exe)
				}
				for range b.N {
					bl, errs, err := measureProbe(context.Background(), run, exe, machine.BaselineDatagrams, labs, load)
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
