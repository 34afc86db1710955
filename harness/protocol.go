package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/halfopen/halfopen/protocol"
)

// ProtocolVersion is the version of the external detector protocol that
// halfopen speaks (docs/protocol.md); package protocol holds its facts.
const ProtocolVersion = protocol.Version

// Protocol v1 events, printed as JSON lines on a detector's standard output.
const (
	EventHello     = protocol.EventHello
	EventReady     = protocol.EventReady
	EventConnected = protocol.EventConnected
	EventDead      = protocol.EventDead
	EventLog       = protocol.EventLog
)

// Events only halfopen's own agents print, answering the orchestrator.
const (
	EventSent    = "sent"    // the peer wrote a chatter message
	EventClosed  = "closed"  // the peer closed (FIN) or reset (RST) its connection
	EventDecided = "decided" // calibration: a decision made at a scheduled instant
	// EventReceived: calibration, the watcher's read of a probe datagram
	// returned (t_ns), seq naming the datagram.
	EventReceived = "received"
	EventError    = "error" // an agent could not do what it was told
	EventPort     = "port"  // an agent is listening: toxiproxy, or the watcher's probe datagrams (msg: the address)
	EventStats    = "stats" // the peer says what it received
)

// Event is one protocol line. Fields not used by an event are omitted.
type Event struct {
	Event      string      `json:"event"`
	TNs        int64       `json:"t_ns"`
	Protocol   int         `json:"protocol,omitempty"`
	Name       string      `json:"name,omitempty"`
	PredictedS *[2]float64 `json:"predicted_s,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Msg        string      `json:"msg,omitempty"`
	// Halfopen's own agents add these.
	Local  string `json:"local,omitempty"`  // local address of a connection
	Remote string `json:"remote,omitempty"` // remote address of a connection
	Bytes  int    `json:"bytes,omitempty"`
	Seq    int    `json:"seq,omitempty"`
}

// externalEvents are the events a foreign detector may print.
var externalEvents = map[string]bool{
	EventHello: true, EventReady: true, EventConnected: true, EventDead: true, EventLog: true,
}

// ParseEvent validates one line of protocol output. strict limits the events
// to those of protocol v1 (for foreign programs).
func ParseEvent(line []byte, strict bool) (Event, error) {
	line = bytes.TrimSpace(line)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return Event{}, fmt.Errorf("line %q is not a JSON object", clip(line))
	}
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&ev); err != nil {
		return Event{}, fmt.Errorf("line %q does not follow protocol v1: %v", clip(line), err)
	}
	if _, ok := raw["event"]; !ok || ev.Event == "" {
		return Event{}, fmt.Errorf("line %q has no \"event\"", clip(line))
	}
	if _, ok := raw["t_ns"]; !ok || ev.TNs <= 0 {
		return Event{}, fmt.Errorf("line %q has no positive CLOCK_MONOTONIC \"t_ns\"", clip(line))
	}
	if strict && !externalEvents[ev.Event] {
		return Event{}, fmt.Errorf("line %q has event %q, not one of hello, ready, connected, dead, log", clip(line), ev.Event)
	}
	switch ev.Event {
	case EventHello:
		if ev.Protocol != ProtocolVersion {
			return Event{}, fmt.Errorf("hello speaks protocol %d, halfopen speaks %d", ev.Protocol, ProtocolVersion)
		}
		if p := ev.PredictedS; p != nil && (p[0] < 0 || p[1] < p[0]) {
			return Event{}, fmt.Errorf("hello predicts %v, which is not a range [lo, hi] with 0 <= lo <= hi", *p)
		}
	case EventDead:
		if ev.Reason == "" {
			return Event{}, fmt.Errorf("line %q says dead without a reason", clip(line))
		}
	}
	return ev, nil
}

func clip(b []byte) string {
	if len(b) > 120 {
		return string(b[:117]) + "..."
	}
	return string(b)
}

// Emitter writes protocol events as JSON lines; it is safe for concurrent use.
type Emitter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewEmitter writes events to w (an agent's standard output).
func NewEmitter(w io.Writer) *Emitter { return &Emitter{w: w} }

// Emit stamps the event with CLOCK_MONOTONIC unless it carries an instant,
// and writes it as one line.
func (e *Emitter) Emit(ev Event) {
	if ev.TNs == 0 {
		ev.TNs = Now()
	}
	b, _ := json.Marshal(ev)
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(b)
}

// Logf emits a log event.
func (e *Emitter) Logf(format string, args ...any) {
	e.Emit(Event{Event: EventLog, Msg: fmt.Sprintf(format, args...)})
}

// CommandName names an instruction to one of halfopen's own agents.
type CommandName string

// Commands the orchestrator sends its agents.
const (
	CmdSend     CommandName = "send"      // peer: write a chatter message; answers EventSent
	CmdClose    CommandName = "close"     // peer: shutdown(SHUT_WR), a FIN; answers EventClosed
	CmdReset    CommandName = "reset"     // peer: SO_LINGER 0 and close, an RST; answers EventClosed
	CmdStats    CommandName = "stats"     // peer: what it received; answers EventLog
	CmdDecideAt CommandName = "decide-at" // watcher: wake at AtNs; answers EventDecided
	// CmdListenDatagrams: watcher, bind a UDP socket on Addr and stamp the
	// read of every datagram; answers EventPort, then EventReceived each.
	CmdListenDatagrams CommandName = "listen-datagrams"
	// CmdSendDatagram: peer, send datagram Seq to Addr; answers EventSent
	// stamped just before the send.
	CmdSendDatagram CommandName = "send-datagram"
)

// Command is one instruction from the orchestrator to one of halfopen's own
// agents, a JSON line on the agent's standard input.
type Command struct {
	Cmd   CommandName `json:"cmd"`
	Bytes int         `json:"bytes,omitempty"` // send: message size
	Seq   int         `json:"seq,omitempty"`
	AtNs  int64       `json:"at_ns,omitempty"` // decide-at: CLOCK_MONOTONIC instant
	Addr  string      `json:"addr,omitempty"`  // listen-datagrams, send-datagram: host:port
}

// stdoutEmitter is the emitter of the current agent process.
var stdoutEmitter = NewEmitter(os.Stdout)
