package machine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/halfopen/halfopen/report"
)

// The machine's baseline: the harness's latency probe's error with no lab
// running but its own (harness.MeasureBaseline measures it), what the lab
// pool is sized against.
const (
	// BaselineDatagrams is how many probe datagrams the baseline is
	// measured over: its p99 is then the 10th largest error, which a single
	// outlier does not move.
	BaselineDatagrams = 1000
	// EnvBaseline names a file holding the machine's baseline (JSON, as
	// `halfopen doctor --baseline FILE` writes it): every process of one
	// `make test-faults` then uses the one measured before any of them
	// loaded the machine. A named file that does not exist yet is
	// measured and written by the first process that needs it.
	EnvBaseline = "HALFOPEN_BASELINE"
	// baselineBusyMax is the CPU busy fraction above which a baseline is
	// not unloaded: something else ran meanwhile, and the report says so.
	baselineBusyMax = 0.25
)

// Baseline is the latency probe's error on this machine with no lab
// running but the probe's own.
type Baseline struct {
	// ErrorMs are the quantiles of the probe's datagram errors, with n.
	ErrorMs report.Quantiles `json:"error_ms"`
	// Busy is the CPUs' busy fraction while it was measured (the probe's
	// own agents included); above baselineBusyMax it was not unloaded.
	Busy float64 `json:"busy"`
	// CPUIdle says how idle CPUs waited meanwhile (Run.CPUIdle).
	CPUIdle string `json:"cpu_idle"`
	// Measured is when.
	Measured time.Time `json:"measured"`
}

// Unloaded says whether nothing else kept the CPUs busy meanwhile.
func (b Baseline) Unloaded() bool { return b.Busy <= baselineBusyMax }

// ReadBaseline reads a baseline written by WriteBaseline.
func ReadBaseline(path string) (Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Baseline{}, fmt.Errorf("read the machine's baseline: %w", err)
	}
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return Baseline{}, fmt.Errorf("%s is not a probe baseline: %w", path, err)
	}
	if b.ErrorMs.N < 100 || badMs(b.ErrorMs.P50) || badMs(b.ErrorMs.P99) || b.ErrorMs.P99 < b.ErrorMs.P50 {
		return Baseline{}, fmt.Errorf("%s is not a probe baseline: it holds n=%d, p50 %g ms, p99 %g ms", path, b.ErrorMs.N, b.ErrorMs.P50, b.ErrorMs.P99)
	}
	return b, nil
}

func badMs(v float64) bool { return !(v >= 0 && v < 1e6) }

// WriteBaseline writes b to path (whole or not at all: processes that
// start meanwhile read either nothing or all of it).
func WriteBaseline(path string, b Baseline) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the baseline: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".baseline-*")
	if err != nil {
		return fmt.Errorf("write the baseline: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write the baseline: %w", err)
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write the baseline: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write the baseline: %w", err)
	}
	return nil
}
