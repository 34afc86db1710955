// Package protocol is protocol v1 for Go programs that are not Ginkgo
// suites: it turns a function that watches a connection into a program that
// halfopen runs as an external detector (docs/protocol.md), and holds the
// wire format's facts (event names, environment variables).
//
// halfopen starts the program twice per sample when it is its own peer
// (peer=self), once on each host of the lab, and reads its standard output:
//
//	  watcher host                                  peer host
//	┌──────────────────────────┐                ┌──────────────────────────┐
//	│ HALFOPEN_ROLE=watcher    │   one TCP      │ HALFOPEN_ROLE=peer       │
//	│ Watch(ctx, s) ──────────────connection──────── Peer(ctx, s) (Echo)   │
//	│  returns the reason      │   (faults in   │  or a real server, or    │
//	│  it gave up              │    between)    │  halfopen's echo peer    │
//	└──────────┬───────────────┘                └──────────────────────────┘
//	           │ stdout, one JSON line per event, t_ns = CLOCK_MONOTONIC
//	           ▼
//	hello {name, predicted_s} → ready → connected → dead {reason}
//	                                       ▲            │ HALFOPEN_RECONNECT=1:
//	                                       └────────────┘ Watch runs again
//
// HALFOPEN_SIDE names the watcher's end: with side=client the watcher dials
// HALFOPEN_ADDR and the peer listens; with side=server the watcher listens
// and the peer dials. A program is a Watcher value given to Main:
//
//	func main() {
//		protocol.Main(protocol.Watcher{
//			Name:      "mypool",
//			Predicted: &protocol.Range{Lo: 9 * time.Second, Hi: 12 * time.Second},
//			Watch: func(ctx context.Context, s *protocol.Session) (string, error) {
//				conn, err := s.Connect(ctx) // dials or accepts, prints connected
//				if err != nil {
//					return "", err
//				}
//				_, err = conn.Read(make([]byte, 1)) // until the library gives up
//				return protocol.Reason(err), nil
//			},
//			Peer: protocol.Echo,
//		})
//	}
//
// A library that dials by itself is given s.Addr and calls s.Connected the
// moment it has its connection; one that accepts by itself serves on
// s.Listener() and does the same.
//
// halfopen's own agents are built on this package as well (its Event,
// ParseEvent, Emitter, Now, Side, Listen, Accept, Dial and EchoConn): there
// is one implementation of protocol v1.
//
// Go's net package turns on a 15 s TCP keepalive on every connection it
// dials or accepts unless told otherwise (Dialer.KeepAlive and
// ListenConfig.KeepAlive: -1). The connections this package makes have
// none, so that a detector measures what it asks for; a library that dials
// with its own net.Dialer may well have it, and that is part of what it is
// measured with.
package protocol
