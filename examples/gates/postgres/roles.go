// Package pggate gates pgx (github.com/jackc/pgx/v5 v5.12.0, pgxpool)
// against a real PostgreSQL server (Debian's postgresql package) on
// halfopen's detection budgets: how fast a pgx client notices that its
// database is gone with a query in flight, or with an idle pool it pings,
// and whether it survives a 2 s router restart. The roles and the server
// are registered in init; the suite in postgres_test.go measures them.
//
// The server is a throw-away cluster, run as the postgres user (PostgreSQL
// refuses root) inside the peer host: initdb runs once per test process
// into a template (trust authentication for the lab's 198.18.0.0/15), and
// each sample's Setup copies the template (28 MB, with 1 MB WAL segments)
// into the sample's own directory (cp -a: milliseconds in tmpfs, where the
// suite keeps them, instead of 1–2 s of initdb per sample).
//
// Every role reads these keys of its config (HALFOPEN_CONFIG; absent means
// pgx's default):
//
//	idle, intvl, cnt  TCP keepalive of the dialer (pgconn.Config.DialFunc, a
//	                  net.Dialer{KeepAliveConfig}); default: pgconn's
//	                  makeDefaultDialer, a bare net.Dialer{}, whose keepalive
//	                  is Go's: 15 s / 15 s / 9 (net/dial.go)
//	usertimeout       TCP_USER_TIMEOUT, set by the dialer's Control function
//	every             the pool role's period of pool.Ping (default 2 s)
//	timeout           a context deadline on each pool.Ping (default none)
//	pingtimeout       pgxpool.Config.PingTimeout (default 0: none), the bound
//	                  of the ping pgxpool sends on Acquire to a connection idle
//	                  for over 1 s (pool.go, Acquire and the default ShouldPing)
//	healthcheck       pgxpool.Config.HealthCheckPeriod (default 1 min; it
//	                  checks only lifetimes and idle times, never the server)
//
// A role decides the moment pgx gives up on its connection: the query or
// ping returns an error (the pool role also when pgxpool closes a
// connection, BeforeClose), named by the first error the connection's
// socket returned (ETIMEDOUT, ECONNRESET, "i/o timeout" for a deadline pgx
// set on it) or, failing that, by the error pgx returned.
package pggate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/tcprules"
)

// The server and the roles the suite measures: typed handles, so that a
// misspelt one does not compile.
var (
	// Server is the real PostgreSQL server, started in the peer host.
	Server = gate.Service(server())
	// The query blocks in a read on its connection (a FIN or RST is met at
	// once); the pool reads its idle connection only when it pings it.

	// Query is a client with a query in flight: SELECT pg_sleep(3600).
	Query = gate.Register("pgx-query", protocol.Watcher{Predict: predictQuery, Reasons: Reasons, Kernel: kernelQuery, Watch: watchQuery})
	// Pool is an idle pgxpool that the application pings periodically.
	Pool = gate.Register("pgx-pool", protocol.Watcher{Predict: predictPool, Reasons: Reasons, Close: closePool, Watch: watchPool})
)

// goKeepAlive is the keepalive of a net.Dialer{} (net/dial.go:
// defaultTCPKeepAliveIdle, defaultTCPKeepAliveInterval,
// defaultTCPKeepAliveCount), which pgconn's default dialer is.
var goKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 15 * time.Second, Count: 9}

// Reasons are what a role gives up with (reason): the socket's first
// error (ETIMEDOUT from keepalive or TCP_USER_TIMEOUT, ECONNRESET, EPIPE,
// EOF, "i/o timeout" for a deadline pgx set on it; ECONNREFUSED when the
// pool's new connection reached a rebooted server before postgres
// listened again), else the error pgx returned ("context deadline
// exceeded" for a Ping's deadline), or, when pgxpool closed a connection
// whose socket had not failed, its words.
var Reasons = []string{"ETIMEDOUT", "ECONNRESET", "ECONNREFUSED", "EPIPE", "EOF", "i/o timeout", "context deadline exceeded", errPoolClosed.Error()}

// errPoolClosed is the reason when pgxpool closed a connection (BeforeClose)
// whose socket had returned no error.
var errPoolClosed = errors.New("pgxpool closed the connection")

// kernelQuery: only the kernel ends the query's wait (pgx reads with no
// deadline): keepalive while the query waits acknowledged, the
// retransmission timer or TCP_USER_TIMEOUT while it is unacknowledged.
func kernelQuery(c protocol.Config) (*protocol.Kernel, error) {
	s, err := parse(c)
	if err != nil {
		return nil, err
	}
	ka := s.keepalive
	return &protocol.Kernel{KeepIdle: ka.Idle, KeepIntvl: ka.Interval, KeepCnt: ka.Count, UserTimeout: s.userTimeout}, nil
}

// closePool: the pool's connection is idle between pings, read by nobody,
// so a FIN or RST is met at the next ping, within `every`. (No Kernel: the
// ping after the fault puts data in flight that the connection's state at
// the fault does not show, and its bound, when set, is pgx's own.)
func closePool(c protocol.Config) (protocol.Close, error) {
	s, err := parse(c)
	return protocol.Close{Every: s.every}, err
}

// server is PostgreSQL run by the postgres user in an IPC namespace of its
// own (unshare --ipc, then setpriv to the postgres user): a server killed
// with its host (host-crash, host-reboot) cannot remove its System V
// segment, which PostgreSQL makes even with shared_memory_type=mmap, and
// the namespace takes it away. Dynamic shared memory goes to files in the
// data directory (dynamic_shared_memory_type=mmap), not /dev/shm, for the
// same reason. Without PostgreSQL the service names its package.
func server() gate.Server {
	postgres := postgresBin("postgres")
	args := []string{"-D", "{dir}/data", "-h", "{ip}", "-p", "{port}", "-k", "{dir}",
		"-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=20",
		"-c", "dynamic_shared_memory_type=mmap"}
	svc := gate.Server{Name: "postgres", Path: postgres, Args: args, Package: "postgresql", User: "postgres", Setup: setupCluster}
	if _, err := os.Stat(postgres); err == nil {
		svc.Path, svc.Package, svc.User = "unshare", "util-linux", ""
		svc.Args = append([]string{"--ipc", "--", "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", postgres}, args...)
	}
	return svc
}

// postgresBin finds a PostgreSQL program where Debian installs it,
// /usr/lib/postgresql/<version>/bin, the newest version first; without
// one, the path of version 15's, which the service's check then names.
func postgresBin(name string) string {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[j]))))
		return vi > vj
	})
	if len(found) > 0 {
		return found[0]
	}
	return "/usr/lib/postgresql/15/bin/" + name
}

// The template cluster, made once per process by the first Setup.
var template struct {
	sync.Mutex
	dir string
	err error
}

// setupCluster copies the template cluster into dir/data, making the
// template first if this process has none, and gives dir (the server's
// socket directory) to the postgres user.
func setupCluster(dir string) error {
	tpl, err := templateCluster()
	if err != nil {
		return err
	}
	cred, err := credential("postgres")
	if err != nil {
		return err
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(tpl, "data"), filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the template cluster: %v: %s", err, out)
	}
	return nil
}

// templateCluster runs initdb, as the postgres user, into a new temporary
// directory, with trust authentication for the lab's addresses.
func templateCluster() (string, error) {
	template.Lock()
	defer template.Unlock()
	if template.dir != "" || template.err != nil {
		return template.dir, template.err
	}
	template.err = func() error {
		cred, err := credential("postgres")
		if err != nil {
			return err
		}
		removeStaleTemplates()
		dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", templatePrefix, os.Getpid()))
		if err != nil {
			return err
		}
		template.dir = dir
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
		data := filepath.Join(dir, "data")
		cmd := exec.Command(postgresBin("initdb"), "-D", data, "-U", "postgres", "--auth=trust",
			"--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C", "--wal-segsize=1")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("initdb: %v: %s", err, out)
		}
		hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(hba, "host all all 198.18.0.0/15 trust")
		return errors.Join(err, hba.Close())
	}()
	if template.err != nil {
		template.err = fmt.Errorf("template cluster: %w", template.err)
	}
	return template.dir, template.err
}

// PrepareTemplate makes the template cluster now rather than in the first
// sample's Setup: a sample's set-up, the server's start included, has 10 s
// (harness/session.go, setupTimeout), which initdb on a busy machine and
// many servers starting at once can use up.
func PrepareTemplate() error {
	_, err := templateCluster()
	return err
}

// templatePrefix names a template directory, followed by the pid of the
// process that made it.
const templatePrefix = "halfopen-pg-template-"

// removeStaleTemplates removes the templates of processes that are gone (a
// suite killed before it could remove its own).
func removeStaleTemplates() {
	found, _ := filepath.Glob(filepath.Join(os.TempDir(), templatePrefix+"*"))
	for _, d := range found {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), templatePrefix+"%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// RemoveTemplate removes the template cluster, if this process made one:
// call it when the suite ends.
func RemoveTemplate() error {
	template.Lock()
	defer template.Unlock()
	if template.dir == "" {
		return nil
	}
	err := os.RemoveAll(template.dir)
	template.dir = ""
	return err
}

func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// settings are a role's pgx settings, read from its config.
type settings struct {
	keepalive   net.KeepAliveConfig
	custom      bool // a dialer of our own (keepalive or user timeout set)
	userTimeout time.Duration
	every       time.Duration
	timeout     time.Duration
	pingTimeout time.Duration
	healthCheck time.Duration
}

func parse(c protocol.Config) (settings, error) {
	var s settings
	ka := goKeepAlive
	var err error
	for _, d := range []struct {
		key string
		to  *time.Duration
		def time.Duration
	}{
		{"idle", &ka.Idle, ka.Idle}, {"intvl", &ka.Interval, ka.Interval},
		{"usertimeout", &s.userTimeout, 0}, {"every", &s.every, 2 * time.Second},
		{"timeout", &s.timeout, 0}, {"pingtimeout", &s.pingTimeout, 0},
		{"healthcheck", &s.healthCheck, 0},
	} {
		if *d.to, err = c.Duration(d.key, d.def); err != nil {
			return s, err
		}
	}
	if ka.Count, err = c.Int("cnt", ka.Count); err != nil {
		return s, err
	}
	if ka.Idle < time.Second || ka.Interval < time.Second || ka.Count < 1 {
		return s, fmt.Errorf("keepalive idle=%v intvl=%v cnt=%d: the kernel takes whole seconds >= 1 s and cnt >= 1", ka.Idle, ka.Interval, ka.Count)
	}
	if s.every <= 0 {
		return s, fmt.Errorf("every=%v must be positive", s.every)
	}
	s.keepalive = ka
	_, i := c["idle"]
	_, v := c["intvl"]
	_, n := c["cnt"]
	s.custom = i || v || n || s.userTimeout > 0
	return s, nil
}

// connConfig is the pgconn configuration for addr: pgx's own, with our
// dialer when keepalive or the user timeout is set, and every connection
// wrapped to remember its socket's first error.
func (s settings) connConfig(addr string) (*pgx.ConnConfig, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable", host, port))
	if err != nil {
		return nil, err
	}
	dial := cfg.DialFunc // pgconn's default: a net.Dialer{}
	if s.custom {
		d := &net.Dialer{KeepAliveConfig: s.keepalive}
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
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &watchedConn{Conn: c}, nil
	}
	return cfg, nil
}

// watchedConn remembers the first error its socket returned.
type watchedConn struct {
	net.Conn
	first atomic.Pointer[error]
}

func (c *watchedConn) note(err error) {
	if err != nil {
		c.first.CompareAndSwap(nil, &err)
	}
}

// Read reads, remembering the first error.
func (c *watchedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.note(err)
	return n, err
}

// Write writes, remembering the first error.
func (c *watchedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.note(err)
	return n, err
}

// firstError is the first error the connection's socket returned, or nil.
func firstError(pc *pgconn.PgConn) error {
	if pc == nil {
		return nil
	}
	if w, ok := pc.Conn().(*watchedConn); ok {
		if p := w.first.Load(); p != nil {
			return *p
		}
	}
	return nil
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

// predictQuery: the query was sent and acknowledged, the connection is idle
// while the server sleeps, and pgx reads with no deadline (nothing but the
// query's context bounds it): only keepalive can end it, by default Go's
// 15 s / 15 s / 9, [135 s, 169 s].
func predictQuery(c protocol.Config) (*protocol.Range, error) {
	s, err := parse(c)
	if err != nil {
		return nil, err
	}
	r := s.keepaliveRange()
	return &r, nil
}

// predictPool: the next ping, within `every` of the fault, is written and
// never acknowledged, so keepalive never probes (the kernel does not while
// data is in flight); it ends at the first of: the ping's bound (timeout or
// pingtimeout: [b, every + b]), TCP_USER_TIMEOUT (tcprules.UserTimeoutRange
// for a write within `every`), or, with neither, the retransmissions' end
// (tcprules.RetransmitRange, tcp_retries2 15: 924.6 s after the first
// retransmission), 15.5 to 16 minutes after the ping.
func predictPool(c protocol.Config) (*protocol.Range, error) {
	s, err := parse(c)
	if err != nil {
		return nil, err
	}
	rx := tcprules.RetransmitRange(tcprules.DefaultRetries2, tcprules.RTOFast())
	r := protocol.Range{Lo: rx.Lo, Hi: s.every + rx.Hi}
	bound := s.pingTimeout
	if s.timeout > 0 && (bound == 0 || s.timeout < bound) {
		bound = s.timeout
	}
	if bound > 0 {
		r = protocol.Range{Lo: bound, Hi: s.every + bound + 200*time.Millisecond}
	}
	if u := s.userTimeout; u > 0 && u < r.Lo {
		ut := tcprules.UserTimeoutRange(u, s.every)
		r = protocol.Range{Lo: ut.Lo, Hi: min(r.Hi, ut.Hi)}
	}
	return &r, nil
}

// connect dials until the server accepts a session: it accepts TCP as soon
// as it listens, but says "the database system is starting up" a moment
// longer, and a rebooted host's server is started again.
func connect(ctx context.Context, sess *protocol.Session, try func(context.Context) error) error {
	start := time.Now()
	for {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := try(tctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !sess.Reconnect && time.Since(start) > 20*time.Second {
			return fmt.Errorf("postgres at %s never accepted a session: %w", sess.Addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watchQuery connects, then runs SELECT pg_sleep(3600) until pgx returns.
func watchQuery(ctx context.Context, sess *protocol.Session) (string, error) {
	s, err := parse(sess.Config)
	if err != nil {
		return "", err
	}
	cfg, err := s.connConfig(sess.Addr)
	if err != nil {
		return "", err
	}
	var conn *pgx.Conn
	if err := connect(ctx, sess, func(ctx context.Context) error {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		if err := c.Ping(ctx); err != nil {
			c.Close(context.Background())
			return err
		}
		conn = c
		return nil
	}); err != nil {
		return "", err
	}
	// Close without waiting: a dead server never answers the Terminate.
	defer func() { go conn.Close(context.Background()) }()
	sess.Connected()
	_, err = conn.Exec(ctx, "SELECT pg_sleep(3600)")
	if ctx.Err() != nil {
		return "", nil
	}
	if err == nil {
		return "", errors.New("pg_sleep(3600) returned: the sample outlived an hour")
	}
	return reason(firstError(conn.PgConn()), err), nil
}

// watchPool pings an idle pgxpool every `every`, until a ping fails or the
// pool closes a connection (BeforeClose): either way pgx gave up on it.
func watchPool(ctx context.Context, sess *protocol.Session) (string, error) {
	s, err := parse(sess.Config)
	if err != nil {
		return "", err
	}
	cc, err := s.connConfig(sess.Addr)
	if err != nil {
		return "", err
	}
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return "", err
	}
	cfg.ConnConfig = cc
	cfg.PingTimeout = s.pingTimeout
	if s.healthCheck > 0 {
		cfg.HealthCheckPeriod = s.healthCheck
	}
	var connected atomic.Bool
	closed := make(chan error, 1)
	cfg.BeforeClose = func(c *pgx.Conn) {
		if !connected.Load() {
			return
		}
		select {
		case closed <- firstError(c.PgConn()):
		default:
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return "", err
	}
	// Close without waiting: a ping to a dead server may hold a connection.
	defer func() { go pool.Close() }()
	if err := connect(ctx, sess, pool.Ping); err != nil {
		return "", err
	}
	connected.Store(true)
	sess.Connected()
	failed := make(chan error, 1)
	go func() {
		t := time.NewTicker(s.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if s.timeout > 0 {
				pctx, cancel = context.WithTimeout(ctx, s.timeout)
			}
			err := pool.Ping(pctx)
			cancel()
			if err != nil {
				failed <- err
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
		return "", nil
	case first := <-closed:
		return reason(first, errPoolClosed), nil
	case err := <-failed:
		if ctx.Err() != nil {
			return "", nil
		}
		return reason(nil, err), nil
	}
}

// reason names why pgx gave up: the socket's first error if it had one,
// else the error pgx returned. "EOF" for an orderly close, the errno's
// name, "i/o timeout" for a deadline pgx set on the socket, "context
// deadline exceeded", or pgx's words.
func reason(first, returned error) string {
	err := first
	if err == nil {
		err = returned
	}
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
