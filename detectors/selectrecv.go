package detectors

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// SelectRecv is the reference text's passive server: select() on the socket
// with a timeout, then recv(); recv() == 0 is the peer's FIN, recv() < 0 an
// error, but EINTR (a signal, not the peer) is retried, and select()'s
// remaining time is recomputed after it, not restarted. A select() timeout
// only bounds one wait: idle is not dead. The calls are real blocking system
// calls on a thread of their own.
type SelectRecv struct {
	Timeout time.Duration `param:"timeout" default:"1s" min:"1ms" help:"bound of one select() wait; a timeout is idle, not dead"`
}

func init() {
	harness.RegisterDetector("select-recv", "select() then recv(); recv()==0 or an error is dead, EINTR retried with the remaining time", &SelectRecv{})
}

// Predict: never, for a silent peer.
func (d *SelectRecv) Predict() harness.Prediction {
	return harness.Prediction{Never: true, Rule: "select()+recv() only sees a FIN (recv()==0) or an RST (ECONNRESET); an idle connection whose peer vanished exchanges no segment (TCP/IP Illustrated vol. 1 §23.1)"}
}

// Watch runs the select/recv loop, EINTR-safe.
func (d *SelectRecv) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	return watchRaw(ctx, w.Conns[0], func(s *rawSocket) harness.Decision { return selectRecv(s, d.Timeout, true) })
}

// selectRecv is the reference text's loop. careful retries EINTR (the
// reference text's advice); without it, select() or recv() returning -1 for
// any reason, EINTR included, is taken for a dead peer (its warning).
func selectRecv(s *rawSocket, timeout time.Duration, careful bool) harness.Decision {
	buf := make([]byte, 64*1024)
	nfd := max(s.fd, s.wake) + 1
	for {
		deadline := harness.Now() + int64(timeout)
		for {
			left := max(deadline-harness.Now(), 0)
			tv := unix.NsecToTimeval(left)
			var rset unix.FdSet
			rset.Zero()
			rset.Set(s.fd)
			rset.Set(s.wake)
			n, err := unix.Select(nfd, &rset, nil, nil, &tv)
			if err != nil {
				if careful && errors.Is(err, unix.EINTR) {
					continue // a signal, not the peer: wait for what is left
				}
				return harness.Decide(harness.ErrnoName(err))
			}
			if rset.IsSet(s.wake) {
				return harness.Decision{}
			}
			if n == 0 {
				break // timeout: idle is not dead
			}
			r, _, err := unix.Recvfrom(s.fd, buf, 0)
			switch {
			case err == nil && r > 0:
				continue
			case err == nil:
				return harness.Decide("EOF")
			case careful && (errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN)):
				continue // the reference text's point: still connected
			}
			return harness.Decide(harness.ErrnoName(err))
		}
	}
}

// PredictSample: a FIN or an RST at once; never on an idle silent peer;
// data in flight at the fault gives the kernel's retransmission give-up.
func (d *SelectRecv) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	return readerSample(st, e)
}

// PredictResetAfter: only a resend of data in flight at the fault can
// meet a reset; idle, never.
func (d *SelectRecv) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return readerResetAfter(st, after), true
}
