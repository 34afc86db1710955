package detectors

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// RDHUP waits in epoll_wait(2) for EPOLLRDHUP (the peer shut down its
// writing side: a FIN), EPOLLERR (an RST; the reason is SO_ERROR) or
// EPOLLHUP, draining any data the peer sends; EINTR is retried. Like every
// reader it sees only what arrives, so a silent peer is never detected.
type RDHUP struct{}

func init() {
	harness.RegisterDetector("rdhup", "epoll_wait with EPOLLRDHUP: the peer's FIN or RST is dead; EINTR retried", &RDHUP{})
}

// Predict: never, for a silent peer.
func (d *RDHUP) Predict() harness.Prediction {
	return harness.Prediction{Never: true, Rule: "EPOLLRDHUP is raised by a FIN (tcp_fin() sets RCV_SHUTDOWN), EPOLLERR by an RST (tcp_reset()); a silent peer raises neither"}
}

// Watch waits for the events on a thread of its own.
func (d *RDHUP) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	return watchRaw(ctx, w.Conns[0], epollRDHUP)
}

func epollRDHUP(s *rawSocket) harness.Decision {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return harness.Decide("error: epoll_create1: " + err.Error())
	}
	defer unix.Close(ep)
	for _, e := range []unix.EpollEvent{
		{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(s.fd)},
		{Events: unix.EPOLLIN, Fd: int32(s.wake)},
	} {
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, int(e.Fd), &e); err != nil {
			return harness.Decide("error: epoll_ctl: " + err.Error())
		}
	}
	events := make([]unix.EpollEvent, 2)
	buf := make([]byte, 64*1024)
	for {
		n, err := unix.EpollWait(ep, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return harness.Decide(harness.ErrnoName(err))
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == s.wake {
				return harness.Decision{}
			}
			now := harness.Now()
			if ev.Events&unix.EPOLLERR != 0 {
				if serr := s.soError(); serr != nil {
					return harness.Decision{Reason: harness.ErrnoName(serr), AtNs: now}
				}
			}
			if ev.Events&unix.EPOLLIN != 0 {
				// Drain what the peer sent; an error here is the RST's.
				for {
					r, _, err := unix.Recvfrom(s.fd, buf, unix.MSG_DONTWAIT)
					if err == nil && r > 0 {
						continue
					}
					if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
						return harness.Decision{Reason: harness.ErrnoName(err), AtNs: now}
					}
					break
				}
			}
			if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
				// The protocol's word for the peer's orderly end.
				return harness.Decision{Reason: "EOF", AtNs: now}
			}
		}
	}
}

// PredictSample: a FIN or an RST at once; never on an idle silent peer;
// data in flight at the fault gives the kernel's retransmission give-up.
func (d *RDHUP) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	return readerSample(st, e)
}

// PredictResetAfter: only a resend of data in flight at the fault can
// meet a reset; idle, never.
func (d *RDHUP) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return readerResetAfter(st, after), true
}
