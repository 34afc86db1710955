package harness_test

import (
	"context"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
)

// runCells measures cells in a fresh run, without calibration, and returns
// them.
func runCells(t *testing.T, opt harness.Options, configs ...harness.CellConfig) []*harness.Cell {
	t.Helper()
	opt.Calibrations = -1
	return runMatrix(t, opt, configs...).Cells()
}

// runMatrix measures cells in a fresh run and returns the matrix.
func runMatrix(t *testing.T, opt harness.Options, configs ...harness.CellConfig) *harness.Matrix {
	t.Helper()
	run := requireLab(t)
	opt.Seed = 1
	m, err := harness.NewMatrix(run, configs, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMistakesKeepTheirSample: the EINTR trap drops a healthy connection
// in every sample of a signal storm; each mistake must lie on its own
// sample's time line, or T_MR mixes gaps between different samples.
func TestMistakesKeepTheirSample(t *testing.T) {
	cells := runCells(t, harness.Options{}, harness.CellConfig{Detector: "naive-recv", Fault: "signal-storm:rate=200,for=1s", Samples: 3})
	rec := cells[0].Record()
	lines := map[int]int{}
	for _, m := range rec.Mistakes {
		lines[m.Sample]++
	}
	for i, s := range rec.Samples {
		if s.Error != "" {
			t.Fatalf("sample %d: %s", i, s.Error)
		}
		if s.FalsePositives == 0 || lines[i] == 0 {
			t.Errorf("sample %d: %d false positives, %d mistakes on its time line (all: %v)", i, s.FalsePositives, lines[i], lines)
		}
	}
	if len(lines) != len(rec.Samples) {
		t.Errorf("mistakes lie on %d time lines, want one per sample (%d)", len(lines), len(rec.Samples))
	}
}

// TestCellSysctls: each cell records, per host, the sysctls its own labs
// ran with; a detector's retries2 left out is the namespace's tcp_retries2
// (the cell's sysctl), and the kernel gives up by it.
func TestCellSysctls(t *testing.T) {
	const key = "net.ipv4.tcp_retries2"
	probe := harness.CellConfig{Detector: "write-probe:every=100ms", Fault: "blackhole", Sysctls: map[string]string{key: "5"}}
	other := harness.CellConfig{Detector: "read-eof", Fault: "graceful-close", Sysctls: map[string]string{key: "7"}}
	cells := runCells(t, harness.Options{}, probe, other)
	for i, want := range []string{"5", "7"} {
		rec := cells[i].Record()
		for _, role := range []string{"peer", "router", "watcher"} {
			if got := rec.Sysctls[role][key]; got != want {
				t.Errorf("%s: %s/%s = %q, want %q (all: %v)", cells[i].Describe(), role, key, got, want, rec.Sysctls)
			}
		}
		if got := rec.Sysctls["watcher"]["net.ipv4.tcp_keepalive_time"]; got != "7200" {
			t.Errorf("%s: the watcher's tcp_keepalive_time read back %q, want the kernel's 7200", cells[i].Describe(), got)
		}
	}
	c := cells[0]
	s := c.Record().Samples[0]
	if s.Error != "" || !s.Detected || s.Reason != "ETIMEDOUT" {
		t.Fatalf("write-probe with tcp_retries2=5: %s, want ETIMEDOUT", s.Summary())
	}
	got := time.Duration(*s.Seconds * float64(time.Second))
	if got < c.Prediction.Lo || got > c.Prediction.Hi {
		t.Errorf("gave up after %v, outside the predicted [%v, %v] for tcp_retries2=5", got, c.Prediction.Lo, c.Prediction.Hi)
	}
	t.Logf("write-probe, tcp_retries2=5, blackhole: ETIMEDOUT after %v (predicted [%v, %v])", got, c.Prediction.Lo, c.Prediction.Hi)
}

// The latency probe and the calibration labs measure all three probes in
// a run: the harness's error from the two stamp probes, the machine's timer
// lateness beside it.
func TestCalibrationProbes(t *testing.T) {
	m := runMatrix(t, harness.Options{Pool: 2, Calibrations: 1}, harness.CellConfig{Detector: "read-eof", Fault: "graceful-close", Samples: 3})
	q, probes := m.CalibrationMs()
	n := map[string]int{}
	for _, p := range probes {
		n[p.Name] = p.ErrorMs.N
		if p.ErrorMs.P50 < 0 {
			t.Errorf("probe %s: negative error %+v, a stamp before its cause", p.Name, p.ErrorMs)
		}
	}
	if n["datagram-on-veth"] == 0 || n["fin-on-veth"] != 1 || n["timer-lateness"] == 0 {
		t.Fatalf("probe counts %v: want datagrams, one FIN and timer decisions", n)
	}
	if q == nil || q.N != n["datagram-on-veth"]+n["fin-on-veth"] {
		t.Errorf("harness error %+v, want the %d datagram and FIN errors", q, n["datagram-on-veth"]+n["fin-on-veth"])
	}
}
