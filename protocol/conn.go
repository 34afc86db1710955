package protocol

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dialRetry is how long Dial waits between attempts while nobody listens.
const dialRetry = 20 * time.Millisecond

// Listen listens on addr (IP:PORT) the protocol's way: plain TCP, and no
// keepalive on the connections it accepts. Go would otherwise listen with
// MPTCP where the kernel has it, and turn on its 15 s keepalive on every
// accepted connection; a detector is measured with what it asks for, and
// the reference text and the lab's faults are about plain TCP.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Accept takes the next connection on ln, or gives up when ctx ends. A
// listener made by Listen gives connections without keepalive.
func Accept(ctx context.Context, ln net.Listener) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if tl, ok := ln.(*net.TCPListener); ok {
		stop := context.AfterFunc(ctx, func() { _ = tl.SetDeadline(time.Unix(1, 0)) })
		defer func() {
			if !stop() { // the deadline was set: lift it for the next Accept
				_ = tl.SetDeadline(time.Time{})
			}
		}()
	}
	c, err := ln.Accept()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("accept on %s: %w", ln.Addr(), err)
	}
	return c, nil
}

// Dial connects to addr over plain TCP without keepalive (Go's dialer would
// turn on its 15 s one), retrying every 20 ms for patience (0: until ctx
// ends), since the other end may not listen yet or may be coming back.
func Dial(ctx context.Context, addr string, patience time.Duration) (*net.TCPConn, error) {
	d := net.Dialer{KeepAlive: -1, Timeout: 3 * time.Second}
	d.SetMultipathTCP(false)
	start := time.Now()
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.(*net.TCPConn), nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if patience > 0 && time.Since(start) >= patience {
			return nil, fmt.Errorf("dial %s: %w (tried for %v)", addr, err, patience)
		}
		if err := sleep(ctx, dialRetry); err != nil {
			return nil, err
		}
	}
}

// sleep waits d, or less when ctx ends first (its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// InlineUrgent sets SO_OOBINLINE on c, so that urgent bytes (a MSG_OOB
// probe) are read in band: left out of band, they would turn the
// connection's close into an RST.
func InlineUrgent(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_OOBINLINE, 1)
	}); err != nil {
		return err
	}
	return serr
}

// EchoConn is the echo peer's loop: it writes back every byte c reads until
// the connection ends, and hands every chunk read to onRead (when not nil)
// first. It leaves c open.
func EchoConn(c net.Conn, onRead func([]byte)) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if onRead != nil {
				onRead(buf[:n])
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// echoClose is Echo's connection: urgent bytes in band, echoed until it
// ends, then closed.
func echoClose(c net.Conn) {
	defer c.Close()
	_ = InlineUrgent(c)
	EchoConn(c, nil)
}

// Redial is Session.Connect's dialing rule for a library that dials by
// itself: it calls dial (the library's own connect, e.g. a client's
// constructor and first command) until it succeeds, every 20 ms, for 5 s,
// or until ctx ends when HALFOPEN_RECONNECT=1 (a disturbance: the router
// may be down for the whole outage, and the watcher must come back when
// it is). It does not report connected: call s.Connected once the
// library has its connection. The error of the last attempt is wrapped
// in the one Redial returns, with how long it tried.
//
//	rdb, err := protocol.Redial(ctx, s, func(ctx context.Context) (*redis.Client, error) { ... })
func Redial[T any](ctx context.Context, s *Session, dial func(context.Context) (T, error)) (T, error) {
	patience := 5 * time.Second
	if s.Reconnect {
		patience = 0
	}
	return retry(ctx, s.Addr, patience, dial)
}

// retry calls dial every dialRetry until it succeeds, patience passes (0:
// until ctx ends) or ctx ends.
func retry[T any](ctx context.Context, addr string, patience time.Duration, dial func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	for n := 1; ; n++ {
		v, err := dial(ctx)
		if err == nil {
			return v, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			var zero T
			return zero, cerr
		}
		if patience > 0 && time.Since(start) >= patience {
			var zero T
			return zero, fmt.Errorf("dial %s: %w (%d attempts in %v)", addr, err, n, patience)
		}
		if err := sleep(ctx, dialRetry); err != nil {
			var zero T
			return zero, err
		}
	}
}
