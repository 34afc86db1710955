package harness_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/machine"
	"github.com/halfopen/halfopen/protocol"
)

// BenchmarkLabUpDown builds and tears down a 3-host lab (3 namespaces, 2 veth
// pairs, addresses, routes, sysctls) per iteration, and reports the median
// beside the mean. Goal: ≤ 5 ms median (iproute2 takes ~43 ms here).
func BenchmarkLabUpDown(b *testing.B) {
	run := requireLab(b)
	ctx := context.Background()
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		lab, err := run.NewLab(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := lab.Close(); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkTimingError measures the harness's own timing error with the
// parallel pool busy: b.N calibration labs (20 scheduled decisions and one
// FIN on a veth each) interleaved with 24 detection samples (keepalive and
// heart-beats against blackholes and host crashes) in a pool of 8 labs.
// Goal: p99 ≤ 1 ms.
func BenchmarkTimingError(b *testing.B) {
	run := requireLab(b)
	var cells []harness.CellConfig
	for _, d := range []string{"keepalive-tuned:idle=1s,intvl=1s,cnt=3", "heartbeat-inband:interval=100ms,misses=3"} {
		for _, f := range []string{"blackhole", "host-crash"} {
			for _, s := range []protocol.Side{protocol.SideClient, protocol.SideServer} {
				cells = append(cells, harness.CellConfig{Detector: d, Fault: f, Side: s, Samples: 3})
			}
		}
	}
	m, err := harness.NewMatrix(run, cells, harness.Options{Pool: 8, Seed: 1, Calibrations: max(b.N, 3)})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := m.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	q, probes := m.CalibrationMs()
	if q == nil {
		b.Fatal("no calibration sample")
	}
	b.ReportMetric(q.P50, "p50-ms")
	b.ReportMetric(q.P99, "p99-ms")
	b.ReportMetric(q.Max, "max-ms")
	for _, p := range probes {
		b.ReportMetric(p.ErrorMs.P99, p.Name+"-p99-ms")
	}
	for _, c := range m.Cells() {
		for _, s := range c.Record().Samples {
			if s.Error != "" {
				b.Errorf("%s: %s", c.Describe(), s.Error)
			}
		}
	}
}

// BenchmarkPool measures throughput against pool size, in one run: the
// same matrix (four detectors against a blackhole, a host crash, a FIN and
// a 1 s router restart, 32 samples) through a fixed pool of 4, 8, 16 and
// 32 labs, and through the pool sized by measurement. It reports samples
// per second, the ratio of the samples' own durations (detection time, the
// budget of a censored one, the window of a disturbance) to the wall time,
// the harness's timing error p99 in the same run, and the latency probe's
// p99 unloaded (the machine's baseline, measured once) and over the run,
// and its increase. Run it alone:
//
//	go test -run '^$' -bench Pool -benchtime 1x ./harness/
func BenchmarkPool(b *testing.B) {
	cellsOf := func(samples int) []harness.CellConfig {
		var cells []harness.CellConfig
		for _, d := range []string{"keepalive-tuned", "heartbeat-inband", "user-timeout", "read-eof"} {
			for _, f := range []string{"blackhole", "host-crash", "graceful-close", "router-restart:outage=1s"} {
				cells = append(cells, harness.CellConfig{Detector: d, Fault: f, Samples: samples})
			}
		}
		return cells
	}
	// The machine's baseline, measured once before any sub-benchmark, so
	// that none of them counts its 10 s in its wall time.
	if os.Getenv(machine.EnvBaseline) == "" {
		run := requireLab(b)
		bl, err := harness.MeasureBaseline(context.Background(), run, "", machine.BaselineDatagrams)
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(b.TempDir(), "baseline.json")
		if err := machine.WriteBaseline(path, bl); err != nil {
			b.Fatal(err)
		}
		b.Setenv(machine.EnvBaseline, path)
		b.Logf("unloaded probe p99 %.3f ms (n=%d), CPUs %.0f %% busy meanwhile, idle CPUs %s", bl.ErrorMs.P99, bl.ErrorMs.N, bl.Busy*100, bl.CPUIdle)
	}
	type variant struct {
		name          string
		pool, samples int
	}
	var variants []variant
	for _, pool := range []int{4, 8, 16, 32} {
		variants = append(variants, variant{fmt.Sprintf("pool=%d", pool), pool, 2})
	}
	// The measured pool, on the same 32 samples and on 128, long enough
	// for it to reach what the machine allows.
	variants = append(variants, variant{"pool=measured", 0, 2}, variant{"pool=measured/samples=128", 0, 8})
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			run := requireLab(b)
			for range b.N {
				m, err := harness.NewMatrix(run, cellsOf(v.samples), harness.Options{Pool: v.pool, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				if err := m.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				for _, c := range m.Cells() {
					for _, s := range c.Record().Samples {
						if s.Error != "" {
							b.Errorf("%s: %s", c.Describe(), s.Error)
						}
					}
				}
				t := m.Throughput()
				q, _ := m.CalibrationMs()
				b.ReportMetric(float64(t.Samples)/t.WallS, "samples/s")
				b.ReportMetric(t.Ratio(), "summed/wall")
				b.ReportMetric(float64(m.PoolSize()), "labs")
				if q != nil {
					b.ReportMetric(q.P99, "p99-ms")
				}
				e := m.Report().Environment
				if inc, ok := e.ProbeIncreaseMs(); ok {
					b.ReportMetric(e.ProbeUnloadedMs.P99, "unloaded-p99-ms")
					b.ReportMetric(e.ProbeLoadedMs.P99, "loaded-p99-ms")
					b.ReportMetric(inc, "increase-p99-ms")
				}
			}
		})
	}
}
