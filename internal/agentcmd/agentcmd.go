// Package agentcmd is what halfopen's own agents and their orchestrator
// say to each other on top of protocol v1: the commands the orchestrator
// sends an agent and the events only the agents print. A foreign program
// never gets one; no outside module should need it.
package agentcmd

// Events only halfopen's own agents print, answering the orchestrator, on
// top of protocol v1's (protocol.EventHello, ...), in protocol.Event lines
// read with protocol.ParseEvent(line, false). Their commands (Command) are
// not part of protocol v1 either: a foreign program never gets one.
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
