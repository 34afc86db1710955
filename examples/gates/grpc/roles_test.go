package grpcgate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
)

// The roles this suite registers, as typed handles. Both ends have
// grpc-go's reader blocked on the connection: a FIN or RST is met at once
// (the zero Close).
var (
	// roleClient is a grpc-go client with an open, idle health Watch
	// stream (side client); its own peer is a grpc-go server.
	roleClient = gate.Register("grpc-client", protocol.Watcher{Predict: predictClient, Reasons: reasons("Unavailable"), Kernel: kernelClient, Watch: watchClient, Peer: serveHealth})
	// roleServer is a grpc-go server holding the server end of a client's
	// idle health Watch stream (side server); its own peer is a grpc-go
	// client that opened the stream and went idle.
	roleServer = gate.Register("grpc-server", protocol.Watcher{Predict: predictServer, Reasons: reasons("Canceled"), Kernel: kernelServer, Watch: watchServer, Peer: idleClient})
)

// reasons are what a role gives up with: the status code its stream ends
// with, and what closed the transport (classify): grpc-go's own PING
// ("keepalive"), or the socket's errno or EOF.
func reasons(code string) []string {
	var out []string
	for _, why := range []string{"keepalive", "ETIMEDOUT", "ECONNRESET", "EHOSTUNREACH", "EPIPE", "EOF"} {
		out = append(out, code+": "+why)
	}
	return out
}

// The namespace's keepalive defaults (net.ipv4.tcp_keepalive_time, intvl,
// probes), which grpc-go's dialer turns on with SO_KEEPALIVE alone
// (internal/tcp_keepalive_unix.go).
const (
	nsKeepAliveIdle     = 7200 * time.Second
	nsKeepAliveInterval = 75 * time.Second
	nsKeepAliveCount    = 9
)

// kernelClient: an idle client with keepalive on is decided by grpc-go's
// PING timer, not the kernel's; with a request in flight, TCP_USER_TIMEOUT
// (= Timeout, always shorter than Time + Timeout) ends it first; with
// keepalive off only the namespace's keepalive or tcp_retries2 would.
func kernelClient(c protocol.Config) (*protocol.Kernel, error) {
	kp, on, err := clientParams(c)
	if err != nil || on && !c.InFlight() {
		return nil, err
	}
	k := &protocol.Kernel{KeepIdle: nsKeepAliveIdle, KeepIntvl: nsKeepAliveInterval, KeepCnt: nsKeepAliveCount}
	if on {
		k.UserTimeout = kp.Timeout
	}
	return k, nil
}

// kernelServer: with grpc-go's default Time (2 h), the kernel decides: Go's
// TCP keepalive on an accepted connection (listen=go) with the 20 s
// TCP_USER_TIMEOUT grpc-go sets, or nothing (listen=bare). A shorter Time
// is grpc-go's own PING timer.
func kernelServer(c protocol.Config) (*protocol.Kernel, error) {
	kp, err := serverParams(c)
	if err != nil || kp.Time != 0 {
		return nil, err
	}
	tcp, err := goListen(c)
	if err != nil {
		return nil, err
	}
	to := kp.Timeout
	if to == 0 {
		to = defaultTimeout
	}
	k := &protocol.Kernel{UserTimeout: to}
	if tcp {
		k.KeepIdle, k.KeepIntvl, k.KeepCnt = goKeepAliveIdle, goKeepAliveInterval, goKeepAliveCount
	}
	return k, nil
}

// holdService is the health service name whose Check the grpc-client's
// peer holds unanswered: the client's request in flight.
const holdService = "halfopen.hold"

// grpc-go's keepalive constants, as google.golang.org/grpc v1.85.0 has them.
const (
	// minClientTime is internal.KeepaliveMinPingTime (internal/internal.go):
	// WithKeepaliveParams (dialoptions.go) raises a smaller
	// ClientParameters.Time to it, logging "Adjusting keepalive ping
	// interval to minimum period of 10s".
	minClientTime = 10 * time.Second
	// minServerTime is internal.KeepaliveMinServerPingTime: KeepaliveParams
	// (server.go) raises a smaller ServerParameters.Time to it.
	minServerTime = time.Second
	// defaultTimeout is defaultClientKeepaliveTimeout and
	// defaultServerKeepaliveTimeout (internal/transport/defaults.go).
	defaultTimeout = 20 * time.Second
	// defaultServerTime is defaultServerKeepaliveTime: a server pings an
	// idle connection after 2 h. A client never pings by default
	// (defaultClientKeepaliveTime is infinity).
	defaultServerTime = 2 * time.Hour
)

// maxIdle bounds how long the connection was idle when the fault came:
// halfopen injects it at a seeded instant up to 1.5 s
// (harness.MaxRandomIdle) after the watcher reported connected, and the
// last frame was read just before that.
const maxIdle = 2 * time.Second

// keepaliveRange is when a grpc-go transport with keepalive time t and
// timeout to gives up on a silent peer, counted from the fault. Both
// keepalive loops (http2Client.keepalive in internal/transport/
// http2_client.go, http2Server.keepalive in http2_server.go) arm a timer
// for lastRead + t, send a PING when it fires with nothing read since, and
// close the transport when a further `to` passes without any frame
// ("keepalive ping failed to receive ACK within timeout"). Both ends also
// set TCP_USER_TIMEOUT to `to` whenever keepalive is on (newHTTP2Client,
// newHTTP2Server), so the kernel gives up on the unacknowledged PING at the
// same instant (ETIMEDOUT): whichever comes first is the reason. The last
// read is at most maxIdle before the fault, or, while PINGs are acked every
// t, up to t before it; so the decision lands in
// [to + max(0, t − maxIdle), t + to] after the fault, plus timer slack.
func keepaliveRange(t, to time.Duration) *protocol.Range {
	return &protocol.Range{Lo: to + max(0, t-maxIdle), Hi: t + to + 500*time.Millisecond}
}

// clientParams reads a grpc-client's config: time (absent: keepalive off,
// grpc-go's default), timeout (default 20 s) and permit
// (PermitWithoutStream, default false).
func clientParams(c protocol.Config) (kp keepalive.ClientParameters, on bool, err error) {
	_, on = c["time"]
	if kp.Time, err = c.Duration("time", 0); err != nil {
		return kp, false, err
	}
	if kp.Timeout, err = c.Duration("timeout", defaultTimeout); err != nil {
		return kp, false, err
	}
	if kp.PermitWithoutStream, err = c.Bool("permit", false); err != nil {
		return kp, false, err
	}
	if on && kp.Time == 0 {
		return kp, false, errors.New("config key time=0 would mean keepalive off: leave time out instead")
	}
	return kp, on, nil
}

// predictClient: without keepalive a grpc-go client sends nothing on an
// idle stream and never notices a silent server (the dialer's SO_KEEPALIVE
// uses the namespace's defaults, 7200 s + 9·75 s: internal/
// tcp_keepalive_unix.go); with it, keepaliveRange with Time raised to 10 s.
func predictClient(c protocol.Config) (*protocol.Range, error) {
	kp, on, err := clientParams(c)
	if err != nil || !on {
		return nil, err
	}
	return keepaliveRange(max(kp.Time, minClientTime), kp.Timeout), nil
}

// serverParams reads a grpc-server's config: time and timeout (absent:
// grpc-go's defaults, 2 h and 20 s).
func serverParams(c protocol.Config) (kp keepalive.ServerParameters, err error) {
	if kp.Time, err = c.Duration("time", 0); err != nil {
		return kp, err
	}
	if kp.Timeout, err = c.Duration("timeout", 0); err != nil {
		return kp, err
	}
	return kp, nil
}

// Go's TCP keepalive on a connection accepted from net.Listen (net.
// ListenConfig's zero KeepAlive: defaultTCPKeepAliveIdle, Interval and
// Count in net/dial.go): the first probe 15 s after the last segment, nine
// unanswered probes 15 s apart end it with ETIMEDOUT.
const (
	goKeepAliveIdle     = 15 * time.Second
	goKeepAliveInterval = 15 * time.Second
	goKeepAliveCount    = 9
)

// goListen reads a grpc-server's listen key: go (the default) gives every
// accepted connection Go's TCP keepalive, as the net.Listen listener a
// user hands to grpc.Server.Serve does; bare leaves it off, as the
// harness's own listener has it.
func goListen(c protocol.Config) (bool, error) {
	switch v := c.Get("listen", "go"); v {
	case "go":
		return true, nil
	case "bare":
		return false, nil
	default:
		return false, fmt.Errorf("config key listen=%s is neither go nor bare", v)
	}
}

// predictServer: keepaliveRange with grpc-go's server defaults (2 h, 20 s)
// for what is left out, Time raised to 1 s. With listen=go, Go's TCP
// keepalive probes a connection idle for 15 s (unless grpc-go PINGs more
// often than that), and TCP_USER_TIMEOUT, which grpc-go sets to Timeout
// even with its defaults (newHTTP2Server: Time is 2 h, not infinity), wins
// over the probe count: tcp_keepalive_timer (net/ipv4/tcp_timer.c) gives
// up at the first probe timer with a probe out and at least the user
// timeout since the last segment received, idle + k·intvl with
// k = max(1, ⌈(timeout − idle)/intvl⌉): 15 s + 15 s = 30 s with grpc-go's
// 20 s, not the 150 s of nine probes.
func predictServer(c protocol.Config) (*protocol.Range, error) {
	kp, err := serverParams(c)
	if err != nil {
		return nil, err
	}
	tcp, err := goListen(c)
	if err != nil {
		return nil, err
	}
	t, to := kp.Time, kp.Timeout
	if t == 0 {
		t = defaultServerTime
	}
	if to == 0 {
		to = defaultTimeout
	}
	r := keepaliveRange(max(t, minServerTime), to)
	if tcp && t >= goKeepAliveIdle {
		k := max(1, min(goKeepAliveCount, int((to-goKeepAliveIdle+goKeepAliveInterval-1)/goKeepAliveInterval)))
		ka := goKeepAliveIdle + time.Duration(k)*goKeepAliveInterval
		r.Lo, r.Hi = min(r.Lo, ka-maxIdle), min(r.Hi, ka+time.Second)
	}
	return r, nil
}

// keepaliveListener gives every connection it accepts Go's default TCP
// keepalive, as net.Listen's listener does, and hands grpc-go the
// *net.TCPConn itself (grpc-go sets TCP_USER_TIMEOUT only on one).
type keepaliveListener struct{ net.Listener }

// Accept accepts and turns keepalive on with Go's defaults.
func (l keepaliveListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: goKeepAliveIdle, Interval: goKeepAliveInterval, Count: goKeepAliveCount}); err != nil {
			c.Close()
			return nil, fmt.Errorf("keepalive: %w", err)
		}
	}
	return c, nil
}

// dialOptions are a plain insecure grpc-go client's, with keepalive when
// the config asks for it. No proxy: the lab has none. Its windows are
// fixed at 1 MiB, which turns off grpc-go's BDP estimator
// (http2_client.go): otherwise the PING it sends after reading data rides
// with the client's next request and the server's PING ACK acknowledges
// the request at once, so no request would wait unacknowledged (the
// in-flight phase). Flow-control windows play no part in noticing a dead
// peer.
func dialOptions(c protocol.Config) ([]grpc.DialOption, error) {
	kp, on, err := clientParams(c)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithNoProxy(),
		grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(1 << 20)}
	if on {
		opts = append(opts, grpc.WithKeepaliveParams(kp))
	}
	return opts, nil
}

// watchClient is the grpc-client role: it opens a health Watch stream to
// the server at HALFOPEN_ADDR, reports connected with the first response,
// and idles in Recv until grpc-go fails the stream (the transport closed:
// keepalive, TCP_USER_TIMEOUT, an RST).
func watchClient(ctx context.Context, s *protocol.Session) (string, error) {
	captureLogs()
	opts, err := dialOptions(s.Config)
	if err != nil {
		return "", err
	}
	cc, err := grpc.NewClient("passthrough:///"+s.Addr, opts...)
	if err != nil {
		return "", err
	}
	defer cc.Close()
	// Wait for the server (it listens before the harness starts us; after
	// a false positive it is there still): a stream needs a READY channel.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := healthpb.NewHealthClient(cc).Watch(sctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return "", fmt.Errorf("open the health Watch stream: %w", err)
	}
	if _, err := stream.Recv(); err != nil {
		return "", fmt.Errorf("first health response: %w", err)
	}
	s.Connected()
	// The request in flight: a Check its server holds unanswered (in a
	// cell aimed at the in-flight phase the harness holds the server's
	// pure ACKs, so it stays unacknowledged until the fault lands); the
	// stream's Recv below learns what becomes of the connection.
	go func() {
		_, _ = healthpb.NewHealthClient(cc).Check(sctx, &healthpb.HealthCheckRequest{Service: holdService})
	}()
	kp, on, _ := clientParams(s.Config)
	s.Logf("grpc-client: stream open; keepalive on=%t time=%v timeout=%v (grpc-go raises time to at least %v)", on, kp.Time, kp.Timeout, minClientTime)
	for {
		if _, err := stream.Recv(); err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			st := status.Convert(err)
			s.Logf("grpc-client: Recv: %v", err)
			return st.Code().String() + ": " + classify(st.Message()), nil
		}
	}
}

// serveHealth is grpc-client's peer: a grpc-go server with the health
// service on the listener the harness made, permitting PINGs every 500 ms
// even without a stream (the default EnforcementPolicy, 5 min, would
// answer a 10 s keepalive with GOAWAY too_many_pings). Its windows are
// fixed at 1 MiB, which turns off grpc-go's BDP estimator: otherwise it
// answers every request's DATA at once with a PING (http2_server.go
// handleData), and no request would ever wait unacknowledged.
func serveHealth(ctx context.Context, s *protocol.Session) error {
	srv := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 500 * time.Millisecond, PermitWithoutStream: true}),
		grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<20))
	healthpb.RegisterHealthServer(srv, &reportingHealth{Server: health.NewServer(), s: s})
	stop := context.AfterFunc(ctx, srv.Stop)
	defer stop()
	if err := srv.Serve(s.Listener()); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// reportingHealth is grpc-go's health server that reports connected when
// a Watch stream starts.
type reportingHealth struct {
	*health.Server
	s *protocol.Session
}

// Check holds a check of holdService until the client goes (its request
// in flight), and answers any other as grpc-go's does.
func (h *reportingHealth) Check(ctx context.Context, in *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if in.GetService() == holdService {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return h.Server.Check(ctx, in)
}

// Watch reports connected and serves the stream as grpc-go's does.
func (h *reportingHealth) Watch(in *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	h.s.Connected()
	return h.Server.Watch(in, stream)
}

// The grpc-server role's one grpc-go server, made by the first session and
// serving for the process's life: a session (a new one after each false
// positive) takes the next stream it hands over.
var server struct {
	once    sync.Once
	err     error
	streams chan context.Context
}

// streamServer is a health service whose Watch sends SERVING, hands the
// stream's context to the watching session and holds the stream open until
// grpc-go ends it.
type streamServer struct {
	healthpb.UnimplementedHealthServer
}

// Watch answers SERVING and idles until the stream's context ends.
func (streamServer) Watch(_ *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	if err := stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}); err != nil {
		return err
	}
	select {
	case server.streams <- stream.Context():
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}

// watchServer is the grpc-server role: a grpc-go server with
// keepalive.ServerParameters from the config serves on the harness's
// listener (with Go's TCP keepalive on what it accepts, as a net.Listen
// listener has, unless listen=bare); the session waits for a client's
// Watch stream, reports connected, and gives up the instant grpc-go ends
// the stream's context (the transport closed), with the reason grpc-go
// logged for closing the transport.
func watchServer(ctx context.Context, s *protocol.Session) (string, error) {
	captureLogs()
	kp, err := serverParams(s.Config)
	if err != nil {
		return "", err
	}
	tcp, err := goListen(s.Config)
	if err != nil {
		return "", err
	}
	server.once.Do(func() {
		server.streams = make(chan context.Context)
		ln := s.Listener()
		if tcp {
			ln = keepaliveListener{ln}
		}
		var opts []grpc.ServerOption
		if kp.Time != 0 || kp.Timeout != 0 {
			opts = append(opts, grpc.KeepaliveParams(kp))
		}
		srv := grpc.NewServer(opts...)
		healthpb.RegisterHealthServer(srv, streamServer{})
		go func() {
			if err := srv.Serve(ln); err != nil {
				server.err = err
				close(server.streams)
			}
		}()
	})
	var sctx context.Context
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case c, ok := <-server.streams:
		if !ok {
			return "", fmt.Errorf("grpc server: %w", server.err)
		}
		sctx = c
	}
	s.Connected()
	s.Logf("grpc-server: stream open; ServerParameters time=%v timeout=%v (0: grpc-go's 2h/20s; time raised to at least %v); Go TCP keepalive %t", kp.Time, kp.Timeout, minServerTime, tcp)
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-sctx.Done():
	}
	why := lastClosing()
	s.Logf("grpc-server: stream context ended: %v; transport: %s", sctx.Err(), why)
	return status.FromContextError(sctx.Err()).Code().String() + ": " + classify(why), nil
}

// idleClient is grpc-server's peer: a grpc-go client with default settings
// (no keepalive) that opens a health Watch stream, reports connected with
// the first response and idles; if the stream fails it opens another.
func idleClient(ctx context.Context, s *protocol.Session) error {
	cc, err := grpc.NewClient("passthrough:///"+s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithNoProxy())
	if err != nil {
		return err
	}
	defer cc.Close()
	for ctx.Err() == nil {
		stream, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		if err != nil {
			continue
		}
		for {
			if _, err := stream.Recv(); err != nil {
				break
			}
			s.Connected()
		}
	}
	return nil
}

// classify names why grpc-go closed a transport: "keepalive" when its own
// PING went unacknowledged, the errno's name when the socket failed (its
// text is all a status message keeps), else the message itself.
func classify(msg string) string {
	switch {
	case strings.Contains(msg, "keepalive ping failed to receive ACK"), strings.Contains(msg, "keepalive ping not acked"):
		return "keepalive"
	case msg == "":
		return "unknown"
	}
	for _, e := range []syscall.Errno{unix.ETIMEDOUT, unix.ECONNRESET, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EPIPE, unix.ECONNREFUSED} {
		if strings.Contains(msg, e.Error()) {
			return unix.ErrnoName(e)
		}
	}
	if strings.Contains(msg, "EOF") {
		return "EOF"
	}
	return msg
}

// closingLogger is grpc-go's logger in a role's process: it keeps the
// transports' "Closing: <why>" lines (logged at verbosity 2), which say why
// a transport ended where a server's stream context cannot, and passes
// warnings and errors to stderr.
type closingLogger struct {
	grpclog.LoggerV2
	mu   sync.Mutex
	last string
}

var (
	logs     = &closingLogger{}
	logsOnce sync.Once
)

// captureLogs installs closingLogger, before any grpc-go activity.
func captureLogs() {
	logsOnce.Do(func() {
		logs.LoggerV2 = grpclog.NewLoggerV2(discard{}, stderr{}, stderr{})
		grpclog.SetLoggerV2(logs)
	})
}

func (l *closingLogger) keep(args ...any) {
	msg := fmt.Sprint(args...)
	if i := strings.Index(msg, "Closing: "); i >= 0 {
		l.mu.Lock()
		l.last = msg[i+len("Closing: "):]
		l.mu.Unlock()
	}
}

// V says yes to verbosity 2, where transports log Closing.
func (l *closingLogger) V(level int) bool { return level <= 2 }

// Info keeps Closing lines.
func (l *closingLogger) Info(args ...any) { l.keep(args...) }

// Infoln keeps Closing lines.
func (l *closingLogger) Infoln(args ...any) { l.keep(args...) }

// Infof keeps Closing lines.
func (l *closingLogger) Infof(format string, args ...any) { l.keep(fmt.Sprintf(format, args...)) }

// lastClosing is the last transport's reason to close.
func lastClosing() string {
	logs.mu.Lock()
	defer logs.mu.Unlock()
	return logs.last
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

type stderr struct{}

func (stderr) Write(p []byte) (int, error) { return syscall.Write(2, p) }
