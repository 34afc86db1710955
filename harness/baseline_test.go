package harness

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkProbeBaseline measures the latency probe with no other lab of
// the run, idle CPUs polling (the run's PM QoS request) and halting
// (HALFOPEN_NO_IDLE_POLL=1), at the baseline's interval and at the run's
// probe interval: whether the machine's p99 is made by idle-state exits or
// by the interval, before any load. Run it alone:
//
//	go test -run '^$' -bench ProbeBaseline -benchtime 1x ./harness/
func BenchmarkProbeBaseline(b *testing.B) {
	for _, idle := range []string{"polling", "halting"} {
		for _, every := range []time.Duration{baselineEvery, probeEvery} {
			b.Run(fmt.Sprintf("idle=%s/every=%v", idle, every), func(b *testing.B) {
				if err := Preflight(); err != nil {
					b.Skip(err)
				}
				if idle == "halting" {
					b.Setenv(EnvNoIdlePoll, "1")
				}
				run := NewRun()
				defer func() {
					if err := run.Close(); err != nil {
						b.Errorf("close run: %v", err)
					}
				}()
				for range b.N {
					bl, err := measureBaselineEvery(context.Background(), run, "", BaselineDatagrams, every)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(bl.ErrorMs.P50, "p50-ms")
					b.ReportMetric(bl.ErrorMs.P99, "p99-ms")
					b.ReportMetric(bl.ErrorMs.Max, "max-ms")
					b.ReportMetric(float64(bl.ErrorMs.N), "n")
					b.ReportMetric(bl.Busy*100, "busy-%")
				}
			})
		}
	}
}
