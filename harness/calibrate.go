package harness

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/halfopen/halfopen/report"
)

// Calibration probes: how the harness measures its own timing error, in a
// fresh lab, under whatever load the pool is under.
const (
	calibrationFault = "graceful-close"
	probeScheduled   = "scheduled-decision"
	probeFIN         = "fin-on-veth"
	// scheduledDecisions is how many scheduled decisions one calibration
	// lab measures.
	scheduledDecisions = 20
)

// probeMethods says, per probe, what is timed against what.
var probeMethods = map[string]string{
	probeScheduled: "the watcher agent is told to decide at a CLOCK_MONOTONIC instant 20 ms ahead (clock_nanosleep TIMER_ABSTIME); error = the instant it stamps on waking - the instant it was given; a command that reached the agent after its instant is left out",
	probeFIN:       "the peer's shutdown(SHUT_WR) instant against the watcher's read returning 0 over two veth hops; the FIN's own flight is a few µs, so this bounds the error from above",
}

// calibration accumulates the harness's timing errors, in milliseconds.
type calibration struct {
	mu     sync.Mutex
	errors map[string][]float64 // probe name -> errors in ms
}

func (c *calibration) add(probe string, ms ...float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errors == nil {
		c.errors = map[string][]float64{}
	}
	c.errors[probe] = append(c.errors[probe], ms...)
}

// quantiles returns the error quantiles of every probe together and per
// probe, or nil before any.
func (c *calibration) quantiles() (*report.Quantiles, []report.CalibrationProbe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []float64
	var probes []report.CalibrationProbe
	names := make([]string, 0, len(c.errors))
	for n := range c.errors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		xs := c.errors[n]
		all = append(all, xs...)
		probes = append(probes, report.CalibrationProbe{Name: n, Method: probeMethods[n], ErrorMs: report.QuantilesOf(xs)})
	}
	if len(all) == 0 {
		return nil, nil
	}
	q := report.QuantilesOf(all)
	return &q, probes
}

// calibrate measures the harness's own timing error in a fresh lab: (1)
// scheduled decisions, where the watcher agent is told to decide at a known
// CLOCK_MONOTONIC instant and the error is the instant it reports minus the
// one it was given; (2) a FIN on a veth, where the peer's shutdown() is
// timed against the watcher's read returning 0, whose true value is the few
// µs the FIN takes. It returns the FIN sample.
func (m *Matrix) calibrate(ctx context.Context) (report.Sample, error) {
	c, err := Resolve(CellConfig{Detector: "read-eof", Fault: calibrationFault, Side: SideClient})
	if err != nil {
		return report.Sample{}, err
	}
	lab, err := m.run.NewLab(ctx)
	if err != nil {
		return report.Sample{}, err
	}
	defer lab.Close()
	s, err := OpenSession(ctx, lab, c, nil, SessionOptions{Exe: m.opt.Exe})
	if err != nil {
		return report.Sample{}, err
	}
	var sched []float64
	for i := range scheduledDecisions {
		at := Now() + int64(20*time.Millisecond)
		ev, err := s.Watcher.Request(ctx, Command{Cmd: CmdDecideAt, AtNs: at, Seq: i}, EventDecided)
		if err != nil {
			return report.Sample{}, err
		}
		if ev.Msg != "late" {
			sched = append(sched, float64(ev.TNs-at)/1e6)
		}
	}
	closed, err := s.Peer.Request(ctx, Command{Cmd: CmdClose}, EventClosed)
	if err != nil {
		return report.Sample{}, err
	}
	win := decisionWindow{start: s.WatcherStartNs, at: closed.TNs, end: closed.TNs + int64(2*time.Second)}
	fin, err := waitDecision(ctx, s.Watcher, win, report.Sample{InjectedNs: closed.TNs})
	if err != nil {
		return fin, err
	}
	if !fin.Detected {
		return fin, fmt.Errorf("the FIN was not seen: %s", fin.Reason)
	}
	m.calib.add(probeScheduled, sched...)
	m.calib.add(probeFIN, *fin.Seconds*1e3)
	return fin, nil
}

// CalibrationMs returns the calibration error quantiles measured so far
// (both probes together) and per probe.
func (m *Matrix) CalibrationMs() (*report.Quantiles, []report.CalibrationProbe) {
	return m.calib.quantiles()
}
