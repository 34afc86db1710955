package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// Version is the protocol version this package speaks.
const Version = 1

// The events of protocol v1, printed as JSON lines on standard output.
const (
	EventHello     = "hello"     // first line, once: protocol, name, predicted_s
	EventReady     = "ready"     // listening (listening end), or about to dial (dialing end)
	EventConnected = "connected" // the connection is established
	EventDead      = "dead"      // the watcher decided that the peer is dead: reason
	EventLog       = "log"       // free text: msg
	EventMark      = "mark"      // an intermediate instant the watcher noticed: name
)

// Event is one line of protocol output. Fields an event does not use are
// left out of its line, except predicted_s, which a hello always carries
// (null when there is no prediction). Local, Remote, Bytes and Seq are
// printed only by halfopen's own agents, answering their orchestrator; a
// protocol-v1 program leaves them out.
type Event struct {
	Event      string      `json:"event"`
	TNs        int64       `json:"t_ns"` // CLOCK_MONOTONIC, nanoseconds
	Protocol   int         `json:"protocol,omitempty"`
	Name       string      `json:"name,omitempty"`
	PredictedS *[2]float64 `json:"predicted_s,omitempty"` // seconds [lo, hi]
	Reason     string      `json:"reason,omitempty"`
	Msg        string      `json:"msg,omitempty"`
	Local      string      `json:"local,omitempty"`  // local address of a connection
	Remote     string      `json:"remote,omitempty"` // remote address of a connection
	Bytes      int         `json:"bytes,omitempty"`
	Seq        int         `json:"seq,omitempty"`
}

// helloLine is a hello on the wire: protocol, name and predicted_s are there
// even when zero or null.
type helloLine struct {
	Event      string      `json:"event"`
	TNs        int64       `json:"t_ns"`
	Protocol   int         `json:"protocol"`
	Name       string      `json:"name"`
	PredictedS *[2]float64 `json:"predicted_s"`
	Reason     string      `json:"reason,omitempty"`
	Msg        string      `json:"msg,omitempty"`
	Local      string      `json:"local,omitempty"`
	Remote     string      `json:"remote,omitempty"`
	Bytes      int         `json:"bytes,omitempty"`
	Seq        int         `json:"seq,omitempty"`
}

// MarshalJSON writes the event as protocol v1 spells it.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.Event == EventHello {
		return json.Marshal(helloLine(e))
	}
	type plain Event // without this method
	return json.Marshal(plain(e))
}

// v1Events are the events of protocol v1, the only ones a foreign program
// may print.
var v1Events = map[string]bool{
	EventHello: true, EventReady: true, EventConnected: true, EventDead: true, EventLog: true, EventMark: true,
}

// ParseEvent validates one line of protocol output. strict limits the events
// to those of protocol v1 (for foreign programs); otherwise any event name is
// taken (halfopen's own agents answer their orchestrator with more).
func ParseEvent(line []byte, strict bool) (Event, error) {
	line = bytes.TrimSpace(line)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return Event{}, fmt.Errorf("line %s is not a JSON object", clip(string(line)))
	}
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return Event{}, fmt.Errorf("line %s does not follow protocol v1: %v", clip(string(line)), err)
	}
	if _, ok := raw["event"]; !ok || ev.Event == "" {
		return Event{}, fmt.Errorf("line %s has no \"event\"", clip(string(line)))
	}
	if _, ok := raw["t_ns"]; !ok || ev.TNs <= 0 {
		return Event{}, fmt.Errorf("line %s has no positive CLOCK_MONOTONIC \"t_ns\"", clip(string(line)))
	}
	if strict && !v1Events[ev.Event] {
		return Event{}, fmt.Errorf("line %s has event %q, not one of hello, ready, connected, dead, log, mark", clip(string(line)), ev.Event)
	}
	switch ev.Event {
	case EventHello:
		if ev.Protocol != Version {
			return Event{}, fmt.Errorf("hello speaks protocol %d, halfopen speaks %d", ev.Protocol, Version)
		}
		if p := ev.PredictedS; p != nil && (p[0] < 0 || p[1] < p[0]) {
			return Event{}, fmt.Errorf("hello predicts %v, which is not a range [lo, hi] with 0 <= lo <= hi", *p)
		}
	case EventDead:
		if ev.Reason == "" {
			return Event{}, fmt.Errorf("line %s says dead without a reason", clip(string(line)))
		}
	case EventMark:
		if ev.Name == "" {
			return Event{}, fmt.Errorf("line %s is a mark without a name", clip(string(line)))
		}
	}
	return ev, nil
}

// Emitter writes events as JSON lines, one Write per line; it is safe for
// concurrent use.
type Emitter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewEmitter writes events to w, normally os.Stdout (which Go does not buffer,
// so every line reaches the harness at once).
func NewEmitter(w io.Writer) *Emitter { return &Emitter{w: w} }

// Emit stamps the event with Now unless it carries an instant, and writes it
// as one line. A write error is dropped: the reader has gone, and the program
// has nobody left to tell.
func (e *Emitter) Emit(ev Event) {
	if ev.TNs == 0 {
		ev.TNs = Now()
	}
	b, err := json.Marshal(ev)
	if err != nil { // only strings and numbers: cannot happen
		panic(fmt.Sprintf("protocol: encode %s: %v", ev.Event, err))
	}
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(b)
}

// Hello emits the first line: the program's name and its prediction for a
// silent peer, or null when predicted is nil.
func (e *Emitter) Hello(name string, predicted *Range) {
	ev := Event{Event: EventHello, Protocol: Version, Name: name}
	if predicted != nil {
		ev.PredictedS = &[2]float64{predicted.Lo.Seconds(), predicted.Hi.Seconds()}
	}
	e.Emit(ev)
}

// Ready emits ready: listening, or about to dial.
func (e *Emitter) Ready() { e.Emit(Event{Event: EventReady}) }

// Connected emits connected: the connection is established.
func (e *Emitter) Connected() { e.Emit(Event{Event: EventConnected}) }

// Dead emits dead with the reason the watcher gave up (see Reason).
func (e *Emitter) Dead(reason string) { e.Emit(Event{Event: EventDead, Reason: reason}) }

// Mark emits a mark: the instant the watcher noticed something short of
// its decision (its library redialled, a pool dropped a connection).
func (e *Emitter) Mark(name string) { e.Emit(Event{Event: EventMark, Name: name}) }

// Logf emits a log event.
func (e *Emitter) Logf(format string, args ...any) {
	e.Emit(Event{Event: EventLog, Msg: fmt.Sprintf(format, args...)})
}
