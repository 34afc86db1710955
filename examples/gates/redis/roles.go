// Package redisgate gates go-redis (github.com/redis/go-redis/v9 v9.23.0)
// against a real redis-server (Debian's redis-server package) on halfopen's
// detection budgets: how fast a go-redis client blocked in BLPOP, or
// subscribed and blocked in Receive, notices that its server is gone, and
// whether it survives a 2 s router restart. The roles are registered in
// init; the suite in redis_test.go measures them.
//
// Every role reads these keys of its config (HALFOPEN_CONFIG; absent means
// go-redis's default):
//
//	idle, intvl, cnt  TCP keepalive of the dialer (Options.Dialer with a
//	                  net.Dialer{KeepAliveConfig}); default: go-redis's own
//	                  dialer, 30 s / 5 s / 3 (options.go, defaultKeepAliveConfig)
//	usertimeout       TCP_USER_TIMEOUT, set by the dialer's Control function
//	readtimeout       Options.ReadTimeout (default 5 s; a blocking command
//	                  and a subscription do not use it)
//	blpop             the BLPOP timeout of the blocking role (default 0: block
//	                  forever); go-redis sets the read deadline to it + 10 s
//	maxretries        Options.MaxRetries (default 3; -1: no retry)
//	dialtimeout       Options.DialTimeout (default 5 s)
//	protocol          Options.Protocol (default 3, RESP3)
//	decide            the BLPOP role's decision: connection (default: go-redis
//	                  gives up on its connection, the redial or the error) or
//	                  call (the application's call fails; the redial is marked)
//
// What go-redis v9.23.0 does when the kernel gives up on a connection
// (ETIMEDOUT from keepalive, ECONNRESET from a rebooted server), read in
// its source: with RESP3 (the default) a command's reply is read after
// processPendingPushNotificationWithReader (redis.go, in _process; pubsub.go,
// in ReceiveTimeout), whose PeekReplyType (push/processor.go,
// processPendingNotifications) breaks out on any error and so swallows the
// socket's error; the reply's own read then finds the socket closed and
// returns io.EOF. shouldRetry (error.go) retries io.EOF, so a BLPOP is
// sent again, up to MaxRetries times, each on a newly dialed connection
// (each dial bounded by DialTimeout, DialerRetries times): the application
// sees nothing while go-redis dials a dead server, and nothing at all when
// the server came back. Receive on a subscription is not retried: it
// returns the EOF.
//
// A library with two instants: go-redis gives up on its connection when
// it dials a new one ("redial", about 45 s after a blackhole with its
// defaults), while the application's call fails only when the retries
// have run out (a BLPOP, about 122 s: MaxRetries dials of DialerRetries
// attempts of DialTimeout each). Both roles mark the first redial
// (protocol.Session.Mark, asserted with gate.MarkWithin). Both roles
// decide when go-redis gives up on its connection: at the redial or the
// call's error, whichever comes first (a subscription redials under its
// lock and Receive returns right after). With decide=call the BLPOP role
// decides only when its call returns an error: what the application
// sees, and nothing when a retry reaches the server again (a rebooted
// host, a middlebox that lost its state).
package redisgate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/tcprules"
)

// The server and the roles the suite measures: typed handles, so that a
// misspelt one does not compile.
var (
	// Server is the real redis-server, started in the peer host: no
	// persistence, no protected mode (the lab's client is not on
	// loopback), its working directory the sample's own.
	Server = gate.Service(gate.Server{
		Name: "redis-server", Path: "redis-server", Package: "redis-server",
		Args: []string{"--bind", "{ip}", "--port", "{port}", "--save", "", "--appendonly", "no",
			"--protected-mode", "no", "--dir", "{dir}", "--daemonize", "no"},
	})
	// Both roles block in a read on their connection (a FIN or RST is met
	// at once: the zero Close), and give up with Reasons: go-redis's
	// words, and the errno names it passes on with RESP2.

	// BLPOP is a client blocked in BLPOP on an empty list, in a loop.
	BLPOP = gate.Register("redis-blpop", protocol.Watcher{Predict: predictBLPOP, Reasons: Reasons, Kernel: kernelBLPOP, Watch: watchBLPOP})
	// PubSub is a client subscribed to a channel, blocked in Receive.
	PubSub = gate.Register("redis-pubsub", protocol.Watcher{Predict: predictPubSub, Reasons: Reasons, Kernel: kernelPubSub, Watch: watchPubSub})
)

// go-redis v9.23.0's defaults, from its source (options.go):
// defaultKeepAliveConfig is the keepalive of NewDialer, the default
// Options.Dialer; cmdTimeout (redis.go) gives a blocking command with a
// timeout t>0 a read deadline of t + blockingSlack, and t=0 none at all.
var (
	defaultKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}
	blockingSlack    = 10 * time.Second
)

// Reasons are what a role gives up with (Reason): "EOF" (RESP3 swallows
// the socket's errno, see the package comment), "redial" (go-redis dialed
// again to retry or resubscribe), "i/o timeout" (a blocking command's
// read deadline, timeout + 10 s), "context deadline exceeded", and the
// errno a RESP2 client sees.
var Reasons = []string{"EOF", "redial", "i/o timeout", "context deadline exceeded", "ETIMEDOUT", "ECONNRESET"}

// retryBackoff is the longest back-off go-redis waits before it retries a
// command (Options.MaxRetryBackoff, 512 ms): the "redial" comes within it
// of the EOF.
const retryBackoff = 512 * time.Millisecond

// go-redis v9.23.0's dial of a new connection (internal/pool/pool.go,
// ConnPool.dialConn): DialerRetries attempts (5), each bounded by
// DialTimeout, dialerRetryWait (DialerRetryTimeout, 100 ms) apart.
const (
	dialerRetries   = 5
	dialerRetryWait = 100 * time.Millisecond
)

// retriesDead is how long go-redis's retries of a command take against a
// server that stays unreachable, at most: MaxRetries back-offs and dials
// of dialerRetries attempts each.
func (s settings) retriesDead() time.Duration {
	dial := dialerRetries*s.dialTimeout + (dialerRetries-1)*dialerRetryWait
	return time.Duration(s.maxRetries) * (retryBackoff + dial)
}

// kernel is what the role's dialer puts on the socket: keepalive and
// TCP_USER_TIMEOUT.
func (s settings) kernel() *protocol.Kernel {
	return &protocol.Kernel{KeepIdle: s.keepalive.Idle, KeepIntvl: s.keepalive.Interval, KeepCnt: s.keepalive.Count, UserTimeout: s.userTimeout}
}

// kernelBLPOP: the kernel decides a BLPOP without a timeout (keepalive
// while it waits idle, the retransmission timer or TCP_USER_TIMEOUT while
// it is unacknowledged), go-redis reports it after its retries when it
// retries (RESP3, MaxRetries > 0: retriesDead against a server that stays
// away); a BLPOP with a timeout has a read deadline of its own, which no
// kernel rule sees.
func kernelBLPOP(c protocol.Config) (*protocol.Kernel, error) {
	s, err := parse(c)
	if err != nil || s.blpop > 0 {
		return nil, err
	}
	k := s.kernel()
	switch {
	case s.protocol == 3 && s.maxRetries > 0 && s.decideCall:
		k.Slack = s.retriesDead()
	case s.protocol == 3 && s.maxRetries > 0:
		k.Slack = retryBackoff
	}
	return k, nil
}

// kernelPubSub: Receive has no deadline, so the kernel decides; the
// subscription reconnects at once.
func kernelPubSub(c protocol.Config) (*protocol.Kernel, error) {
	s, err := parse(c)
	if err != nil {
		return nil, err
	}
	return s.kernel(), nil
}

// settings are a role's go-redis settings, read from its config.
type settings struct {
	keepalive   net.KeepAliveConfig
	custom      bool // a dialer of our own (keepalive or user timeout set)
	userTimeout time.Duration
	readTimeout time.Duration
	blpop       time.Duration
	maxRetries  int
	dialTimeout time.Duration
	protocol    int
	// decideCall: the BLPOP role decides on its call's error only
	// (decide=call); by default (decide=connection) it decides when
	// go-redis gives up on its connection, at the redial or the error.
	decideCall bool
}

func parse(c protocol.Config) (settings, error) {
	var s settings
	ka := defaultKeepAlive
	var err error
	if ka.Idle, err = c.Duration("idle", ka.Idle); err != nil {
		return s, err
	}
	if ka.Interval, err = c.Duration("intvl", ka.Interval); err != nil {
		return s, err
	}
	if ka.Count, err = c.Int("cnt", ka.Count); err != nil {
		return s, err
	}
	if s.userTimeout, err = c.Duration("usertimeout", 0); err != nil {
		return s, err
	}
	if s.readTimeout, err = c.Duration("readtimeout", 0); err != nil {
		return s, err
	}
	if s.blpop, err = c.Duration("blpop", 0); err != nil {
		return s, err
	}
	if s.maxRetries, err = c.Int("maxretries", 3); err != nil {
		return s, err
	}
	if s.dialTimeout, err = c.Duration("dialtimeout", 5*time.Second); err != nil {
		return s, err
	}
	if s.protocol, err = c.Int("protocol", 3); err != nil {
		return s, err
	}
	switch d := c.Get("decide", "connection"); d {
	case "connection":
	case "call":
		s.decideCall = true
	default:
		return s, fmt.Errorf("decide=%q: a BLPOP decides when go-redis gives up on its connection (connection) or when the call fails (call)", d)
	}
	if ka.Idle < time.Second || ka.Interval < time.Second || ka.Count < 1 {
		return s, fmt.Errorf("keepalive idle=%v intvl=%v cnt=%d: the kernel takes whole seconds >= 1 s and cnt >= 1", ka.Idle, ka.Interval, ka.Count)
	}
	s.keepalive = ka
	_, i := c["idle"]
	_, v := c["intvl"]
	_, n := c["cnt"]
	s.custom = i || v || n || s.userTimeout > 0
	return s, nil
}

// options are the go-redis client options for addr. Every dial goes
// through onDial first: go-redis's own dialer (NewDialer, the default
// Options.Dialer) unless keepalive or the user timeout is set.
func (s settings) options(addr string, onDial func()) *redis.Options {
	o := &redis.Options{Addr: addr, ReadTimeout: s.readTimeout, DisableIdentity: true,
		MaxRetries: s.maxRetries, DialTimeout: s.dialTimeout, Protocol: s.protocol}
	dial := redis.NewDialer(o)
	if s.custom {
		d := &net.Dialer{Timeout: s.dialTimeout, KeepAliveConfig: s.keepalive}
		if s.userTimeout > 0 {
			ms := int(s.userTimeout.Milliseconds())
			d.Control = func(_, _ string, rc syscall.RawConn) error {
				var serr error
				if err := rc.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
				}); err != nil {
					return err
				}
				return serr
			}
		}
		dial = d.DialContext
	}
	o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		onDial()
		return dial(ctx, network, addr)
	}
	return o
}

// keepaliveRange is when the kernel gives up on an idle connection whose
// peer is silent, by the kernel's rule (tcprules.KeepaliveRange, or
// tcprules.KeepaliveUserTimeoutRange with TCP_USER_TIMEOUT, which ignores
// the count): the one implementation the built-in detectors use too. A
// cell aimed at a request in flight is predicted by the role detector from
// the role's Kernel declaration instead (keepalive is inert then).
func (s settings) keepaliveRange() protocol.Range {
	ka := s.keepalive
	r := tcprules.KeepaliveRange(ka.Idle, ka.Interval, ka.Count)
	if s.userTimeout > 0 {
		r = tcprules.KeepaliveUserTimeoutRange(ka.Idle, ka.Interval, s.userTimeout)
	}
	return protocol.Range{Lo: r.Lo, Hi: r.Hi}
}

// predictBLPOP: the keepalive rule, or, for BLPOP with a timeout t > 0, the
// read deadline t + 10 s of the BLPOP in flight (started within t before
// the fault), whichever comes first; with retries (RESP3, MaxRetries > 0)
// the application's error comes after MaxRetries redials to the silent
// server, each of DialerRetries attempts of DialTimeout (retriesDead).
func predictBLPOP(c protocol.Config) (*protocol.Range, error) {
	s, err := parse(c)
	if err != nil {
		return nil, err
	}
	r := s.keepaliveRange()
	switch {
	case s.protocol == 3 && s.maxRetries > 0 && s.decideCall:
		dials := time.Duration(s.maxRetries) * (dialerRetries*s.dialTimeout + (dialerRetries-1)*dialerRetryWait)
		r.Lo += dials
		r.Hi += s.retriesDead()
	case s.protocol == 3 && s.maxRetries > 0:
		r.Hi += retryBackoff
	}
	if s.blpop > 0 {
		lo, hi := blockingSlack, s.blpop+blockingSlack+50*time.Millisecond
		r = protocol.Range{Lo: min(r.Lo, lo), Hi: min(r.Hi, hi)}
	}
	return &r, nil
}

// predictPubSub: Receive sets no read deadline (ReceiveTimeout(ctx, 0)), so
// only keepalive can end it.
func predictPubSub(c protocol.Config) (*protocol.Range, error) {
	s, err := parse(c)
	if err != nil {
		return nil, err
	}
	r := s.keepaliveRange()
	return &r, nil
}

// redialHook tells, once the role is connected, that go-redis dials a new
// connection (from any of its pools): it has given up on the one it had.
// The first such dial is marked "redial"; every one is logged.
type redialHook struct {
	sess      *protocol.Session
	connected atomic.Bool
	dials     atomic.Int32
	redial    chan struct{}
}

// dialed marks and signals a dial made after the role connected.
func (h *redialHook) dialed() {
	if !h.connected.Load() {
		return
	}
	n := h.dials.Add(1)
	if n == 1 {
		h.sess.Mark("redial")
	}
	h.sess.Logf("go-redis dials %s (dial %d since it gave up on its connection)", h.sess.Addr, n)
	select {
	case h.redial <- struct{}{}:
	default:
	}
}

// client makes the role's client, its dials watched, and closes it when
// ctx ends, which wakes a command blocked without a deadline.
func client(ctx context.Context, sess *protocol.Session) (*redis.Client, settings, *redialHook, func(), error) {
	s, err := parse(sess.Config)
	if err != nil {
		return nil, s, nil, nil, err
	}
	hook := &redialHook{sess: sess, redial: make(chan struct{}, 1)}
	rdb := redis.NewClient(s.options(sess.Addr, hook.dialed))
	stop := context.AfterFunc(ctx, func() { rdb.Close() })
	// Closing may wait for a dial to a dead server under go-redis's locks:
	// the role's decision must not wait for it.
	return rdb, s, hook, func() { stop(); go rdb.Close() }, nil
}

// decide runs the role's loop until it fails, or, when redialDecides,
// until go-redis redials, and names what happened: the error the
// application got, or "redial".
func decide(ctx context.Context, hook *redialHook, redialDecides bool, loop func() error) string {
	errc := make(chan error, 1)
	go func() { errc <- loop() }()
	redial := hook.redial
	if !redialDecides {
		redial = nil // marked by the hook; the call's error decides
	}
	select {
	case err := <-errc:
		if ctx.Err() != nil {
			return ""
		}
		return Reason(err)
	case <-redial:
		return "redial"
	case <-ctx.Done():
		return ""
	}
}

// ping waits until the server answers PING: it accepts as soon as it
// listens, but a rebooted host's server may still be coming back.
func ping(ctx context.Context, sess *protocol.Session, rdb *redis.Client) error {
	start := time.Now()
	for {
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !sess.Reconnect && time.Since(start) > 10*time.Second {
			return fmt.Errorf("redis-server at %s never answered PING: %w", sess.Addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watchBLPOP blocks in BLPOP on a list nobody pushes to, again after each
// timeout (redis.Nil), and gives up with the first error go-redis returns;
// go-redis's redial to retry it is marked, not decided.
func watchBLPOP(ctx context.Context, sess *protocol.Session) (string, error) {
	rdb, s, hook, done, err := client(ctx, sess)
	if err != nil {
		return "", err
	}
	defer done()
	if err := ping(ctx, sess, rdb); err != nil {
		return "", err
	}
	hook.connected.Store(true)
	sess.Connected()
	return decide(ctx, hook, !s.decideCall, func() error {
		for {
			_, err := rdb.BLPop(ctx, s.blpop, "halfopen:empty").Result()
			if err != nil && !errors.Is(err, redis.Nil) { // Nil: timed out with nothing
				return err
			}
		}
	}), nil
}

// watchPubSub subscribes to a channel nobody publishes on and blocks in
// Receive until go-redis returns an error or redials: a subscription whose
// connection fails is reconnected (PubSub.reconnect, under its lock) before
// Receive returns the error, so the redial comes first.
func watchPubSub(ctx context.Context, sess *protocol.Session) (string, error) {
	rdb, _, hook, done, err := client(ctx, sess)
	if err != nil {
		return "", err
	}
	defer done()
	if err := ping(ctx, sess, rdb); err != nil {
		return "", err
	}
	ps := rdb.Subscribe(ctx, "halfopen:quiet")
	defer func() { go ps.Close() }() // see client: never wait for a dial
	// The subscription's confirmation: the connection is subscribed.
	msg, err := ps.Receive(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return "", nil
		}
		return "", fmt.Errorf("subscribe: %w", err)
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		return "", fmt.Errorf("subscribe: got %T, not the subscription", msg)
	}
	hook.connected.Store(true)
	sess.Connected()
	return decide(ctx, hook, true, func() error {
		for {
			if _, err := ps.Receive(ctx); err != nil {
				return err
			}
		}
	}), nil
}

// Reason names what a go-redis call failed with: the errno (ETIMEDOUT,
// ECONNRESET), "EOF", "i/o timeout" for a read deadline, "context deadline
// exceeded", or the library's words.
func Reason(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "i/o timeout"
	case errors.Is(err, context.DeadlineExceeded):
		return "context deadline exceeded"
	}
	return protocol.Reason(err)
}
