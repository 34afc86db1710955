package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/halfopen/halfopen/internal/machine"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// The pool is sized against the machine's own unloaded baseline, not
// against constants tuned on one host: the latency probe's error with no
// lab running but its own is what this machine's wake-ups cost before any
// load (idle-state exits, the hypervisor, the tick), and the load's part of
// the error is what the probe measures above it. On the 2-core VM the
// first controller was tuned on, that baseline's p99 was about 0.36 ms; on
// others of the same class it sits at 1 ms with the CPUs idle, where an
// absolute 0.4 ms mark kept the pool at its floor for a whole run. Both
// are measured by the same probe cycle at the same cadence (probeSession.cycle).

// MeasureBaseline measures the probe's error in a lab of its own with
// nothing else of the run's: n cycles of the run's own probe, one every
// probeEvery (50 s for machine.BaselineDatagrams), each datagram stamped by
// the peer before its send and by the watcher on reading it.
func MeasureBaseline(ctx context.Context, run *Run, exe string, n int) (machine.Baseline, error) {
	b, _, err := measureProbe(ctx, run, exe, n, 0, nil)
	return b, err
}

// MeasureLoaded measures the same probe while labs goroutines each build
// a lab, start its agents and tear it down, over and over: the CPU time a
// sample costs that is not waiting, which is what raises the probe's error
// under a pool's load.
func MeasureLoaded(ctx context.Context, run *Run, exe string, n, labs int) (machine.Baseline, error) {
	exe, err := agentExe(exe)
	if err != nil {
		return machine.Baseline{}, err
	}
	b, _, err := measureProbe(ctx, run, exe, n, labs, func(ctx context.Context) error { return churnLab(ctx, run, exe) })
	return b, err
}

// measureProbe measures n probe cycles, one every probeEvery, with labs
// goroutines calling load over and over meanwhile, and returns the
// datagrams' quantiles and errors in the order measured.
func measureProbe(ctx context.Context, run *Run, exe string, n, labs int, load func(context.Context) error) (machine.Baseline, []float64, error) {
	if n < 100 {
		return machine.Baseline{}, nil, fmt.Errorf("a probe of %d datagrams has no meaningful p99: measure at least 100", n)
	}
	exe, err := agentExe(exe)
	if err != nil {
		return machine.Baseline{}, nil, err
	}
	p, err := openProbe(ctx, run, exe)
	if err != nil {
		return machine.Baseline{}, nil, fmt.Errorf("open the latency probe's lab: %w", err)
	}
	defer p.close()
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var loadErr error
	var loadMu sync.Mutex
	for range labs {
		wg.Go(func() {
			for loadCtx.Err() == nil {
				if err := load(loadCtx); err != nil && loadCtx.Err() == nil {
					loadMu.Lock()
					loadErr = errors.Join(loadErr, err)
					loadMu.Unlock()
					return
				}
			}
		})
	}
	defer func() { stopLoad(); wg.Wait() }()
	before, cpuErr := readCPUTimes()
	errs := make([]float64, 0, n)
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for seq := 1; len(errs) < n; seq++ {
		select {
		case <-ctx.Done():
			return machine.Baseline{}, nil, context.Cause(ctx)
		case <-t.C:
		}
		c, err := p.cycle(ctx, seq)
		if err != nil {
			return machine.Baseline{}, nil, fmt.Errorf("probe datagram %d: %w", seq, err)
		}
		if c.datagramOK {
			errs = append(errs, c.datagramMs)
		}
		if seq > 2*n {
			return machine.Baseline{}, nil, fmt.Errorf("%d of %d probe datagrams were lost", seq-len(errs), seq)
		}
	}
	after, err := readCPUTimes()
	stopLoad()
	wg.Wait()
	if loadErr != nil {
		return machine.Baseline{}, nil, fmt.Errorf("the load beside the probe: %w", loadErr)
	}
	b := machine.Baseline{ErrorMs: report.QuantilesOf(errs), CPUIdle: run.CPUIdle(), Measured: time.Now().UTC()}
	b.Busy = after.busySince(before)
	if cpuErr != nil || err != nil {
		b.Busy = 1 // the load is unknown: not known to be unloaded
	}
	return b, errs, nil
}

// agentExe is exe, or this program when exe is "": what labs re-execute
// as agents.
func agentExe(exe string) (string, error) {
	if exe != "" {
		return exe, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program to re-execute as agents: %w", err)
	}
	return exe, nil
}

// churnLab builds a lab, starts a sample's agents in it and tears it down.
func churnLab(ctx context.Context, run *Run, exe string) error {
	c, err := Resolve(CellConfig{Detector: "read-eof", Fault: calibrationFault, Side: protocol.SideClient})
	if err != nil {
		return err
	}
	lab, err := run.NewLab(ctx)
	if err != nil {
		return err
	}
	if _, err := openSession(ctx, lab, c, nil, sessionOptions{Exe: exe}); err != nil {
		_ = lab.Close()
		return err
	}
	return lab.Close()
}

// machineBaseline is the baseline the pool of this process measures
// against: the one in machine.EnvBaseline's file, or one measured now (and written
// there, if the variable names a file not yet written); measured once per
// process.
var machineBaseline struct {
	mu sync.Mutex
	b  *machine.Baseline
}

// baselineFor returns the process's baseline, measuring it with run's labs
// if need be and measure allows; ok is false when there is none.
func baselineFor(ctx context.Context, run *Run, exe string, measure bool) (b machine.Baseline, ok bool, err error) {
	machineBaseline.mu.Lock()
	defer machineBaseline.mu.Unlock()
	if machineBaseline.b != nil {
		return *machineBaseline.b, true, nil
	}
	path := os.Getenv(machine.EnvBaseline)
	if path != "" {
		b, err := machine.ReadBaseline(path)
		if err == nil {
			machineBaseline.b = &b
			return b, true, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return machine.Baseline{}, false, err
		}
	}
	if !measure {
		return machine.Baseline{}, false, nil
	}
	b, err = MeasureBaseline(ctx, run, exe, machine.BaselineDatagrams)
	if err != nil {
		return machine.Baseline{}, false, err
	}
	if path != "" {
		if err := machine.WriteBaseline(path, b); err != nil {
			return machine.Baseline{}, false, err
		}
	}
	machineBaseline.b = &b
	return b, true, nil
}
