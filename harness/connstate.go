package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/capture"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/tcprules"
)

// This file reads the watched connection's state at the fault from the
// watcher's kernel: TCP_INFO over sock_diag (NETLINK_INET_DIAG) in the
// watcher's namespace, so that it works for any watcher program (halfopen's
// agent, a foreign program, a Go role), selecting the flow by its 4-tuple.

// Sources of a sample's state (tcprules.ConnState.Source); "+capture" is
// appended when the router's capture agreed with it.
const (
	// sourceTCPInfo: TCP_INFO read through sock_diag right after the
	// fault's injection returned.
	sourceTCPInfo = "tcp_info"
	// sourceAfterRequest: TCP_INFO read after halfopen's watcher wrote its
	// request, which followed the fault (the in-flight phase of a
	// built-in watcher): its "since" fields may be negative.
	sourceAfterRequest = "tcp_info-after-request"
)

// inFlightWait bounds how long a sample aimed at the in-flight phase waits
// for the watcher to have a request unacknowledged before it gives up: a
// library's first request may follow its connection by a second or more
// on a loaded machine (a gRPC client's, after its channel is READY).
const inFlightWait = 5 * time.Second

// inFlightPoll is how often sock_diag is read while waiting for a request
// in flight: the peer's pure ACKs are held meanwhile (holdFlow), so the
// request stays unacknowledged and the poll only sets how soon after it
// the fault lands.
const inFlightPoll = time.Millisecond

// quietFor is how long a foreign watcher's flow must have exchanged
// nothing, with nothing unacknowledged, before an idle-phase sample's idle
// time starts: a role writes its request right after it says connected.
const quietFor = 100 * time.Millisecond

// flow is the watched connection as the watcher's kernel names it; a zero
// address or port matches any.
type flow struct {
	local, remote netip.AddrPort
}

func (f flow) String() string { return f.local.String() + " > " + f.remote.String() }

// matches says whether a socket of the watcher's namespace is the flow.
func (f flow) matches(s *netlink.Socket) bool {
	return endpointMatches(f.local, s.ID.Source, s.ID.SourcePort) &&
		endpointMatches(f.remote, s.ID.Destination, s.ID.DestinationPort)
}

func endpointMatches(want netip.AddrPort, ip net.IP, port uint16) bool {
	if want.Addr().IsValid() {
		got, ok := netip.AddrFromSlice(ip.To4())
		if !ok || got != want.Addr() {
			return false
		}
	}
	return want.Port() == 0 || want.Port() == port
}

// watchedFlow is the data connection between the watcher and its peer (a
// proxy, through Toxiproxy), from what the watcher said when it connected,
// or else from the lab: the watcher's address, the listening port, the
// dialing end's port and where the watcher dials.
func (s *session) watchedFlow() flow {
	local, lerr := netip.ParseAddrPort(s.watcherLocal)
	remote, rerr := netip.ParseAddrPort(s.watcherRemote)
	if lerr == nil && rerr == nil {
		return flow{local: local, remote: remote}
	}
	if s.Cell.Config.Side == protocol.SideServer {
		f := flow{local: netip.AddrPortFrom(topo.WatcherAddr, s.Conn.Port)}
		if s.Conn.PathName == topo.PathDirect {
			f.remote = netip.AddrPortFrom(topo.PeerAddr, s.Conn.DataPort)
		}
		return f
	}
	return flow{local: netip.AddrPortFrom(topo.WatcherAddr, s.Conn.DataPort), remote: s.Conn.Via}
}

// connReader reads the watched flow's TCP_INFO from the watcher's
// namespace. Its netlink socket is made in that namespace once, so that a
// read at the fault costs one dump.
type connReader struct {
	h    *netlink.Handle
	flow flow
}

// openConnReader opens a sock_diag socket in the watcher's namespace.
func openConnReader(lab *Lab, f flow) (*connReader, error) {
	host := lab.Host(topo.Watcher)
	if host == nil {
		return nil, fmt.Errorf("lab %s: the watcher host is gone", lab.ID)
	}
	h, err := netlink.NewHandleAt(host.NS, unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag in the watcher's namespace: %w", err)
	}
	return &connReader{h: h, flow: f}, nil
}

func (r *connReader) close() { r.h.Close() }

// tcpReading is one TCP_INFO of the watched flow and the CLOCK_MONOTONIC
// instant the kernel filled it (the middle of the dump).
type tcpReading struct {
	info   *netlink.TCPInfo
	sock   *netlink.Socket
	atNs   int64
	others int // other sockets that matched the flow as well
}

// read dumps the namespace's TCP sockets and returns the watched flow's.
// Listening sockets never match; of several matches (a flow known only in
// part), the one that carried the most data is the data connection.
func (r *connReader) read() (tcpReading, error) {
	before := protocol.Now()
	resp, err := r.h.SocketDiagTCPInfo(unix.AF_INET)
	after := protocol.Now()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return tcpReading{}, fmt.Errorf("sock_diag in the watcher's namespace: %w", err)
	}
	var best tcpReading
	found := 0
	for _, x := range resp {
		if x.InetDiagMsg == nil || x.TCPInfo == nil || x.InetDiagMsg.State == unix.BPF_TCP_LISTEN {
			continue
		}
		if !r.flow.matches(x.InetDiagMsg) {
			continue
		}
		found++
		if best.info == nil || carried(x.TCPInfo) > carried(best.info) {
			best.info, best.sock = x.TCPInfo, x.InetDiagMsg
		}
	}
	if found == 0 {
		return tcpReading{}, fmt.Errorf("the watcher's namespace has no TCP connection %s", r.flow)
	}
	best.atNs, best.others = before+(after-before)/2, found-1
	return best, nil
}

func carried(i *netlink.TCPInfo) uint64 { return i.Bytes_acked + i.Bytes_received }

// tcpStateNames are the kernel's TCP states (include/net/tcp_states.h).
var tcpStateNames = [...]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
	7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
}

// stateAt turns a reading into the connection's state at the instant
// atNs: the kernel's "ms since" fields are measured back from the read, so
// the read's delay after atNs is subtracted (a field may go negative when
// its event came after atNs: a request written after the fault).
func (t tcpReading) stateAt(atNs int64, source string) tcprules.ConnState {
	i := t.info
	delay := protocol.Seconds(t.atNs - atNs)
	// Microseconds are more than the kernel's jiffies can tell.
	since := func(ms uint32) float64 { return math.Round((float64(ms)/1000-delay)*1e6) / 1e6 }
	name := fmt.Sprintf("state %d", i.State)
	if int(i.State) < len(tcpStateNames) && tcpStateNames[i.State] != "" {
		name = tcpStateNames[i.State]
	}
	st := tcprules.ConnState{
		TCPState: name, Unacked: int(i.Unacked), NotSentBytes: int(i.Notsent_bytes),
		SinceDataSentS: since(i.Last_data_sent), SinceDataRecvS: since(i.Last_data_recv), SinceAckRecvS: since(i.Last_ack_recv),
		RTOS: float64(i.Rto) / 1e6, RTTS: float64(i.Rtt) / 1e6, Backoff: int(i.Backoff), Retransmits: int(i.Retransmits), Probes: int(i.Probes),
		Source: source,
	}
	if t.others > 0 {
		st.Note = fmt.Sprintf("%d other connections matched the watched flow in part; the one that carried the most data was read", t.others)
	}
	return st
}

// waitFlow polls the watched flow every inFlightPoll until ok says its
// reading is the one wanted, or until limit has passed (then it returns
// the last reading and false); a watcher that exits meanwhile ends the
// wait with how it ended.
func (r *connReader) waitFlow(ctx context.Context, w *Process, limit time.Duration, ok func(tcpReading) bool) (tcpReading, bool, error) {
	deadline := protocol.Now() + int64(limit)
	var last tcpReading
	var lastErr error
	for {
		select {
		case <-w.Exited():
			// Its connection went with it: say how the watcher ended,
			// not that its flow is missing.
			return last, false, w.endedError("before the fault")
		default:
		}
		t, err := r.read()
		if err == nil {
			last, lastErr = t, nil
			if ok(t) {
				return t, true, nil
			}
		} else {
			lastErr = err
		}
		if protocol.Now() >= deadline || ctx.Err() != nil {
			if last.info == nil && lastErr != nil {
				return last, false, lastErr
			}
			return last, false, nil
		}
		time.Sleep(inFlightPoll)
	}
}

// inFlight says whether a reading has a request unacknowledged.
func inFlight(t tcpReading) bool { return t.info.Unacked > 0 }

// quiet says whether a reading has nothing in flight and has exchanged
// nothing for quietFor.
func quiet(t tcpReading) bool {
	q := uint32(quietFor / time.Millisecond)
	i := t.info
	return i.Unacked == 0 && i.Notsent_bytes == 0 && i.Last_data_sent >= q && i.Last_data_recv >= q && i.Last_ack_recv >= q
}

// lastExchange is the CLOCK_MONOTONIC instant of a reading's most recent
// data or ACK, either way.
func (t tcpReading) lastExchange() int64 {
	i := t.info
	ms := min(i.Last_data_sent, i.Last_data_recv, i.Last_ack_recv)
	return t.atNs - int64(ms)*int64(time.Millisecond)
}

// captureTolerance is how far the capture's instants may be from
// TCP_INFO's and still agree: TCP_INFO counts in jiffies of the running
// kernel (tcprules.KernelTick: 4 ms at HZ 250, 10 ms at HZ 100), and the
// capture sees a packet on the router, a veth hop away (6 ms allowed).
func captureTolerance() time.Duration { return tcprules.KernelTick().Jiffy() + 6*time.Millisecond }

// crossCheck compares a state read from TCP_INFO at readNs (seconds since,
// measured back from atNs) with what the router's capture saw of the flow
// on the watcher's port up to readNs, and records agreement in the state's
// Source, disagreement in its Note.
func crossCheck(st *tcprules.ConnState, events []capture.Event, f flow, atNs, readNs int64) {
	fs := capture.FlowAt(events, topo.RouterWatchLink, f.local.String(), f.remote.String(), readNs)
	if !fs.Seen {
		addNote(st, "the capture holds no packet of the watched flow before the read")
		return
	}
	var diffs []string
	check := func(what string, tcpInfoS float64, lastNs int64) {
		if lastNs == 0 {
			return
		}
		capS := protocol.Seconds(atNs - lastNs)
		if d := capS - tcpInfoS; d > captureTolerance().Seconds() || d < -captureTolerance().Seconds() {
			diffs = append(diffs, fmt.Sprintf("%s %.3f s before the fault by the capture, %.3f s by TCP_INFO", what, capS, tcpInfoS))
		}
	}
	check("last data sent", st.SinceDataSentS, fs.LastSentNs)
	check("last data received", st.SinceDataRecvS, fs.LastRecvNs)
	if (fs.Unacked > 0) != (st.Unacked > 0) {
		diffs = append(diffs, fmt.Sprintf("%d bytes unacknowledged by the capture, %d segments by TCP_INFO", fs.Unacked, st.Unacked))
	}
	if len(diffs) == 0 {
		st.Source += "+capture"
		return
	}
	addNote(st, "the capture disagrees: "+joinSemicolon(diffs))
}

func addNote(st *tcprules.ConnState, s string) {
	if st.Note != "" {
		st.Note += "; "
	}
	st.Note += s
}

func joinSemicolon(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}
