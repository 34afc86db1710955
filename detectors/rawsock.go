package detectors

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
)

// rawSocket is a duplicate of a connection's descriptor switched to blocking
// mode, for the detectors that make the reference text's blocking system
// calls themselves (select, recv, epoll_wait) instead of going through Go's
// netpoller, which retries EINTR and would hide the trap they measure. The
// blocking flag lives on the open file description, so the Go connection's
// own descriptor turns blocking too: the watcher never reads through it
// again. wake is an eventfd in every wait set, written when the watch ends.
type rawSocket struct {
	fd   int
	wake int
}

// newRawSocket duplicates c's descriptor in blocking mode and makes the wake
// eventfd.
func newRawSocket(c *net.TCPConn) (*rawSocket, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("raw connection: %w", err)
	}
	fd := -1
	var derr error
	if err := raw.Control(func(orig uintptr) {
		fd, derr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("raw connection: %w", err)
	}
	if derr != nil {
		return nil, fmt.Errorf("dup socket: %w", derr)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("make socket blocking: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &rawSocket{fd: fd, wake: wake}, nil
}

// wakeUp makes the wake descriptor readable, ending any wait that holds it.
func (s *rawSocket) wakeUp() {
	var one = [8]byte{1}
	_, _ = unix.Write(s.wake, one[:])
}

func (s *rawSocket) close() {
	unix.Close(s.fd)
	unix.Close(s.wake)
}

// soError reads and clears the socket's pending error (SO_ERROR).
func (s *rawSocket) soError() error {
	v, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return unix.Errno(v)
	}
	return nil
}

// watchRaw runs loop on a goroutine locked to its OS thread, so that the
// thread blocked in the system call is one the signal-storm fault can
// interrupt, and ends it when ctx ends. A decision made after ctx ended is
// dropped.
func watchRaw(ctx context.Context, c *net.TCPConn, loop func(s *rawSocket) harness.Decision) harness.Decision {
	s, err := newRawSocket(c)
	if err != nil {
		return harness.Decide("error: " + err.Error())
	}
	defer s.close()
	stop := context.AfterFunc(ctx, s.wakeUp)
	defer stop()
	out := make(chan harness.Decision, 1)
	go func() {
		runtime.LockOSThread()
		// SIGURG is the Go runtime's own goroutine preemption signal: sent to
		// a thread whose goroutine is about to enter select(), it interrupts
		// it with EINTR (Go 1.14 release notes). The reference text allows a
		// program to mask the signals it expects at start; this one is the
		// runtime's, not the experiment's, so the thread blocks it, and only
		// the signals the program did not expect remain. The thread is not
		// handed back with the mask changed: it exits with the goroutine.
		var urg unix.Sigset_t
		urg.Val[(unix.SIGURG-1)/64] |= 1 << ((uint(unix.SIGURG) - 1) % 64)
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &urg, nil); err != nil {
			out <- harness.Decide("error: block SIGURG: " + err.Error())
			return
		}
		out <- loop(s)
	}()
	d := <-out
	if ctx.Err() != nil {
		return harness.Decision{}
	}
	return d
}
