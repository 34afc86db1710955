package protocol

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sys/unix"
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
)

// Event is one line of protocol output. Fields an event does not use are
// left out of its line, except predicted_s, which a hello always carries
// (null when there is no prediction).
type Event struct {
	Event      string      `json:"event"`
	TNs        int64       `json:"t_ns"` // CLOCK_MONOTONIC, nanoseconds
	Protocol   int         `json:"protocol,omitempty"`
	Name       string      `json:"name,omitempty"`
	PredictedS *[2]float64 `json:"predicted_s,omitempty"` // seconds [lo, hi]
	Reason     string      `json:"reason,omitempty"`
	Msg        string      `json:"msg,omitempty"`
}

// helloLine is a hello on the wire: predicted_s is there even when null.
type helloLine struct {
	Event      string      `json:"event"`
	TNs        int64       `json:"t_ns"`
	Protocol   int         `json:"protocol"`
	Name       string      `json:"name"`
	PredictedS *[2]float64 `json:"predicted_s"`
}

// MarshalJSON writes the event as protocol v1 spells it.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.Event == EventHello {
		return json.Marshal(helloLine{e.Event, e.TNs, e.Protocol, e.Name, e.PredictedS})
	}
	type plain Event // without this method
	return json.Marshal(plain(e))
}

// Now returns CLOCK_MONOTONIC in nanoseconds, the clock every t_ns is read
// from: the same in every network namespace, so the harness can subtract its
// own instants from it.
func Now() int64 {
	var ts unix.Timespec
	// clock_gettime(CLOCK_MONOTONIC) cannot fail for a valid clock id.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
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

// Logf emits a log event.
func (e *Emitter) Logf(format string, args ...any) {
	e.Emit(Event{Event: EventLog, Msg: fmt.Sprintf(format, args...)})
}
