package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/halfopen/halfopen/report"
)

// outcome is everything one sample measured, recorded once in the run's
// report by the Matrix.
type outcome struct {
	Sample   report.Sample
	Mistakes []report.Mistake
	// Path and Note describe the sample's lab ("direct" or "toxiproxy"; what
	// the fault hid); Sysctls are what its namespaces ran with.
	Path, Note string
	Sysctls    map[string]map[string]string
}

// errSample is a sample the harness could not measure.
func errSample(seed int64, err error) report.Sample {
	return report.Sample{Reason: "error", Error: err.Error(), Seed: seed}
}

// warmUpMessages is how many messages the peer sends before the idle time.
const warmUpMessages = 3

// measure measures one sample of a cell in a fresh lab: a session, a
// warm-up, a seeded idle time, the fault, then the decision (or the
// observation of a disturbance). An error means the sample could not be
// measured; it names the step.
func (m *Matrix) measure(ctx context.Context, j job) (out outcome, err error) {
	c := j.cell
	rng := rand.New(rand.NewPCG(uint64(j.seed), 0x68616c666f70656e))
	lab, err := m.run.NewLab(ctx)
	if err != nil {
		return out, err
	}
	defer lab.Close()
	evidence, err := m.startEvidence(ctx, lab)
	if err != nil {
		return out, err
	}
	// Samples of different cells may share a seed (a gate measures one cell
	// per matrix): the name carries the cell's own short hash.
	name := fmt.Sprintf("%s-%s-%d", c.FaultSpec.Name, c.shortID(), j.seed)
	defer func() {
		// The capture is judged with the sample, error or not.
		if err != nil {
			out.Sample = errSample(j.seed, err)
		}
		if kerr := m.keepEvidence(c, evidence, name, &out.Sample); kerr != nil && err == nil {
			err = fmt.Errorf("keep the capture: %w", kerr)
		}
	}()
	// Each sample gets its own fault, so a fault may keep what it installed
	// in its fields while samples of the same cell run in parallel labs.
	flt, _, err := NewFault(c.FaultSpec.String())
	if err != nil {
		return out, err
	}
	s, err := OpenSession(ctx, lab, c, flt, SessionOptions{
		Exe: m.opt.Exe, Reconnect: c.Kind == report.KindDisturbance,
		LogDir: m.opt.LogDir, Name: name,
	})
	if err != nil {
		return out, err
	}
	defer func() {
		// Before the lab goes: a foreign program must end on SIGTERM within
		// ProgramGrace and must not have printed a line outside protocol v1.
		if endErr := s.End(); endErr != nil && err == nil {
			err = endErr
		}
		if err != nil && s.Service != nil && s.Peer != nil {
			err = fmt.Errorf("%w; service %s last said: %s", err, s.Service.Name, lastLines(s.Peer.Stderr(), 5))
		}
	}()
	if m.wantSysctls(c) {
		if out.Sysctls, err = s.ReadSysctls(); err != nil {
			return out, err
		}
	}
	out.Path = lab.PathName
	if n, ok := flt.(Noter); ok {
		out.Note = n.Note(lab)
	}
	last, err := warmUp(ctx, s, rng)
	if err != nil {
		return out, fmt.Errorf("warm-up: %w", err)
	}
	idle := c.Config.Idle
	if !c.Config.FixedIdle {
		idle = time.Duration(rng.Int64N(int64(MaxRandomIdle) + 1))
	}
	if err := waitQuiet(ctx, s.Watcher, last+int64(idle)); err != nil {
		return out, err
	}
	heal, at, err := flt.Inject(ctx, lab)
	if err != nil {
		if early := decidedAlready(s.Watcher); early != "" {
			// The connection was gone before the fault could act on it.
			return out, fmt.Errorf("the watcher decided %q before the fault (a false positive while healthy), so inject %s failed: %w", early, c.FaultSpec, err)
		}
		return out, fmt.Errorf("inject %s: %w", c.FaultSpec, err)
	}
	base := report.Sample{Seed: j.seed, IdleS: idle.Seconds(), InjectedNs: at}
	if c.Kind == report.KindDisturbance {
		out.Sample, out.Mistakes, err = observe(ctx, s, flt, heal, at, base)
		return out, err
	}
	out.Sample, err = waitDecision(ctx, s.Watcher, decisionWindow{start: s.WatcherStartNs, at: at, end: at + int64(c.Budget)}, base)
	if err != nil {
		return out, err
	}
	if pr, ok := c.Detector.(PeerReporter); ok {
		out.Sample.PeerSaw = pr.PeerSaw(s.Peer)
	}
	return out, nil
}

// warmUp has the built-in peer (the reference text's client "sending at
// irregular times") send a few messages at seeded random gaps, and returns
// the instant of the last: the idle time counts from it. A foreign peer is
// not told anything; the idle time counts from now.
func warmUp(ctx context.Context, s *Session, rng *rand.Rand) (last int64, err error) {
	last = Now()
	if !s.Builtin {
		return last, nil
	}
	for i := range warmUpMessages {
		time.Sleep(time.Duration(20+rng.IntN(100)) * time.Millisecond)
		ev, err := s.Peer.Request(ctx, Command{Cmd: CmdSend, Bytes: 32 + rng.IntN(200), Seq: i}, EventSent)
		if err != nil {
			return 0, err
		}
		last = ev.TNs
	}
	return last, nil
}

// waitQuiet waits until the instant `until`, failing early if the watcher
// decides (a false positive while healthy) or ends before it.
func waitQuiet(ctx context.Context, w *Process, until int64) error {
	d := time.Duration(until - Now())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// Sleep the last sub-millisecond on the clock itself.
			SleepUntil(until)
			return nil
		case ev, ok := <-w.Events():
			if !ok {
				return w.endedError("before the fault")
			}
			if ev.Event == EventDead {
				return fmt.Errorf("the watcher decided %q before the fault (a false positive while healthy)", ev.Reason)
			}
		}
	}
}

// decidedAlready returns the reason of a decision the watcher had made and
// halfopen had not yet read, or "": it waits a moment for one on its way.
func decidedAlready(w *Process) string {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				return ""
			}
			if ev.Event == EventDead {
				return ev.Reason
			}
		case <-t.C:
			return ""
		}
	}
}

// decisionGrace is how long a decision stamped before the budget's end may
// take to reach the orchestrator (a loaded machine delays the pipe, not the stamp).
const decisionGrace = 250 * time.Millisecond

// decisionWindow holds the CLOCK_MONOTONIC instants a decision is judged
// against: the watcher's start, the injection, and the budget's end.
type decisionWindow struct {
	start, at, end int64
}

// judge decides what a "dead" stamped ev.TNs and received at `received`
// (both CLOCK_MONOTONIC) makes of the sample: detected, censored ("budget")
// or an error. A stamp before the watcher started, or after halfopen
// received it, is not CLOCK_MONOTONIC: a lying clock is an error, never a
// number and never a censoring.
func (w decisionWindow) judge(ev Event, received int64, s report.Sample) (report.Sample, error) {
	switch {
	case ev.TNs < w.start:
		return s, fmt.Errorf("the watcher stamped its decision %q %.3f s before it was started: its t_ns is not CLOCK_MONOTONIC", ev.Reason, Seconds(w.start-ev.TNs))
	case ev.TNs > received:
		return s, fmt.Errorf("the watcher stamped its decision %q %.3f s after halfopen received it: its t_ns is not CLOCK_MONOTONIC", ev.Reason, Seconds(ev.TNs-received))
	case ev.TNs < w.at:
		return s, fmt.Errorf("the watcher decided %q %.3f s before the fault", ev.Reason, Seconds(w.at-ev.TNs))
	case ev.TNs > w.end:
		s.Reason = "budget"
		return s, nil
	}
	secs := Seconds(ev.TNs - w.at)
	s.Detected, s.Seconds, s.Reason, s.DecidedNs = true, &secs, ev.Reason, ev.TNs
	return s, nil
}

// waitDecision waits for the watcher's "dead" until the budget's end; a
// sample with no decision in time is censored.
func waitDecision(ctx context.Context, w *Process, win decisionWindow, s report.Sample) (report.Sample, error) {
	deadline := time.NewTimer(time.Duration(win.end - Now()))
	defer deadline.Stop()
	// The decision's own instant, not its arrival, says whether it came in
	// time: after the deadline, events already on their way are read for a
	// grace period, and one stamped before the deadline still counts.
	var grace <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case <-deadline.C:
			grace = time.After(decisionGrace)
		case <-grace:
			s.Reason = "budget"
			return s, nil
		case ev, ok := <-w.Events():
			if !ok {
				return s, w.endedError("before deciding")
			}
			switch ev.Event {
			case EventDead:
				return win.judge(ev, Now(), s)
			case EventError:
				return s, fmt.Errorf("watcher: %s", ev.Msg)
			}
		}
	}
}
