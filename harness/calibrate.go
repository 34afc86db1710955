package harness

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// Calibration probes: how the harness measures its own timing error, in a
// fresh lab, under whatever load the pool is under.
//
// The harness's error is the time from a kernel event (a segment, a FIN,
// a socket error) to the instant an agent stamps it: a wake-up. Two probes
// time exactly that, with a packet between two agents in two hosts of a
// lab. A third, the scheduled decision, times a clock_nanosleep instead,
// and so adds the machine's timer lateness to the wake-up: on this virtual
// machine timers are late where packets are not (a C loop at SCHED_FIFO
// with idle CPUs polling: packet wake-ups p99 0.14–0.19 ms, timer wake-ups
// p99 0.63–1.02 ms, in the same runs). That lateness delays the kernel's
// own TCP timers and a heart-beat's timers just as much: it is part of
// what a detection takes on this machine, not an error of the stamp, so it
// is reported beside the harness's error and not in it.
const (
	calibrationFault = "graceful-close"
	probeScheduled   = "timer-lateness"
	probeFIN         = "fin-on-veth"
	probeDatagram    = "datagram-on-veth"
	// scheduledDecisions is how many scheduled decisions one calibration
	// lab measures.
	scheduledDecisions = 20
)

// calibrationProbe says what a probe times against what, and whether its
// errors are the harness's (stamp) or the machine's timer lateness.
type calibrationProbe struct {
	method string
	stamp  bool
}

var probeMethods = map[string]calibrationProbe{
	probeScheduled: {method: "the machine's timer lateness plus a wake-up, not in the harness error: the watcher agent is told to decide at a CLOCK_MONOTONIC instant 20 ms ahead (clock_nanosleep TIMER_ABSTIME); error = the instant it stamps on waking - the instant it was given; a command that reached the agent after its instant is left out"},
	probeFIN:       {method: "the peer's shutdown(SHUT_WR) instant against the watcher's read returning 0 over two veth hops; the FIN's own flight is a few µs, so this bounds the error from above", stamp: true},
	probeDatagram:  {method: "every 50 ms all run long, the peer agent stamps and sends a UDP datagram to the watcher agent over two veth hops; error = the instant the watcher's read returns - the instant before the send, which bounds the error from above by the datagram's few µs of flight", stamp: true},
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

// quantilesOf returns the quantiles of one probe's errors, or nil before
// its first.
func (c *calibration) quantilesOf(probe string) *report.Quantiles {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errors[probe]) == 0 {
		return nil
	}
	q := report.MergeableQuantilesOf(c.errors[probe])
	return &q
}

// quantiles returns the quantiles of the harness's error (the stamp
// probes together) and of every probe, or nil before any stamp error.
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
		if probeMethods[n].stamp {
			all = append(all, xs...)
		}
		probes = append(probes, report.CalibrationProbe{Name: n, Method: probeMethods[n].method, ErrorMs: report.MergeableQuantilesOf(xs)})
	}
	if len(all) == 0 {
		return nil, probes
	}
	q := report.MergeableQuantilesOf(all)
	return &q, probes
}

// calibrate measures the harness's own timing error in a fresh lab: (1)
// scheduled decisions, where the watcher agent is told to decide at a known
// CLOCK_MONOTONIC instant and the error is the instant it reports minus the
// one it was given; (2) a FIN on a veth, where the peer's shutdown() is
// timed against the watcher's read returning 0, whose true value is the few
// µs the FIN takes. It returns the FIN sample.
func (m *Matrix) calibrate(ctx context.Context) (report.Sample, error) {
	c, err := Resolve(CellConfig{Detector: "read-eof", Fault: calibrationFault, Side: protocol.SideClient})
	if err != nil {
		return report.Sample{}, err
	}
	lab, err := m.run.NewLab(ctx)
	if err != nil {
		return report.Sample{}, err
	}
	defer lab.Close()
	s, err := openSession(ctx, lab, c, nil, sessionOptions{Exe: m.opt.Exe})
	if err != nil {
		return report.Sample{}, err
	}
	var sched []float64
	for i := range scheduledDecisions {
		at := protocol.Now() + int64(20*time.Millisecond)
		ev, err := s.Watcher.Request(ctx, agentcmd.Command{Cmd: agentcmd.CmdDecideAt, AtNs: at, Seq: i}, agentcmd.EventDecided)
		if err != nil {
			return report.Sample{}, err
		}
		if ev.Msg != "late" {
			sched = append(sched, float64(ev.TNs-at)/1e6)
		}
	}
	closed, err := s.Peer.Request(ctx, agentcmd.Command{Cmd: agentcmd.CmdClose}, agentcmd.EventClosed)
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

// CalibrationMs returns the quantiles of the harness's timing error
// measured so far (the stamp probes together) and those of every probe,
// the machine's timer lateness included.
func (m *Matrix) CalibrationMs() (*report.Quantiles, []report.CalibrationProbe) {
	return m.calib.quantiles()
}
