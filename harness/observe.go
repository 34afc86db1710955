package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// maxObserveTail caps how long a disturbance is watched after it heals when
// the cell gives no budget: a detector whose silent-peer deadline is
// minutes long (a default keepalive, a pool that never pings) would
// otherwise be watched for all of it.
const maxObserveTail = 30 * time.Second

// observeTail is how long a disturbance sample of c watches the connection
// after the fault heals: the cell's budget, or max(2 s, the prediction's
// end) up to maxObserveTail.
func (c *Cell) observeTail() time.Duration {
	if c.Config.Budget != 0 {
		return c.Config.Budget
	}
	return min(max(2*time.Second, c.Prediction.Hi), maxObserveTail)
}

// observe runs a disturbance sample: the fault heals after its window, the
// connection is watched for as long again plus the tail (the cell's budget,
// or max(2 s, the prediction's end) up to maxObserveTail), and every decision is a false
// positive, with its duration until the watcher is connected again. Wire
// packets on the router and the watcher's CPU time over the window go into
// the sample.
func observe(ctx context.Context, s *session, flt Fault, heal Heal, at int64, base report.Sample) (report.Sample, []report.Mistake, error) {
	c := s.Cell
	window := time.Duration(0)
	if w, ok := flt.(Windowed); ok {
		window = w.Window()
	}
	tail := c.observeTail()
	healAt := at + int64(window)
	end := healAt + int64(tail)
	wire, err := newWireCounter(s.Lab)
	if err != nil {
		return base, nil, err
	}
	cpu0, _ := cpuTicks(s.Watcher.Pid())
	log := disturbanceLog{at: at, sample: base}
	healed := heal == nil
	for now := protocol.Now(); now < end; now = protocol.Now() {
		wake := end
		if !healed && healAt < wake {
			wake = healAt
		}
		t := time.NewTimer(time.Duration(wake - now))
		select {
		case <-ctx.Done():
			t.Stop()
			return base, nil, fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case <-t.C:
			if !healed && protocol.Now() >= healAt {
				if _, err := heal(ctx); err != nil {
					return base, nil, fmt.Errorf("heal %s: %w", c.FaultSpec, err)
				}
				healed = true
			}
		case ev, ok := <-s.Watcher.Events():
			t.Stop()
			if !ok {
				return base, nil, s.Watcher.endedError("during the disturbance")
			}
			log.event(ev)
		}
	}
	if !healed {
		if _, err := heal(ctx); err != nil {
			return base, nil, fmt.Errorf("heal %s: %w", c.FaultSpec, err)
		}
	}
	out, mistakes := log.close(end)
	if pk, by, err := wire.read(); err == nil {
		out.Packets, out.Bytes = pk, by
	}
	if cpu1, err := cpuTicks(s.Watcher.Pid()); err == nil && cpu1 >= cpu0 {
		out.WatcherCPUS = float64(cpu1-cpu0) / clockTicks
	}
	return out, mistakes, nil
}

// disturbanceLog turns a watcher's events during a disturbance into its
// false positives and mistakes. It is a pure function of the events and
// their instants, so it is tested without a lab or a clock.
type disturbanceLog struct {
	at          int64 // the injection, the origin of the sample's time line
	sample      report.Sample
	mistakes    []report.Mistake
	suspectedAt int64 // the open mistake's start, 0 when trusting
}

// event takes one watcher event: "dead" opens a mistake (the first one is
// the sample's decision), "connected" closes the open one.
func (l *disturbanceLog) event(ev protocol.Event) {
	switch ev.Event {
	case protocol.EventDead:
		l.sample.FalsePositives++
		if l.suspectedAt == 0 {
			l.suspectedAt = ev.TNs
		}
		if !l.sample.Detected {
			secs := protocol.Seconds(ev.TNs - l.at)
			l.sample.Detected, l.sample.Seconds, l.sample.Reason, l.sample.DecidedNs = true, &secs, ev.Reason, ev.TNs
		}
	case protocol.EventConnected:
		if l.suspectedAt != 0 {
			l.mistakes = append(l.mistakes, report.Mistake{StartS: protocol.Seconds(l.suspectedAt - l.at), EndS: protocol.Seconds(ev.TNs - l.at)})
			l.suspectedAt = 0
		}
	}
}

// close ends the observation at `end`: a mistake still open lasts until
// then, and a sample without a decision survived.
func (l *disturbanceLog) close(end int64) (report.Sample, []report.Mistake) {
	if l.suspectedAt != 0 {
		l.mistakes = append(l.mistakes, report.Mistake{StartS: protocol.Seconds(l.suspectedAt - l.at), EndS: protocol.Seconds(end - l.at)})
		l.suspectedAt = 0
	}
	if !l.sample.Detected {
		l.sample.Reason = "survived"
	}
	l.sample.WindowS = protocol.Seconds(end - l.at)
	return l.sample, l.mistakes
}
