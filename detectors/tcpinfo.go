package detectors

import (
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// TCPInfo is the reference text's SocketConnected(): every `every` it reads
// getsockopt(TCP_INFO) and declares the peer dead when tcpi_state is no
// longer TCP_ESTABLISHED. The reason is the state's name (CLOSE_WAIT after
// a FIN), or for CLOSE the socket's pending error (ECONNRESET after an RST).
// It neither reads nor writes, so it reacts within one poll of a FIN or an
// RST, and never to a silent peer: nothing changes an idle socket's state.
type TCPInfo struct {
	Every time.Duration `param:"every" default:"100ms" min:"1ms" help:"interval between TCP_INFO polls"`
}

func init() {
	harness.RegisterDetector("tcp-info", "polls getsockopt(TCP_INFO) every `every`: tcpi_state != ESTABLISHED is dead (the reference text's SocketConnected)", &TCPInfo{})
}

// Predict: never, for a silent peer.
func (d *TCPInfo) Predict() harness.Prediction {
	return harness.Prediction{Never: true, Rule: "tcpi_state changes only when a segment arrives (FIN: CLOSE_WAIT, RST: CLOSE) or a timer gives up; an idle socket arms no timer, so a silent peer leaves it ESTABLISHED"}
}

// PredictClose: the state changes the moment the FIN or RST arrives, and
// the next poll, at most `every` later, sees it.
func (d *TCPInfo) PredictClose(e harness.Effect) harness.Prediction {
	const slack = 50 * time.Millisecond
	rule := "tcp_rcv_state_process()/tcp_reset() change tcpi_state on arrival; the next TCP_INFO poll sees it: [0, every] (+50 ms for a loaded machine)"
	switch e {
	case harness.EffectFIN:
		return harness.Prediction{Hi: d.Every + slack, Rule: "FIN: ESTABLISHED → CLOSE_WAIT; " + rule, Reasons: []string{"CLOSE_WAIT"}}
	case harness.EffectRST:
		return harness.Prediction{Hi: d.Every + slack, Rule: "RST: → CLOSE with SO_ERROR ECONNRESET; " + rule, Reasons: []string{"ECONNRESET"}}
	case harness.EffectFINOrRST:
		return harness.Prediction{Hi: d.Every + slack, Rule: "FIN (CLOSE_WAIT) or RST (CLOSE, ECONNRESET); " + rule, Reasons: []string{"CLOSE_WAIT", "ECONNRESET"}}
	}
	return harness.Prediction{Never: true, Rule: "it never writes, so a path that answers only a written segment with an RST never changes its state"}
}

// Watch polls the socket's state.
func (d *TCPInfo) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	t := time.NewTicker(d.Every)
	defer t.Stop()
	for {
		if dec, ok := tcpState(w.Conns[0]); ok {
			return dec
		}
		select {
		case <-ctx.Done():
			return harness.Decision{}
		case <-t.C:
		}
	}
}

// tcpState reads TCP_INFO and returns a decision when the connection is no
// longer established.
func tcpState(c *net.TCPConn) (harness.Decision, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return harness.Decide("error: " + err.Error()), true
	}
	var info *unix.TCPInfo
	var serr error
	var soErr int
	if err := raw.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if serr == nil && info.State == unix.BPF_TCP_CLOSE {
			soErr, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		}
	}); err != nil {
		return harness.Decide("error: " + err.Error()), true
	}
	now := harness.Now()
	if serr != nil {
		return harness.Decision{Reason: harness.ErrnoName(serr), AtNs: now}, true
	}
	if info.State == unix.BPF_TCP_ESTABLISHED {
		return harness.Decision{}, false
	}
	if soErr != 0 {
		return harness.Decision{Reason: harness.ErrnoName(unix.Errno(soErr)), AtNs: now}, true
	}
	return harness.Decision{Reason: tcpStateName(info.State), AtNs: now}, true
}

// tcpStateName names a tcpi_state as include/net/tcp_states.h does.
func tcpStateName(s uint8) string {
	names := map[uint8]string{
		unix.BPF_TCP_ESTABLISHED: "ESTABLISHED", unix.BPF_TCP_SYN_SENT: "SYN_SENT", unix.BPF_TCP_SYN_RECV: "SYN_RECV",
		unix.BPF_TCP_FIN_WAIT1: "FIN_WAIT1", unix.BPF_TCP_FIN_WAIT2: "FIN_WAIT2", unix.BPF_TCP_TIME_WAIT: "TIME_WAIT",
		unix.BPF_TCP_CLOSE: "CLOSE", unix.BPF_TCP_CLOSE_WAIT: "CLOSE_WAIT", unix.BPF_TCP_LAST_ACK: "LAST_ACK",
		unix.BPF_TCP_LISTEN: "LISTEN", unix.BPF_TCP_CLOSING: "CLOSING",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("STATE_%d", s)
}

// PredictSample: the socket's state changes as a FIN or an RST arrives,
// or when the retransmission timer gives up on data in flight (a silent
// peer), or as a resend of it meets a resetting path; the next poll sees
// it, at a phase the state does not give: [0, every] later. Idle under a
// silent or resetting path, nothing changes its state: never.
func (d *TCPInfo) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	f, ok := readerSample(st, e)
	if !ok {
		return f, false
	}
	return pollSample(f, d.Every), true
}

// PredictResetAfter: a resend of data in flight at the fault meets the
// reset, and the next poll sees the socket closed; idle, never.
func (d *TCPInfo) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return pollSample(readerResetAfter(st, after), d.Every), true
}
