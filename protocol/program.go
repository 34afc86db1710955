package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/halfopen/halfopen/tcprules"
)

// Range is a predicted detection time for a silent peer: from Lo to Hi after
// the peer vanished.
type Range struct{ Lo, Hi time.Duration }

// Close is how a watcher meets its peer's FIN or RST, which theory needs
// to predict it under a fault that closes or resets the connection (host
// reboots, killed servers). The zero value is the common case: a read is
// always blocked on the connection, so it notices the segment at once.
type Close struct {
	// Every is how often the watcher looks at its connection when nothing
	// reads it in between (a pool that pings its idle connections, a
	// poller): it notices a FIN or RST within Every of the segment.
	Every time.Duration
	// NeverReads is true when the watcher neither reads nor polls its
	// connection: a FIN or RST goes unnoticed.
	NeverReads bool
}

// Kernel is the kernel's dead-peer settings on the watched socket, as the
// watcher's library sets them. Declared, they let halfopen predict each
// sample from the connection's state at the fault with the kernel's own
// rules (package tcprules): keepalive while nothing is in flight, the
// retransmission timer (tcp_retries2, or TCP_USER_TIMEOUT) while a request
// is unacknowledged (net/ipv4/tcp_timer.c, /work/shared/KERNEL-RULES.md
// §1–2). Declare it only for a config whose decision is the kernel's: a
// library timer of its own that may end first (a heart-beat, a read
// deadline) makes the kernel's instant the wrong forecast.
type Kernel struct {
	// KeepIdle, KeepIntvl and KeepCnt are TCP_KEEPIDLE, TCP_KEEPINTVL and
	// TCP_KEEPCNT; KeepCnt 0 means keepalive is off.
	KeepIdle, KeepIntvl time.Duration
	KeepCnt             int
	// UserTimeout is TCP_USER_TIMEOUT (0: none).
	UserTimeout time.Duration
	// Retries2 is tcp_retries2 in the watcher's namespace (0: the
	// kernel's default, 15); RTOMax is the socket's TCP_RTO_MAX (0: 120 s).
	Retries2 int
	RTOMax   time.Duration
	// Slack is how long, at most, the library takes to report what the
	// kernel decided (a retry's back-off before it redials).
	Slack time.Duration
}

// Check says in one sentence what is wrong with k, or nil.
func (k Kernel) Check() error {
	switch {
	case k.KeepCnt < 0:
		return fmt.Errorf("keepalive count %d is negative", k.KeepCnt)
	case k.KeepCnt > 0 && (k.KeepIdle < time.Second || k.KeepIntvl < time.Second):
		return fmt.Errorf("keepalive idle=%v intvl=%v: the kernel takes whole seconds >= 1 s", k.KeepIdle, k.KeepIntvl)
	case k.UserTimeout < 0 || k.Retries2 < 0 || k.RTOMax < 0 || k.Slack < 0:
		return fmt.Errorf("kernel settings %+v: none may be negative", k)
	}
	return nil
}

// Watcher is a protocol-v1 program: a detector, given as the function that
// watches one connection, and optionally its own peer.
//
// Besides Watch, a watcher declares what halfopen's theory needs to judge
// it by its own rules (a gate's Go role, package gate): the reasons in its
// library's words, how it meets a FIN or RST, and the kernel settings its
// library puts on the socket:
//
//	protocol.Watcher{
//		Name:    "pgx-pool",
//		Predict: predictPool,                          // the cell's range
//		Reasons: []string{"i/o timeout", "ETIMEDOUT", "ECONNRESET", "EOF"},
//		Close: func(c protocol.Config) (protocol.Close, error) {
//			return protocol.Close{Every: 2 * time.Second}, nil // pings its idle pool every 2 s
//		},
//		Kernel: func(c protocol.Config) (*protocol.Kernel, error) {
//			return &protocol.Kernel{KeepIdle: time.Second, KeepIntvl: time.Second, KeepCnt: 4, UserTimeout: 5 * time.Second}, nil
//		},
//		Watch: watchPool,
//	}
type Watcher struct {
	// Name goes into hello; the report shows it.
	Name string
	// Predicted is the detection range for a silent peer (one that vanished
	// with no FIN and no RST); nil declares that the watcher never notices
	// one (predicted_s null).
	Predicted *Range
	// Predict, when set, computes the prediction from HALFOPEN_CONFIG, and
	// wins over Predicted. It may read nothing else: the harness learns the
	// prediction by running the program in an empty namespace. An error is
	// bad input: the program says it on stderr and exits with status 2
	// before hello.
	Predict func(Config) (*Range, error)
	// Reasons are every reason Watch may return: the library's own words
	// ("redial", "stale connection", "i/o timeout", "EOF") and the errno
	// names it passes on (ETIMEDOUT, ECONNRESET), the latter only if listed.
	// Theory expects exactly these of the role, under every fault; a
	// reason outside them is logged as undeclared. Empty: the role declares
	// none, and theory names no reason for it.
	Reasons []string
	// Close, when set, says for HALFOPEN_CONFIG how Watch meets a FIN or an
	// RST; nil means at once (the zero Close). An error is bad input, as
	// for Predict.
	Close func(Config) (Close, error)
	// Kernel, when set, declares for HALFOPEN_CONFIG the kernel settings
	// whose rules decide when Watch gives up (see Kernel), or nil when no
	// kernel rule decides alone for that config. An error is bad input.
	Kernel func(Config) (*Kernel, error)
	// Watch watches one connection, and returns the reason it gave up on the
	// peer (Reason(err) for an error, or the library's own words) the moment
	// it does. It makes the connection with s.Connect, or lets its library
	// dial HALFOPEN_ADDR (s.Addr) or accept on s.Listener() and then calls
	// s.Connected. It returns an error when it cannot watch at all; it must
	// return when ctx ends (SIGTERM). With HALFOPEN_RECONNECT=1 it runs
	// again after each dead, with a new Session.
	Watch func(ctx context.Context, s *Session) (reason string, err error)
	// Env is added to the environment of the role's processes (watcher
	// and peer) when a gate starts them (gate.Register): what its library
	// reads there (GODEBUG, a debug switch, a server's password), since
	// only PATH, HOME and the protocol's HALFOPEN_* variables reach them
	// otherwise. A name beginning HALFOPEN_ is the protocol's and is
	// refused, as is an empty one or one with "=". A foreign program's
	// environment is its own business (a wrapper script).
	Env map[string]string
	// Peer, when set, is the program's peer role (peer=self): it runs once,
	// for the program's life, after ready, and returns when ctx ends. Echo
	// is one; a library's own server is another (serve on s.Listener(), or
	// dial s.Addr when the watcher is the server). A peer never says dead.
	Peer func(ctx context.Context, s *Session) error
}

// PhaseKey is the config key by which a gate cell aimed at a phase of the
// connection (gate.Cell.Phase) tells its role: "in-flight" when the fault
// lands while the role's request is unacknowledged; absent (or "idle")
// when it lands on an idle connection. A role's Predict reads it with
// Config.InFlight: the kernel's rule differs (keepalive is inert while
// data is in flight, tcp_timer.c tcp_keepalive_timer).
const PhaseKey = "phase"

// InFlight reports whether the config is of a cell whose faults land while
// the role's request is in flight (PhaseKey).
func (c Config) InFlight() bool { return c.Get(PhaseKey, "") == string(tcprules.PhaseInFlight) }

// badInput is an error in what the program was given (environment, config,
// Watcher): Main exits with status 2 on it, 1 on any other error.
type badInput struct{ err error }

func (b *badInput) Error() string { return b.err.Error() }
func (b *badInput) Unwrap() error { return b.err }

// Main runs w as the environment says and exits: 0 after SIGTERM or SIGINT
// (within a second, whatever Watch is doing), 2 with one sentence on stderr
// when the environment, the config or w is wrong, 1 when the watcher could
// not watch. It never returns.
func Main(w Watcher) {
	prog := filepath.Base(os.Args[0])
	env, err := ReadEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, env, w, os.Stdout) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// The harness SIGKILLs what is left 2 s after SIGTERM and counts it
		// as a hang: a library that does not return in time is left behind.
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		os.Exit(0)
	}
	if err == nil {
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	if errors.As(err, new(*badInput)) {
		os.Exit(2)
	}
	os.Exit(1)
}

// Run is Main without the process: it speaks protocol v1 on stdout for env
// until ctx ends (nil) or the watcher fails (an error, also written as a log
// event once hello is out). A watcher that said dead without
// env.Reconnect waits for ctx to end.
func Run(ctx context.Context, env Env, w Watcher, stdout io.Writer) error {
	predicted, err := w.check(env)
	if err != nil {
		return &badInput{err}
	}
	em := NewEmitter(stdout)
	if env.Role == RolePeer {
		predicted = nil // a peer detects nothing
	}
	em.Hello(w.Name, predicted)
	if err := w.run(ctx, env, em); err != nil {
		em.Logf("%s: %v", w.Name, err)
		return err
	}
	return nil
}

// check validates w for env and returns its prediction.
func (w Watcher) check(env Env) (*Range, error) {
	if w.Name == "" {
		return nil, errors.New("the Watcher has no Name")
	}
	switch {
	case env.Role == RoleWatcher && w.Watch == nil:
		return nil, fmt.Errorf("%s has no Watch function", w.Name)
	case env.Role == RolePeer && w.Peer == nil:
		return nil, fmt.Errorf("%s has no peer role: run it with peer=builtin", w.Name)
	}
	p := w.Predicted
	if w.Predict != nil {
		var err error
		if p, err = w.Predict(env.Config); err != nil {
			return nil, err
		}
	}
	if p != nil && (p.Lo < 0 || p.Hi < p.Lo) {
		return nil, fmt.Errorf("%s predicts [%v, %v], which is not a range with 0 <= lo <= hi", w.Name, p.Lo, p.Hi)
	}
	if _, err := w.CloseFor(env.Config); err != nil {
		return nil, err
	}
	if _, err := w.KernelFor(env.Config); err != nil {
		return nil, err
	}
	for _, r := range w.Reasons {
		if r == "" {
			return nil, fmt.Errorf("%s declares an empty reason", w.Name)
		}
	}
	if _, err := w.Environ(); err != nil {
		return nil, err
	}
	return p, nil
}

// Environ is w.Env as NAME=VALUE lines, sorted, for a process's
// environment, or one sentence on the first name it may not set.
func (w Watcher) Environ() ([]string, error) {
	out := make([]string, 0, len(w.Env))
	for _, k := range slices.Sorted(maps.Keys(w.Env)) {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			return nil, fmt.Errorf("%s sets the environment variable %q, which is not a name", w.Name, k)
		case strings.HasPrefix(strings.ToUpper(k), "HALFOPEN_"):
			return nil, fmt.Errorf("%s sets %s, but HALFOPEN_* variables are halfopen's own (docs/protocol.md) and cannot be set by a role", w.Name, k)
		case strings.ContainsRune(w.Env[k], 0):
			return nil, fmt.Errorf("%s sets %s to a value with a NUL byte", w.Name, k)
		}
		out = append(out, k+"="+w.Env[k])
	}
	return out, nil
}

// CloseFor is how the watcher meets a FIN or RST under config c: its
// Close's answer, or at once when it has none.
func (w Watcher) CloseFor(c Config) (Close, error) {
	if w.Close == nil {
		return Close{}, nil
	}
	cl, err := w.Close(c)
	if err != nil {
		return Close{}, err
	}
	if cl.Every < 0 {
		return Close{}, fmt.Errorf("%s looks at its connection every %v, which is negative", w.Name, cl.Every)
	}
	return cl, nil
}

// KernelFor is the kernel settings the watcher declares under config c,
// checked, or nil when it declares none.
func (w Watcher) KernelFor(c Config) (*Kernel, error) {
	if w.Kernel == nil {
		return nil, nil
	}
	k, err := w.Kernel(c)
	if err != nil || k == nil {
		return nil, err
	}
	if err := k.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", w.Name, err)
	}
	return k, nil
}

// declared reports whether reason is one the watcher declares (always,
// when it declares none).
func (w Watcher) declared(reason string) bool {
	return len(w.Reasons) == 0 || slices.Contains(w.Reasons, reason)
}

// run is everything after hello.
func (w Watcher) run(ctx context.Context, env Env, em *Emitter) error {
	var ln net.Listener
	if env.Listens() {
		var err error
		if ln, err = Listen(ctx, env.Addr); err != nil {
			return err
		}
		defer ln.Close()
		defer context.AfterFunc(ctx, func() { ln.Close() })()
	}
	em.Ready()
	if env.Role == RolePeer {
		s := newSession(ctx, env, em, ln)
		defer s.close()
		if err := w.Peer(ctx, s); err != nil && ctx.Err() == nil {
			return fmt.Errorf("peer: %w", err)
		}
		return nil
	}
	for {
		s := newSession(ctx, env, em, ln)
		reason, err := w.Watch(ctx, s)
		connected := s.isConnected()
		if ctx.Err() == nil && err == nil && reason != "" && connected {
			em.Dead(reason) // before closing anything: t_ns is the decision
			if !w.declared(reason) {
				em.Logf("%s: gave up with %q, which is not among its declared reasons %q", w.Name, reason, w.Reasons)
			}
		}
		s.close()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return fmt.Errorf("watch: %w", err)
		case reason == "":
			return errors.New("watch returned neither a reason nor an error")
		case !connected && !env.Reconnect:
			return fmt.Errorf("watch gave up (%s) before it reported connected", reason)
		case !connected:
			em.Logf("%s: gave up (%s) before it reported connected; trying again", w.Name, reason)
			if sleep(ctx, 100*time.Millisecond) != nil {
				return nil
			}
		case !env.Reconnect:
			<-ctx.Done()
			return nil
		}
	}
}

// Session is what Watch (one connection) or Peer (the program's life) is
// given: the environment, the way to connect, and the output. It is safe for
// concurrent use.
type Session struct {
	Env

	em   *Emitter
	ln   net.Listener
	stop func() bool

	mu        sync.Mutex
	conns     []net.Conn
	connected bool
	closed    bool
}

func newSession(ctx context.Context, env Env, em *Emitter, ln net.Listener) *Session {
	s := &Session{Env: env, em: em, ln: ln}
	// Closing the session's connections wakes a Watch blocked in a read.
	s.stop = context.AfterFunc(ctx, s.closeConns)
	return s
}

// Connect makes a connection the protocol's way and reports connected. The
// listening end accepts the next connection on HALFOPEN_ADDR; the dialing end
// dials it, retrying for 5 s (until ctx ends with HALFOPEN_RECONNECT=1),
// since the other end may not listen yet or may be coming back. Neither has
// TCP keepalive, unlike Go's default of 15 s: set your own on the connection.
// The session closes the connection when Watch returns.
func (s *Session) Connect(ctx context.Context) (net.Conn, error) {
	var (
		c   net.Conn
		err error
	)
	if s.ln != nil {
		c, err = Accept(ctx, s.ln)
	} else {
		patience := 5 * time.Second
		if s.Reconnect {
			patience = 0
		}
		c, err = Dial(ctx, s.Addr, patience)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.conns = append(s.conns, c)
	}
	s.mu.Unlock()
	if closed {
		c.Close()
		return nil, fmt.Errorf("connect to %s: the session has ended", s.Addr)
	}
	s.Connected()
	return c, nil
}

// Connected reports that the connection is established, for a library that
// dials or accepts by itself: call it the moment the library has its
// connection. It prints connected once per session; later calls do nothing.
func (s *Session) Connected() {
	s.mu.Lock()
	first := !s.connected
	s.connected = true
	s.mu.Unlock()
	if first {
		s.em.Connected()
	}
}

// Listener is the listener on HALFOPEN_ADDR when this end listens (nil when
// it dials), for a library that accepts by itself. It is open from before
// ready until the program ends, across sessions: do not close it.
func (s *Session) Listener() net.Listener { return s.ln }

// Logf emits a log event: anything worth keeping with the sample. The
// harness writes every log line, with the program's standard error, to the
// sample's log beside the report, and shows the last lines when the sample
// fails or surprises.
func (s *Session) Logf(format string, args ...any) { s.em.Logf(format, args...) }

// Mark records an instant the watcher noticed before (or besides) its
// decision, under a name of its own: its library redialled, a pool
// dropped a connection, a retry began. The report keeps each sample's
// marks in seconds after the fault and draws them on its timeline;
// gate.MarkWithin asserts on one. A mark is not a decision: the sample
// still ends with the reason Watch returns. An empty name is ignored.
func (s *Session) Mark(name string) {
	if name != "" {
		s.em.Mark(name)
	}
}

func (s *Session) isConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// close ends the session: its connections are closed.
func (s *Session) close() {
	s.stop()
	s.closeConns()
}

func (s *Session) closeConns() {
	s.mu.Lock()
	conns := s.conns
	s.conns, s.closed = nil, true
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Echo is a peer role that echoes every byte it receives, as halfopen's
// built-in peer does. The listening end serves every connection it accepts
// at once (a watcher that reconnects after a false positive finds it ready
// while the old connection hangs); the dialing end dials again when its
// connection ends and HALFOPEN_RECONNECT=1. Urgent bytes are read in band
// (SO_OOBINLINE), so a MSG_OOB probe does not turn its close into an RST.
func Echo(ctx context.Context, s *Session) error {
	for {
		c, err := s.Connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if s.Listens() {
			go echoClose(c)
			continue
		}
		echoClose(c)
		if !s.Reconnect {
			<-ctx.Done()
			return nil
		}
	}
}
