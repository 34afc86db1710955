package natsgate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
)

// The roles this suite registers, as typed handles. nats.go's read loop
// is blocked on the connection (a FIN or RST is met at once); the
// nats-server role polls the server's record of closed connections every
// millisecond. Neither declares kernel settings: both are decided by
// their PING timers of their own, idle or with a request in flight.
var (
	// roleClient is a nats.go client subscribed to a subject and idle (side
	// client); its own peer is an embedded nats-server.
	roleClient = gate.Register("nats-client", protocol.Watcher{Predict: predict, Reasons: clientReasons, Watch: watch, Peer: serve})
	// roleServer is an embedded nats-server holding an idle nats.go
	// client's connection (side server, the reference text's passive
	// server); its own peer is that client.
	roleServer = gate.Register("nats-server", protocol.Watcher{Predict: predictServer, Reasons: serverReasons, Close: pollConnz, Watch: watchServer, Peer: idleClient})
)

// clientReasons are what the nats-client gives up with: nats.go's
// ErrStaleConnection ("stale connection"), or the error its disconnect
// handler got (the errno, EOF, or "closed").
var clientReasons = []string{"stale connection", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EOF", "closed"}

// serverReasons are the reasons nats-server records for a closed client
// connection (server/monitor.go, ClosedState.String).
var serverReasons = []string{"Stale Connection", "Read Error", "Write Error", "Client Closed"}

// pollConnz: the nats-server role learns that a connection closed by
// polling nats-server's Connz every millisecond (watchServer).
func pollConnz(protocol.Config) (protocol.Close, error) {
	return protocol.Close{Every: time.Millisecond}, nil
}

// requestSubject is where the nats-client publishes its request once
// connected: nobody subscribes, and nats-server (not verbose) answers
// nothing, so the request waits for the server's delayed ACK (a cell
// aimed at the in-flight phase lands its fault then).
const requestSubject = "halfopen.request"

// clientParams reads a nats-client's config: ping (PingInterval) and
// maxout (MaxPingsOut), nats.go's defaults when left out
// (nats.DefaultPingInterval, 2 min; nats.DefaultMaxPingOut, 2).
func clientParams(c protocol.Config) (interval time.Duration, maxOut int, err error) {
	if interval, err = c.Duration("ping", nats.DefaultPingInterval); err != nil {
		return 0, 0, err
	}
	if maxOut, err = c.Int("maxout", nats.DefaultMaxPingOut); err != nil {
		return 0, 0, err
	}
	if interval <= 0 || maxOut < 1 {
		return 0, 0, fmt.Errorf("config ping=%v maxout=%d: both must be positive (nats.go would turn a zero into its default)", interval, maxOut)
	}
	return interval, maxOut, nil
}

// predict is nats.go's rule for a silent server. Conn.processPingTimer
// (nats.go) runs every PingInterval from the connection's start: it counts
// an outstanding PING (pout++), declares the connection stale
// (ErrStaleConnection) once pout exceeds MaxPingsOut, and otherwise sends
// another PING; only a PONG resets pout (processPong). The first PING the
// dead server does not answer leaves within PingInterval after the fault,
// and MaxPingsOut more timer ticks later the connection is stale: from
// MaxPingsOut·PingInterval to (MaxPingsOut+1)·PingInterval after the
// fault. With the defaults that is 4-6 min. The dialer nats.go makes
// (net.Dialer{Timeout}) has Go's TCP keepalive, 15 s idle, 15 s apart, 9
// probes: 150 s, but it cannot end it first, because the kernel stops
// keepalive probes while a PING is unacknowledged (tcp_keepalive_timer),
// which is from the 2-min PING on; the PING's retransmissions then take
// tcp_retries2 (15 min). That keepalive does end a connection to a
// rebooted host: its first probe, 15 s after the last segment, is reset.
func predict(c protocol.Config) (*protocol.Range, error) {
	interval, maxOut, err := clientParams(c)
	if err != nil {
		return nil, err
	}
	return &protocol.Range{Lo: time.Duration(maxOut) * interval, Hi: time.Duration(maxOut+1)*interval + 500*time.Millisecond}, nil
}

// watch is the nats-client role: it connects to the nats-server at
// HALFOPEN_ADDR with PingInterval and MaxPingsOut from the config,
// subscribes, reports connected once the server has the subscription, and
// gives up the moment nats.go calls its disconnect handler, with the
// handler's error: "nats: stale connection" when the PINGs went
// unanswered, the errno's name when the socket failed.
func watch(ctx context.Context, s *protocol.Session) (string, error) {
	interval, maxOut, err := clientParams(s.Config)
	if err != nil {
		return "", err
	}
	lost := make(chan error, 1)
	opts := []nats.Option{
		nats.PingInterval(interval),
		nats.MaxPingsOutstanding(maxOut),
		// The first disconnect is the decision; what nats.go does after it
		// (reconnecting, every 2 s by default) is not measured: the
		// session closes the connection, and with HALFOPEN_RECONNECT=1 the
		// next session connects again.
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			select {
			case lost <- err:
			default:
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			select {
			case lost <- errors.New("closed"):
			default:
			}
		}),
	}
	nc, err := connect(ctx, "nats://"+s.Addr, opts)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("halfopen.idle"); err != nil {
		return "", fmt.Errorf("subscribe: %w", err)
	}
	// The round trip makes sure the server has the subscription.
	if err := nc.FlushTimeout(3 * time.Second); err != nil {
		return "", fmt.Errorf("flush: %w", err)
	}
	s.Connected()
	if err := nc.Publish(requestSubject, []byte("in flight")); err != nil {
		return "", fmt.Errorf("publish the request: %w", err)
	}
	s.Logf("nats-client: connected to %s, subscribed; PingInterval=%v MaxPingsOut=%d", nc.ConnectedUrl(), interval, maxOut)
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case err := <-lost:
		s.Logf("nats-client: disconnected: %v", err)
		if errors.Is(err, nats.ErrStaleConnection) {
			return "stale connection", nil
		}
		return protocol.Reason(err), nil
	}
}

// connect dials the nats-server with nats.go, retrying every 50 ms for
// 5 s: the peer starts nats-server on the address only after it said
// ready (see serve).
func connect(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("connect to %s: %w", url, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serve is nats-client's peer: nats-server, embedded, with its defaults,
// listening on HALFOPEN_ADDR. nats-server makes its own listener, so the
// one the harness made for this peer is closed first; the client retries
// for the few milliseconds in between. It reports connected when the
// server has a client.
func serve(ctx context.Context, s *protocol.Session) error {
	srv, err := startServer(s, &server.Options{})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if srv.NumClients() > 0 {
				s.Connected()
			}
		}
	}
}

// serverParams reads a nats-server's config: ping (Options.PingInterval)
// and maxout (Options.MaxPingsOut), nats-server's defaults when left out
// (server.DEFAULT_PING_INTERVAL, 2 min; server.DEFAULT_PING_MAX_OUT, 2).
func serverParams(c protocol.Config) (interval time.Duration, maxOut int, err error) {
	if interval, err = c.Duration("ping", server.DEFAULT_PING_INTERVAL); err != nil {
		return 0, 0, err
	}
	if maxOut, err = c.Int("maxout", server.DEFAULT_PING_MAX_OUT); err != nil {
		return 0, 0, err
	}
	if interval <= 0 || maxOut < 1 {
		return 0, 0, fmt.Errorf("config ping=%v maxout=%d: both must be positive", interval, maxOut)
	}
	return interval, maxOut, nil
}

// predictServer is nats-server's rule for a silent client.
// client.processPingTimer (server/client.go) ticks every PingInterval; a
// tick closes the connection as stale ("Stale Connection") when one more
// PING would exceed MaxPingsOut, and otherwise sends one, unless the
// client sent messages, subscriptions or a PING of its own within the last
// PingInterval (lastIn: a PONG does not count). An idle client is PINGed
// at every tick, so as for nats.go the connection is stale
// MaxPingsOut·PingInterval to (MaxPingsOut+1)·PingInterval after the
// fault. nats-server listens without TCP keepalive (natsListenConfig,
// server/util.go: KeepAlive −1), so nothing else ends a silent connection.
func predictServer(c protocol.Config) (*protocol.Range, error) {
	interval, maxOut, err := serverParams(c)
	if err != nil {
		return nil, err
	}
	return &protocol.Range{Lo: time.Duration(maxOut) * interval, Hi: time.Duration(maxOut+1)*interval + 500*time.Millisecond}, nil
}

// The nats-server role's one server, started by the first session and
// serving for the process's life.
var natsd struct {
	once sync.Once
	srv  *server.Server
	err  error
}

// watchServer is the nats-server role: nats-server, embedded, with
// PingInterval and MaxPingsOut from the config, listens on HALFOPEN_ADDR
// (in place of the harness's listener, which it closes); the session
// reports connected when a client is connected, and gives up the instant
// nats-server records the connection as closed (polled every millisecond:
// nats-server has no callback for it), with the reason it recorded
// ("Stale Connection", "Read Error", ...).
func watchServer(ctx context.Context, s *protocol.Session) (string, error) {
	interval, maxOut, err := serverParams(s.Config)
	if err != nil {
		return "", err
	}
	natsd.once.Do(func() {
		natsd.srv, natsd.err = startServer(s, &server.Options{PingInterval: interval, MaxPingsOut: maxOut})
	})
	if natsd.err != nil {
		return "", natsd.err
	}
	srv := natsd.srv
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	var cid uint64
	for cid == 0 {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
		if srv.NumClients() == 0 {
			continue
		}
		cz, err := srv.Connz(&server.ConnzOptions{})
		if err != nil {
			return "", fmt.Errorf("connz: %w", err)
		}
		if len(cz.Conns) > 0 {
			cid = cz.Conns[len(cz.Conns)-1].Cid
		}
	}
	s.Connected()
	s.Logf("nats-server: client %d connected; PingInterval=%v MaxPingsOut=%d", cid, interval, maxOut)
	// nats-server records a closed connection, with its reason, the moment
	// it decides to close it (markConnAsClosed starts saveClosedClient),
	// before the client leaves its client count.
	var goneSince time.Time
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
		cz, err := srv.Connz(&server.ConnzOptions{CID: cid, State: server.ConnClosed})
		if err != nil {
			return "", fmt.Errorf("connz: %w", err)
		}
		if len(cz.Conns) > 0 {
			s.Logf("nats-server: client %d closed: %s", cid, cz.Conns[0].Reason)
			return cz.Conns[0].Reason, nil
		}
		switch {
		case srv.NumClients() > 0:
			goneSince = time.Time{}
		case goneSince.IsZero():
			goneSince = time.Now()
		case time.Since(goneSince) > time.Second:
			return "", fmt.Errorf("client %d is gone but nats-server recorded no closed connection for it", cid)
		}
	}
}

// startServer starts nats-server on the session's address with opts (no
// logging, no signal handlers), in place of the listener the harness made.
func startServer(s *protocol.Session, opts *server.Options) (*server.Server, error) {
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, err
	}
	if opts.Port, err = strconv.Atoi(port); err != nil {
		return nil, err
	}
	opts.Host, opts.NoSigs, opts.NoLog = host, true, true
	if ln := s.Listener(); ln != nil {
		ln.Close()
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats-server did not listen on %s within 5 s", s.Addr)
	}
	return srv, nil
}

// idleClient is nats-server's peer: a nats.go client with its defaults
// that connects (retrying while the server starts), subscribes, reports
// connected and idles; nats.go reconnects by itself if the server drops it.
func idleClient(ctx context.Context, s *protocol.Session) error {
	nc, err := connect(ctx, "nats://"+s.Addr, []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)})
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("halfopen.idle"); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := nc.FlushTimeout(3 * time.Second); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	s.Connected()
	<-ctx.Done()
	return nil
}
