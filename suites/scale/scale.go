// Package scale holds the agents of halfopen's scale suite: the reference
// text's passive server, holding N idle connections from one client host
// that then dies, in two designs, and the client host that opens them.
//
//	[peer: N clients ]==veth==[ router ]==veth==[ watcher: one server ]
//	 198.18.1.2, dials         counters on       198.18.2.2:7000, never
//	 paced over 1 s,           the forward       closes or pings on its own
//	 echoes every byte         hook; the fault   unless its detector does
//
// The server ("scale-server") frees a connection (closes it) the moment its
// detector decides the client is dead, and stamps that instant on
// CLOCK_MONOTONIC. Its two designs:
//
//   - DesignGoroutine: one goroutine per connection running halfopen's own
//     detector (detectors/) on it, blocked as the reference text's thread
//     per connection is.
//   - DesignEpoll: one OS thread in one raw epoll_wait loop. Keepalive and
//     the user timeout are socket options, so the kernel's per-socket timers
//     do the work and the loop only reads the error; the periodic write, the
//     heart-beat and the TCP_INFO poll are application timers kept in one
//     binary heap that sets epoll_wait's timeout.
//
// The client ("scale-peer") dials the N connections paced evenly over one
// timer period, so that every connection's timers run at its own phase, as
// clients that arrive at irregular times do, and echoes every byte it
// receives (the heart-beat's pong, the user timeout's write).
package scale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/protocol"
)

// Agent modes, dispatched by harness.MaybeRunAgent.
const (
	ServerAgent = "scale-server"
	PeerAgent   = "scale-peer"
)

// Design is how the server waits for its connections.
type Design string

// Server designs.
const (
	// DesignGoroutine runs one goroutine per connection, each running
	// halfopen's detector on its connection.
	DesignGoroutine Design = "goroutine"
	// DesignEpoll runs one epoll loop on one OS thread for every connection.
	DesignEpoll Design = "epoll"
)

// Environment of the scale agents, on top of HALFOPEN_AGENT.
const (
	EnvDetector = "HALFOPEN_DETECTOR"     // the server's detector spec
	EnvDesign   = "HALFOPEN_SCALE_DESIGN" // goroutine or epoll
	EnvAddr     = "HALFOPEN_ADDR"         // where the server listens and the peer dials
	EnvConns    = "HALFOPEN_CONNS"        // connections to hold (server) or open (peer)
	EnvSpread   = "HALFOPEN_SCALE_SPREAD" // how long the peer takes to open them, evenly paced
	EnvOut      = "HALFOPEN_SCALE_OUT"    // where the server writes its free records on "dump"
)

// Events the scale agents print beside hello, ready and connected.
const (
	// EventAllFreed: the server has freed every connection it held.
	EventAllFreed = "all-freed"
	// EventDumped: the server wrote its free records to $HALFOPEN_SCALE_OUT.
	EventDumped = "dumped"
)

func init() {
	harness.RegisterAgent(ServerAgent, serverMain)
	harness.RegisterAgent(PeerAgent, peerMain)
}

// Free is one connection the server freed: when (CLOCK_MONOTONIC) and why.
type Free struct {
	AtNs   int64  `json:"t_ns"`
	Reason string `json:"reason"`
}

// Dump is what the server writes on "dump": how many connections it
// accepted and every connection it freed.
type Dump struct {
	// AcceptedNs is the CLOCK_MONOTONIC instant of every accept, in order:
	// each connection's timers start there, so they show its phase.
	AcceptedNs []int64 `json:"accepted_ns"`
	Freed      []Free  `json:"freed"`
}

// recorder counts the server's connections and records every one freed. It
// announces "connected" when the n-th connection is accepted and
// "all-freed" when the n-th is freed.
type recorder struct {
	em *protocol.Emitter
	n  int

	mu       sync.Mutex
	accepted []int64
	freed    []Free
}

func (r *recorder) accepted1() {
	at := protocol.Now()
	r.mu.Lock()
	r.accepted = append(r.accepted, at)
	full := len(r.accepted) == r.n
	r.mu.Unlock()
	if full {
		r.em.Emit(protocol.Event{Event: protocol.EventConnected, Msg: strconv.Itoa(r.n) + " connections"})
	}
}

func (r *recorder) free(reason string) {
	at := protocol.Now()
	r.mu.Lock()
	r.freed = append(r.freed, Free{AtNs: at, Reason: reason})
	all := len(r.freed) == r.n
	r.mu.Unlock()
	if all {
		r.em.Emit(protocol.Event{Event: EventAllFreed, TNs: at})
	}
}

func (r *recorder) dump(path string) error {
	r.mu.Lock()
	d := Dump{AcceptedNs: append([]int64(nil), r.accepted...), Freed: append([]Free(nil), r.freed...)}
	r.mu.Unlock()
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write free records: %w", err)
	}
	return nil
}

// raiseNoFile lifts RLIMIT_NOFILE to at least want, raising the hard
// limit too (agents run as root) when it is lower.
func raiseNoFile(want uint64) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur >= want {
		return nil
	}
	lim.Cur = want
	lim.Max = max(lim.Max, want)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE to %d: %w", want, err)
	}
	return nil
}

// agentContext ends on SIGTERM or when the orchestrator closes standard
// input; the command names read from standard input arrive on the channel.
func agentContext(em *protocol.Emitter) (context.Context, <-chan string) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		cancel()
	}()
	cmds := make(chan string, 4)
	go func() {
		defer cancel()
		dec := json.NewDecoder(os.Stdin)
		for {
			var c agentcmd.Command
			if err := dec.Decode(&c); err != nil {
				return
			}
			cmds <- string(c.Cmd)
		}
	}()
	return ctx, cmds
}

func envInt(key string) (int, error) {
	n, err := strconv.Atoi(os.Getenv(key))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive count", key, os.Getenv(key))
	}
	return n, nil
}

// serverMain is the scale server: it listens, holds its connections with
// the detector and design it was given, frees each when the detector
// decides, and answers "dump".
func serverMain() error {
	em := protocol.NewEmitter(os.Stdout)
	ctx, cmds := agentContext(em)
	n, err := envInt(EnvConns)
	if err != nil {
		return err
	}
	if err := raiseNoFile(uint64(n) + 1024); err != nil {
		return err
	}
	det, sp, err := harness.NewDetector(os.Getenv(EnvDetector))
	if err != nil {
		return err
	}
	em.Emit(protocol.Event{Event: protocol.EventHello, Protocol: protocol.Version, Name: sp.String(), PredictedS: det.Predict().Seconds()})
	rec := &recorder{em: em, n: n}
	var serve func(context.Context, harness.Detector, string, *recorder) (func() error, error)
	switch d := Design(os.Getenv(EnvDesign)); d {
	case DesignGoroutine:
		serve = serveGoroutines
	case DesignEpoll:
		serve = serveEpoll
	default:
		return fmt.Errorf("%s=%q is not a design; the designs are %s and %s", EnvDesign, d, DesignGoroutine, DesignEpoll)
	}
	wait, err := serve(ctx, det, os.Getenv(EnvAddr), rec)
	if err != nil {
		return err
	}
	em.Emit(protocol.Event{Event: protocol.EventReady})
	out := os.Getenv(EnvOut)
	go func() {
		for c := range cmds {
			if c != "dump" {
				em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "scale server does not know command " + c})
				continue
			}
			if err := rec.dump(out); err != nil {
				em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: err.Error()})
				continue
			}
			em.Emit(protocol.Event{Event: EventDumped})
		}
	}()
	return wait()
}

// probePath returns once a SYN to a closed port of the server's host is
// answered with an RST: both hops, both ways, resolved and forwarding. A
// veth that was just made drops what it is given until its queue is
// activated (dev_activate(), run by net/core/link_watch.c under the RTNL
// lock, which every lab's creation and teardown on the machine takes).
// Measured here without this probe: in some labs the first SYNs were lost
// and all retransmitted 1 s later (the initial RTO), at once, bunching the
// connections' phases.
func probePath(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	closed := net.JoinHostPort(host, "1")
	d := harnessDialer()
	d.Timeout = 50 * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := d.DialContext(ctx, "tcp4", closed)
		if err == nil {
			c.Close()
			return fmt.Errorf("probe %s: something listens on the probe's port", closed)
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("the path to %s did not answer within 10 s: %w", host, err)
		}
	}
}

// peerMain is the scale client host: it opens its connections paced evenly
// over the spread, echoes every byte on each, and says "connected" once
// all are open, with how long that took.
func peerMain() error {
	em := protocol.NewEmitter(os.Stdout)
	ctx, _ := agentContext(em)
	n, err := envInt(EnvConns)
	if err != nil {
		return err
	}
	spread, err := time.ParseDuration(os.Getenv(EnvSpread))
	if err != nil {
		return fmt.Errorf("%s: %w", EnvSpread, err)
	}
	if err := raiseNoFile(uint64(n) + 1024); err != nil {
		return err
	}
	em.Emit(protocol.Event{Event: protocol.EventHello, Protocol: protocol.Version, Name: "scale-peer"})
	addr := os.Getenv(EnvAddr)
	if err := probePath(ctx, addr); err != nil {
		return err
	}
	em.Emit(protocol.Event{Event: protocol.EventReady})
	dialer := harnessDialer()
	start := protocol.Now()
	errs := make(chan error, n)
	var dialed sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	for i := range n {
		protocol.SleepUntil(start + int64(math.Round(float64(i)*float64(spread)/float64(n))))
		dialed.Add(1)
		go func() {
			c, err := dialer.DialContext(ctx, "tcp4", addr)
			dialed.Done()
			if err != nil {
				errs <- fmt.Errorf("connection %d of %d: dial %s: %w", i+1, n, addr, err)
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			// A small buffer: the client host holds N of them.
			buf := make([]byte, 512)
			for {
				k, err := c.Read(buf)
				if k > 0 {
					if _, err := c.Write(buf[:k]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	dialed.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	em.Emit(protocol.Event{Event: protocol.EventConnected, Msg: fmt.Sprintf("%d connections in %v", n, protocol.Since(start).Round(time.Millisecond))})
	<-ctx.Done()
	// On SIGTERM every connection is reset (RST), so that none is left an
	// orphan closing it.
	mu.Lock()
	defer mu.Unlock()
	for _, c := range conns {
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	return nil
}
