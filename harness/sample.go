package harness

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/tcprules"
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

// warmUpMessages is how many messages the peer sends before the idle
// time, warmUpGapMin to warmUpGapMin+warmUpGapSpread apart: irregular
// times, as the reference text's clients send, kept short because a lab
// held for a warm-up is a lab the pool cannot give another sample (the
// gaps were 20–120 ms: 244 ms of each sample, by make bench-phases).
const (
	warmUpMessages  = 3
	warmUpGapMin    = 5 * time.Millisecond
	warmUpGapSpread = 30 * time.Millisecond
)

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
	var sess *session
	defer func() {
		// The capture and the log are judged with the sample, error or not.
		if err != nil {
			out.Sample = errSample(j.seed, err)
		}
		if lerr := keepLog(sess, m.logDir(), m.store.Path(), name, c.surprise, &out.Sample); lerr != nil && err == nil {
			err = lerr
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
	s, err := openSession(ctx, lab, c, flt, sessionOptions{
		Exe: m.opt.Exe, Reconnect: c.Kind == report.KindDisturbance,
		LogDir: m.opt.LogDir, Name: name,
	})
	if err != nil {
		return out, err
	}
	sess = s
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
	out.Path = s.Conn.PathName
	if n, ok := flt.(Noter); ok {
		out.Note = n.Note(lab, s.Conn)
	}
	last, err := warmUp(ctx, s, rng)
	if err != nil {
		return out, fmt.Errorf("warm-up: %w", err)
	}
	f := s.watchedFlow()
	reader, err := openConnReader(lab, f)
	if err != nil {
		return out, err
	}
	defer reader.close()
	inject := func() (Heal, int64, error) {
		heal, at, err := flt.Inject(ctx, lab, s.Conn)
		if err != nil {
			if early := decidedAlready(s.Watcher); early != "" {
				// The connection was gone before the fault could act on it.
				return nil, 0, fmt.Errorf("the watcher decided %q before the fault (a false positive while healthy), so inject %s failed: %w", early, c.FaultSpec, err)
			}
			return nil, 0, fmt.Errorf("inject %s: %w", c.FaultSpec, err)
		}
		return heal, at, nil
	}
	fa, err := aimFault(ctx, c, s, reader, rng, j, last, inject)
	if err != nil {
		return out, err
	}
	at := fa.at
	base := report.Sample{Seed: j.seed, IdleS: fa.idle.Seconds(), InjectedNs: at, Phase: c.Config.Phase}
	if fa.readErr != nil {
		base.State = &tcprules.ConnState{Note: "could not read the connection's state at the fault: " + fa.readErr.Error()}
	} else {
		st := fa.reading.stateAt(at, fa.source)
		if fa.note != "" {
			addNote(&st, fa.note)
		}
		base.State, base.Phase = &st, st.Phase()
		base.Forecast = forecastSample(c, flt, s.Conn.PathName, st, at)
		if evidence != nil {
			defer func() {
				// Judged once the sample is over, against every packet the
				// router saw up to the read.
				if out.Sample.State != nil && evidence.Stop() == nil {
					crossCheck(out.Sample.State, evidence.Timeline(), f, at, fa.reading.atNs)
				}
			}()
		}
	}
	if c.Kind == report.KindDisturbance {
		out.Sample, out.Mistakes, err = observe(ctx, s, flt, fa.heal, at, base)
		return out, err
	}
	win := decisionWindow{start: s.WatcherStartNs, at: at, end: at + int64(c.Budget)}
	if fa.dead != nil {
		out.Sample, err = win.judge(*fa.dead, protocol.Now(), base)
	} else {
		out.Sample, err = waitDecision(ctx, s.Watcher, win, base)
	}
	if err != nil {
		return out, err
	}
	forecastFromReturn(c, flt, &out.Sample)
	if fc := out.Sample.Forecast; fc != nil && !fc.Never && out.Sample.Detected && out.Sample.Seconds != nil {
		// Nanoseconds, as the instants it comes from.
		r := math.Round((*out.Sample.Seconds-fc.AtS)*1e9) / 1e9
		out.Sample.ResidualS = &r
	}
	if pr, ok := c.Detector.(peerReporter); ok {
		out.Sample.PeerSaw = pr.PeerSaw(s.Peer)
	}
	return out, nil
}

// aimed is where a sample's fault landed: after which idle time, at which
// instant, what TCP_INFO said then (or why it could not be read), and a
// decision the watcher made before its in-flight request was written.
type aimed struct {
	idle         time.Duration
	heal         Heal
	at           int64
	reading      tcpReading
	readErr      error
	source, note string
	dead         *protocol.Event
}

// aimFault waits for the cell's phase and injects the fault: after the
// sample's idle time counted from the last exchange (last), or while a
// request is unacknowledged (halfopen's watcher writes it into the fault;
// a foreign watcher's own request is caught by polling sock_diag). It
// reads the watched flow's TCP_INFO right after.
func aimFault(ctx context.Context, c *Cell, s *session, reader *connReader, rng *rand.Rand, j job, last int64, inject func() (Heal, int64, error)) (aimed, error) {
	fa := aimed{source: sourceTCPInfo}
	var err error
	switch {
	case c.Config.Phase == tcprules.PhaseInFlight && s.Builtin:
		// halfopen's watcher only reads; it writes a request on command.
		// On veth its peer acknowledges within tens of µs, before any
		// fault could be injected, so the fault comes first and the
		// request is written into it at once.
		fa.idle = c.idleOf(rng, j)
		if err := waitQuiet(ctx, s.Watcher, last+int64(fa.idle)); err != nil {
			return fa, err
		}
		if fa.heal, fa.at, err = inject(); err != nil {
			return fa, err
		}
		var sent protocol.Event
		sent, fa.dead, err = writeRequestInFlight(ctx, s.Watcher)
		if err != nil {
			return fa, err
		}
		if fa.dead == nil {
			fa.source = sourceAfterRequest
			fa.note = fmt.Sprintf("read after the watcher's request, written %.1f ms after the fault (on veth the peer acknowledges within µs, so the fault came first)", float64(sent.TNs-fa.at)/1e6)
			if sent.Msg != "" {
				fa.note += "; the request's " + sent.Msg
			}
		}
		fa.reading, fa.readErr = reader.read()
	case c.Config.Phase == tcprules.PhaseInFlight:
		// A foreign watcher writes its requests itself. The peer's pure
		// ACKs to it are held on the router (holdFlow), so that a request
		// is still unacknowledged when the fault lands, however late the
		// machine lets the fault be injected.
		return aimAtForeignRequest(ctx, s, reader, inject)
	default:
		if !s.Builtin {
			// A foreign watcher may still be exchanging its first request:
			// the idle time counts from its last exchange, once quiet.
			t, ok, werr := reader.waitFlow(ctx, s.Watcher, inFlightWait, quiet)
			switch {
			case werr != nil:
				return fa, werr
			case ok:
				last = t.lastExchange()
			default:
				fa.note = fmt.Sprintf("the flow was never quiet for %v within %v of connecting; the idle time counts from then", quietFor, inFlightWait)
				last = protocol.Now()
			}
		}
		fa.idle = c.idleOf(rng, j)
		if err := waitQuiet(ctx, s.Watcher, last+int64(fa.idle)); err != nil {
			return fa, err
		}
		if fa.heal, fa.at, err = inject(); err != nil {
			return fa, err
		}
		fa.reading, fa.readErr = reader.read()
	}
	return fa, nil
}

// aimAtForeignRequest lands the fault while a foreign watcher's request is
// unacknowledged. The peer's pure ACKs to the watcher are held on the
// router (holdFlow: from before a dialing watcher connects, or from now
// for a listening one) while sock_diag is read every ms until data is in
// flight; the fault is injected, and the hold released at once after it.
func aimAtForeignRequest(ctx context.Context, s *session, reader *connReader, inject func() (Heal, int64, error)) (aimed, error) {
	fa := aimed{source: sourceTCPInfo}
	if s.hold == nil {
		h, err := holdFlow(s.Lab, reader.flow)
		if err != nil {
			return fa, err
		}
		s.hold = h
	}
	defer s.releaseHold()
	t, ok, err := reader.waitFlow(ctx, s.Watcher, inFlightWait, inFlight)
	if err != nil {
		return fa, err
	}
	if !ok {
		return fa, fmt.Errorf("the watcher had no request in flight within %v of connecting (it wrote nothing its peer left unanswered, though the peer's ACKs were held), so the in-flight phase cannot be measured", inFlightWait)
	}
	if fa.heal, fa.at, err = inject(); err != nil {
		return fa, err
	}
	dropped, err := s.releaseHold()
	if err != nil {
		return fa, err
	}
	fa.note = fmt.Sprintf("the peer's pure ACKs to the watcher were held on the router for %.1f ms, until just after the fault (%d dropped); the fault was injected %.1f ms after sock_diag first saw %d unacknowledged", float64(fa.at-s.hold.sinceNs)/1e6, dropped, float64(fa.at-t.atNs)/1e6, t.info.Unacked)
	fa.reading, fa.readErr = reader.read()
	return fa, nil
}

// idleOf is a sample's idle time before the fault: the cell's fixed one,
// or a draw within the sample's stratum of [0, MaxRandomIdle].
func (c *Cell) idleOf(rng *rand.Rand, j job) time.Duration {
	if c.Config.FixedIdle {
		return c.Config.Idle
	}
	return stratifiedIdle(rng, j.stratum, c.Config.Samples)
}

// inFlightRequest is the size of the request halfopen's watcher writes for
// the in-flight phase (a BLPOP of go-redis is 43 bytes).
const inFlightRequest = 43

// writeRequestInFlight has halfopen's watcher write a request and returns
// its answer; a decision the watcher made first is returned instead (the
// fault ended the connection before the request), to be judged.
func writeRequestInFlight(ctx context.Context, w *Process) (sent protocol.Event, dead *protocol.Event, err error) {
	if err := w.Send(agentcmd.Command{Cmd: cmdWrite, Bytes: inFlightRequest}); err != nil {
		return protocol.Event{}, nil, fmt.Errorf("watcher: write a request: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	ev, err := w.WaitEvent(wctx, agentcmd.EventSent, protocol.EventDead)
	if err != nil {
		return protocol.Event{}, nil, fmt.Errorf("watcher: write a request: %w", err)
	}
	if ev.Event == protocol.EventDead {
		return protocol.Event{}, &ev, nil
	}
	return ev, nil, nil
}

// warmUp has the built-in peer (the reference text's client "sending at
// irregular times") send a few messages at seeded random gaps, and returns
// the instant of the last: the idle time counts from it. A foreign peer is
// not told anything; the idle time counts from now.
func warmUp(ctx context.Context, s *session, rng *rand.Rand) (last int64, err error) {
	last = protocol.Now()
	if !s.Builtin {
		return last, nil
	}
	for i := range warmUpMessages {
		time.Sleep(warmUpGapMin + time.Duration(rng.Int64N(int64(warmUpGapSpread))))
		ev, err := s.Peer.Request(ctx, agentcmd.Command{Cmd: agentcmd.CmdSend, Bytes: 32 + rng.IntN(200), Seq: i}, agentcmd.EventSent)
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
	d := time.Duration(until - protocol.Now())
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
			protocol.SleepUntil(until)
			return nil
		case ev, ok := <-w.Events():
			if !ok {
				return w.endedError("before the fault")
			}
			if ev.Event == protocol.EventDead {
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
			if ev.Event == protocol.EventDead {
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
func (w decisionWindow) judge(ev protocol.Event, received int64, s report.Sample) (report.Sample, error) {
	switch {
	case ev.TNs < w.start:
		return s, fmt.Errorf("the watcher stamped its decision %q %.3f s before it was started: its t_ns is not CLOCK_MONOTONIC", ev.Reason, protocol.Seconds(w.start-ev.TNs))
	case ev.TNs > received:
		return s, fmt.Errorf("the watcher stamped its decision %q %.3f s after halfopen received it: its t_ns is not CLOCK_MONOTONIC", ev.Reason, protocol.Seconds(ev.TNs-received))
	case ev.TNs < w.at:
		return s, fmt.Errorf("the watcher decided %q %.3f s before the fault", ev.Reason, protocol.Seconds(w.at-ev.TNs))
	case ev.TNs > w.end:
		s.Reason = "budget"
		return s, nil
	}
	secs := protocol.Seconds(ev.TNs - w.at)
	s.Detected, s.Seconds, s.Reason, s.DecidedNs = true, &secs, ev.Reason, ev.TNs
	return s, nil
}

// waitDecision waits for the watcher's "dead" until the budget's end; a
// sample with no decision in time is censored.
func waitDecision(ctx context.Context, w *Process, win decisionWindow, s report.Sample) (report.Sample, error) {
	deadline := time.NewTimer(time.Duration(win.end - protocol.Now()))
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
			case protocol.EventDead:
				return win.judge(ev, protocol.Now(), s)
			case agentcmd.EventError:
				return s, fmt.Errorf("watcher: %s", ev.Msg)
			}
		}
	}
}

// forecastFromReturn forecasts a sample again once it is over: a
// rebooted host is back some tens of ms after its `down` (its namespace,
// links and addresses are made anew), and the watcher's first segment
// after that instant, not after `down`, meets the RST.
func forecastFromReturn(c *Cell, flt Fault, s *report.Sample) {
	if _, ok := flt.(returner); !ok || s.Forecast == nil || s.State == nil {
		return
	}
	if fc := forecastSample(c, flt, "", *s.State, s.InjectedNs); fc != nil {
		s.Forecast = fc
	}
}

// returnBlur is how far from its stamped return a rebooted host's answer
// is uncertain: the stamp follows the namespace's links, addresses and the
// removal of its isolation, and a segment the watcher sends meanwhile (a
// timer a few ms late or early against the model) may meet the new host,
// or the isolation and be lost.
const returnBlur = 30 * time.Millisecond

// forecastSample is a sample's own forecast from the watched connection's
// state at the fault, or nil where no per-sample rule applies: through
// Toxiproxy (the watcher's TCP peer is the proxy, and the fault is the
// proxy's doing) and where the watcher's own link is cut (its sends fail
// in its own stack, which tcprules does not model), the cell's range
// stands alone. On a path that resets only from some time on (a
// ResetAfterer, a Returner), a ResetForecaster counts from the instant the
// path answered again, or from its stated delay while it has not.
func forecastSample(c *Cell, flt Fault, path string, st tcprules.ConnState, injectedNs int64) *tcprules.Forecast {
	if path == topo.PathToxiproxy || isA[linkCutter](flt) || st.Source == "" {
		return nil
	}
	if rf, ok := c.Detector.(ResetForecaster); ok && c.Effect == EffectResetOnWrite {
		after, how := time.Duration(0), ""
		if ra, ok := flt.(resetAfterer); ok {
			after, how = ra.ResetAfter(), fmt.Sprintf("; the path answers from %v after the fault on", ra.ResetAfter())
		}
		early, late := after, after
		if r, ok := flt.(returner); ok {
			if back, err := r.Returned(); err == nil && back > injectedNs {
				after, how = time.Duration(back-injectedNs), fmt.Sprintf("; the path answered %.1f ms after the fault", float64(back-injectedNs)/1e6)
				early, late = max(0, after-returnBlur), after+returnBlur
			}
		}
		fc, ok := rf.PredictResetAfter(st, after)
		if !ok {
			return nil
		}
		// A segment due within returnBlur of the stamped return may meet
		// the new host or its isolation, whichever came first in fact:
		// the window holds both outcomes.
		if fe, ok := rf.PredictResetAfter(st, early); ok && fe.HiS < fc.LoS {
			fc.LoS = fe.LoS
			how += fmt.Sprintf(", or a segment sent within %v before that, reset at %.3f s", returnBlur, fe.AtS)
		}
		if fl, ok := rf.PredictResetAfter(st, late); ok && fl.LoS > fc.HiS {
			fc.HiS = fl.HiS
			how += fmt.Sprintf(", or, if the segment due then was dropped, the next, reset at %.3f s", fl.AtS)
		}
		fc.Rule += how
		return &fc
	}
	if ra, ok := flt.(resetAfterer); ok && c.Effect == EffectResetOnWrite && ra.ResetAfter() > 0 {
		// PredictSample's reset is at once; this path answers later, and
		// the detector has no rule for that.
		return nil
	}
	if sp, ok := c.Detector.(SamplePredictor); ok {
		if fc, ok := sp.PredictSample(st, c.Effect); ok {
			return &fc
		}
	}
	return nil
}

// The capabilities a sample asks of a single fault or detector (contract.go).
type (
	// returner is a fault that reports the instant its path answered
	// again (zero while it is down).
	returner interface{ Returned() (int64, error) }
	// peerReporter asks the peer what it saw, after the decision.
	peerReporter interface{ PeerSaw(peer *Process) string }
)
