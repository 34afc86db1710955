package harness

import (
	"context"
	"math/rand/v2"
	"os"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSamplePhases measures, one sample at a time, what a sample
// costs besides its waiting, phase by phase: the lab's set-up (three
// namespaces, veths, addresses, routes, sysctls), the session (agents
// started and connected), the warm-up (its messages; mostly its sleeps),
// and the teardown (agents stopped, lab removed). For each phase it
// reports the median wall time and the median CPU time of this process
// and of its reaped children (the agents), which is what a pool's other
// labs wait behind. Run it alone:
//
//	go test -run '^$' -bench SamplePhases -benchtime 30x ./harness/
func BenchmarkSamplePhases(b *testing.B) {
	if err := Preflight(); err != nil {
		b.Skip(err)
	}
	run := NewRun()
	defer func() {
		if err := run.Close(); err != nil {
			b.Errorf("close run: %v", err)
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	c, err := Resolve(CellConfig{Detector: "keepalive-tuned", Fault: "blackhole"})
	if err != nil {
		b.Fatal(err)
	}
	phases := []string{"lab", "session", "warmup", "teardown"}
	wall := map[string][]float64{}
	cpu := map[string][]float64{}
	var agents []float64 // the reaped children's CPU time, per phase
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N {
		var lab *Lab
		var s *session
		steps := map[string]func() error{
			"lab": func() (err error) { lab, err = run.NewLab(ctx); return err },
			"session": func() (err error) {
				flt, _, err := NewFault(c.FaultSpec.String())
				if err != nil {
					return err
				}
				s, err = openSession(ctx, lab, c, flt, sessionOptions{Exe: exe})
				return err
			},
			"warmup": func() error { _, err := warmUp(ctx, s, rng); return err },
			"teardown": func() error {
				if err := s.End(); err != nil {
					return err
				}
				return lab.Close()
			},
		}
		for _, p := range phases {
			w0, c0 := time.Now(), cpuMs()
			_, a0 := cpuSplitMs()
			if err := steps[p](); err != nil {
				if lab != nil {
					_ = lab.Close()
				}
				b.Fatalf("%s: %v", p, err)
			}
			wall[p] = append(wall[p], float64(time.Since(w0).Microseconds())/1000)
			cpu[p] = append(cpu[p], cpuMs()-c0)
			_, a1 := cpuSplitMs()
			agents = append(agents, a1-a0)
		}
	}
	b.StopTimer()
	var sumWall, sumCPU float64
	for _, p := range phases {
		w, c := median(wall[p]), median(cpu[p])
		sumWall += w
		sumCPU += c
		b.ReportMetric(w, p+"-ms")
		b.ReportMetric(c, p+"-cpu-ms")
	}
	var agentsTotal float64
	for _, a := range agents {
		agentsTotal += a
	}
	b.ReportMetric(sumCPU, "cpu-ms/sample")
	b.ReportMetric(agentsTotal/float64(b.N), "agents-cpu-ms/sample")
}

// cpuMs is the CPU time (user and system) of this process and its reaped
// children so far, ms. A child's whole life is counted when it is reaped:
// the agents' start-up shows in the teardown's phase.
func cpuMs() float64 {
	self, children := cpuSplitMs()
	return self + children
}

// cpuSplitMs is cpuMs for this process and for its reaped children apart.
func cpuSplitMs() (self, children float64) {
	var s, c unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &s)
	_ = unix.Getrusage(unix.RUSAGE_CHILDREN, &c)
	ms := func(t unix.Timeval) float64 { return float64(t.Sec)*1e3 + float64(t.Usec)/1e3 }
	return ms(s.Utime) + ms(s.Stime), ms(c.Utime) + ms(c.Stime)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
