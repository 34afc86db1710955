package scale

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/detectors"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
)

// timerKind is what an application timer of the epoll loop does.
type timerKind uint8

const (
	timerWrite timerKind = iota // user-timeout: write one byte, re-arm `every` later
	timerPing                   // heart-beat: write the ping byte, re-arm `interval` later
	timerCheck                  // heart-beat: dead if nothing heard for misses·interval
	timerPoll                   // tcp-info: read TCP_INFO, re-arm `every` later
)

// timer is one application timer of one connection. gen is the connection's
// generation when it was armed: a timer of a freed descriptor (and of a
// later connection that reuses the number) is recognised and dropped.
type timer struct {
	at   int64 // CLOCK_MONOTONIC nanoseconds
	fd   int32
	gen  uint32
	kind timerKind
}

// timerHeap is a binary min-heap of timers by instant: O(log N) to arm and
// to fire, and its top is epoll_wait's timeout.
type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push adds a timer (heap.Interface).
func (h *timerHeap) Push(x any) { *h = append(*h, x.(timer)) }

// Pop removes the last timer (heap.Interface).
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// epollConn is the loop's state for one descriptor.
type epollConn struct {
	open      bool
	gen       uint32
	lastHeard int64 // heart-beat: instant of the last byte received
}

// epollDetector is what the loop does for one detector family: the socket
// options it sets, whether it waits for reads, and its application timers.
type epollDetector struct {
	setsockopt func(fd int) error
	// readable: the connection is in the epoll set for EPOLLIN|EPOLLRDHUP
	// (EPOLLERR and EPOLLHUP come with it). tcp-info neither reads nor
	// writes: its descriptors are only polled.
	readable bool
	// first arms the connection's timers when it is accepted.
	first []timer
	// period of each timer kind.
	every    time.Duration // timerWrite
	interval time.Duration // timerPing
	dead     time.Duration // timerCheck: misses·interval
	poll     time.Duration // timerPoll
}

// epollDetectorFor maps halfopen's detector to the loop's way of running
// it, with the same parameters and the same decision rule.
func epollDetectorFor(det harness.Detector) (*epollDetector, error) {
	switch d := det.(type) {
	case *detectors.ReadEOF:
		return &epollDetector{readable: true}, nil
	case *detectors.KeepaliveTuned:
		return &epollDetector{readable: true, setsockopt: func(fd int) error {
			return errors.Join(
				unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1),
				unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(d.Idle/time.Second)),
				unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(d.Intvl/time.Second)),
				unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, d.Cnt),
			)
		}}, nil
	case *detectors.UserTimeout:
		return &epollDetector{readable: true, every: d.Every, first: []timer{{at: int64(d.Every), kind: timerWrite}},
			setsockopt: func(fd int) error {
				return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Timeout.Milliseconds()))
			}}, nil
	case *detectors.HeartbeatInband:
		dead := time.Duration(d.Misses) * d.Interval
		return &epollDetector{readable: true, interval: d.Interval, dead: dead,
			first: []timer{{at: int64(d.Interval), kind: timerPing}, {at: int64(dead), kind: timerCheck}}}, nil
	case *detectors.TCPInfo:
		return &epollDetector{poll: d.Every, first: []timer{{at: int64(d.Every), kind: timerPoll}}}, nil
	}
	return nil, fmt.Errorf("the epoll design has no implementation of detector %T; it runs read-eof, keepalive-tuned, user-timeout, heartbeat-inband and tcp-info", det)
}

// epollLoop is the single-threaded server.
type epollLoop struct {
	det    *epollDetector
	rec    *recorder
	ep     int
	lfd    int
	wake   int
	conns  []epollConn // by descriptor
	timers timerHeap
	buf    [4096]byte
}

// serveEpoll listens on addr with raw sockets and runs the loop on a
// locked OS thread until ctx ends.
func serveEpoll(ctx context.Context, det harness.Detector, addr string, rec *recorder) (func() error, error) {
	ed, err := epollDetectorFor(det)
	if err != nil {
		return nil, err
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	l := &epollLoop{det: ed, rec: rec, ep: -1, lfd: -1, wake: -1}
	if err := l.open(ap, rec.n); err != nil {
		l.close()
		return nil, err
	}
	context.AfterFunc(ctx, func() {
		var one = [8]byte{1}
		_, _ = unix.Write(l.wake, one[:])
	})
	done := make(chan error, 1)
	go func() {
		// The loop is one thread: every descriptor, every timer.
		runtime.LockOSThread()
		err := l.run()
		l.close()
		done <- err
	}()
	return func() error { return <-done }, nil
}

func (l *epollLoop) open(ap netip.AddrPort, backlog int) error {
	var err error
	if l.lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(l.lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(l.lfd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		return fmt.Errorf("bind %s: %w", ap, err)
	}
	// The kernel caps the backlog at the namespace's net.core.somaxconn.
	if err := unix.Listen(l.lfd, backlog); err != nil {
		return fmt.Errorf("listen on %s: %w", ap, err)
	}
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	if l.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	for _, fd := range []int{l.lfd, l.wake} {
		if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fmt.Errorf("epoll_ctl add %d: %w", fd, err)
		}
	}
	return nil
}

// close resets (RST) every connection still held, rather than leave
// orphans closing them, and closes the loop's own descriptors.
func (l *epollLoop) close() {
	for fd, c := range l.conns {
		if c.open {
			_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			unix.Close(fd)
		}
	}
	for _, fd := range []int{l.lfd, l.wake, l.ep} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func (l *epollLoop) run() error {
	events := make([]unix.EpollEvent, 1024)
	for {
		timeout := -1
		if len(l.timers) > 0 {
			// Rounded up: epoll_wait counts whole milliseconds, and waking
			// before the timer is due would spin.
			timeout = max(0, int((l.timers[0].at-protocol.Now()+int64(time.Millisecond)-1)/int64(time.Millisecond)))
		}
		n, err := unix.EpollWait(l.ep, events, timeout)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			switch fd := int(ev.Fd); fd {
			case l.wake:
				return nil
			case l.lfd:
				if err := l.acceptAll(); err != nil {
					return err
				}
			default:
				l.readable(fd)
			}
		}
		l.fireDue()
	}
}

// acceptAll accepts every pending connection, sets the detector's socket
// options and arms its timers from the instant it was accepted.
func (l *epollLoop) acceptAll() error {
	for {
		fd, _, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ECONNABORTED) || errors.Is(err, unix.EINTR) {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		if l.det.setsockopt != nil {
			if err := l.det.setsockopt(fd); err != nil {
				unix.Close(fd)
				return fmt.Errorf("set the detector's socket options: %w", err)
			}
		}
		if l.det.readable {
			if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
				unix.Close(fd)
				return fmt.Errorf("epoll_ctl add: %w", err)
			}
		}
		for len(l.conns) <= fd {
			l.conns = append(l.conns, epollConn{})
		}
		now := protocol.Now()
		c := &l.conns[fd]
		c.open, c.lastHeard = true, now
		c.gen++
		for _, t := range l.det.first {
			heap.Push(&l.timers, timer{at: now + t.at, fd: int32(fd), gen: c.gen, kind: t.kind})
		}
		l.rec.accepted1()
	}
}

// readable drains a connection: bytes are heard (the heart-beat's pongs,
// the user timeout's echo), 0 is the client's FIN, an error (ETIMEDOUT from
// keepalive or the user timeout, ECONNRESET) is its death.
func (l *epollLoop) readable(fd int) {
	if fd >= len(l.conns) || !l.conns[fd].open {
		return
	}
	for {
		n, err := unix.Read(fd, l.buf[:])
		switch {
		case n > 0:
			l.conns[fd].lastHeard = protocol.Now()
			continue
		case err == nil:
			l.free(fd, "EOF")
		case errors.Is(err, unix.EAGAIN):
		case errors.Is(err, unix.EINTR):
			continue
		default:
			l.free(fd, protocol.Reason(err))
		}
		return
	}
}

// fireDue runs every timer that is due.
func (l *epollLoop) fireDue() {
	for len(l.timers) > 0 {
		now := protocol.Now()
		if l.timers[0].at > now {
			return
		}
		t := heap.Pop(&l.timers).(timer)
		fd := int(t.fd)
		if c := l.conns[fd]; !c.open || c.gen != t.gen {
			continue
		}
		switch t.kind {
		case timerWrite, timerPing:
			b, period := byte('.'), l.det.every
			if t.kind == timerPing {
				b, period = 'p', l.det.interval
			}
			if _, err := unix.Write(fd, []byte{b}); err != nil && !errors.Is(err, unix.EAGAIN) {
				l.free(fd, protocol.Reason(err))
				continue
			}
			t.at += int64(period)
			heap.Push(&l.timers, t)
		case timerCheck:
			deadline := l.conns[fd].lastHeard + int64(l.det.dead)
			if now >= deadline {
				l.free(fd, "heartbeat")
				continue
			}
			t.at = deadline
			heap.Push(&l.timers, t)
		case timerPoll:
			if reason := tcpInfoDead(fd); reason != "" {
				l.free(fd, reason)
				continue
			}
			t.at += int64(l.det.poll)
			heap.Push(&l.timers, t)
		}
	}
}

// tcpInfoDead is the reference text's SocketConnected(): the state's name
// (or the pending error of a closed socket) once it is not ESTABLISHED.
func tcpInfoDead(fd int) string {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return protocol.Reason(err)
	}
	if info.State == unix.BPF_TCP_ESTABLISHED {
		return ""
	}
	if v, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); v != 0 {
		return protocol.Reason(unix.Errno(v))
	}
	return fmt.Sprintf("tcpi_state %d", info.State)
}

// free closes a connection (leaving the epoll set with it) and records it.
func (l *epollLoop) free(fd int, reason string) {
	c := &l.conns[fd]
	c.open = false
	c.gen++
	unix.Close(fd)
	l.rec.free(reason)
}
