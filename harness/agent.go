package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/protocol"
)

// Environment of halfopen's own agents, on top of the protocol v1 variables.
const (
	envAgent    = "HALFOPEN_AGENT"    // "watcher", "peer" or "toxiproxy"
	envDetector = "HALFOPEN_DETECTOR" // the watcher's detector spec
	envConns    = "HALFOPEN_CONNS"    // connections to make (default 1)
	envRun      = "HALFOPEN_RUN"      // the run a process belongs to
	// Protocol v1's own, from package protocol.
	envReconnect = protocol.EnvReconnect
	envProtocol  = protocol.EnvProtocol
	envRole      = protocol.EnvRole
	envSide      = protocol.EnvSide
	envAddr      = protocol.EnvAddr
	envConfig    = protocol.EnvConfig
)

// agentMains holds agent modes registered by other packages (the toxiproxy
// agent lives beside the faults that use it).
var agentMains = map[string]func() error{}

// RegisterAgent adds an agent mode run by MaybeRunAgent.
func RegisterAgent(name string, main func() error) {
	if _, dup := agentMains[name]; dup {
		panic("halfopen: agent " + name + " registered twice")
	}
	agentMains[name] = main
}

// MaybeRunAgent runs the agent this process was started as, then exits; it
// returns at once in a process that is not an agent. Call it first thing in
// main() and in TestMain, before m.Run(), since the harness re-executes the
// running binary as its agents.
func MaybeRunAgent() {
	mode := os.Getenv(envAgent)
	if mode == "" {
		return
	}
	watchRealtimeOverrun()
	var err error
	switch mode {
	case "watcher":
		err = watcherAgent()
	case "peer":
		err = peerAgent()
	default:
		main, ok := agentMains[mode]
		if !ok {
			err = fmt.Errorf("unknown agent mode %q", mode)
		} else {
			err = main()
		}
	}
	if err != nil {
		stdoutEmitter.Emit(protocol.Event{Event: agentcmd.EventError, Msg: err.Error()})
		fmt.Fprintln(os.Stderr, "halfopen agent:", err)
		normalPriority(os.Getpid())
		os.Exit(1)
	}
	normalPriority(os.Getpid())
	os.Exit(0)
}

// envNoRealtime set to "1" keeps every process of a lab at normal priority
// (Lab.Measuring), to measure what real-time priority buys.
const envNoRealtime = "HALFOPEN_NO_REALTIME"

// realtimePriority moves every thread of process pid to realtimePolicy
// priority 1, so that the instant it stamps (a decision, a fault) is not
// delayed by the CPU load of the other labs in the pool: the harness's
// timing error is then the kernel's wake-up latency, not the run queue's
// length. Only processes of a lab that measures get it (Lab.Measuring):
// one that starts or sets up, at real-time priority, would run ahead of
// the ones measuring, and a woken real-time task waits behind every
// runnable one of its priority. Where the kernel refuses (no
// CAP_SYS_NICE), the process runs at normal priority; the kernel's RT
// throttling (sched_rt_runtime_us) still reserves CPU time for everything
// else.
//
// The process gets a bound first: RLIMIT_RTTIME, the CPU time a thread at
// a real-time policy may use without sleeping (getrlimit(2); the count
// restarts at each wake-up, enqueue_task_rt in kernel/sched/rt.c). At
// realtimeRunLimit the kernel sends SIGXCPU, which halfopen's agents catch
// (watchRealtimeOverrun) and a program that does not is ended by; at
// realtimeKillLimit it sends SIGKILL. A spinning process would otherwise
// hold a CPU from everything at normal priority, the orchestrator and
// ksoftirqd included, until RT throttling lends them 50 ms of each second,
// and every lab's sample would pay for it. Where the bound cannot be set,
// the process stays at normal priority.
func realtimePriority(pid int) {
	if os.Getenv(envNoRealtime) == "1" {
		return
	}
	lim := unix.Rlimit{Cur: uint64(realtimeRunLimit / time.Microsecond), Max: uint64(realtimeKillLimit / time.Microsecond)}
	if err := unix.Prlimit(pid, unix.RLIMIT_RTTIME, &lim, nil); err != nil {
		return
	}
	setPolicy(pid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: realtimePolicy, Priority: 1})
}

// realtimePolicy is SCHED_RR, not SCHED_FIFO: a woken task preempts
// everything at normal priority either way, but among tasks of the same
// real-time priority SCHED_FIFO lets one keep its CPU until it blocks,
// where SCHED_RR hands it on after sched_rr_timeslice_ms (100 ms by
// default). Every lab's agents share priority 1, and a Go runtime thread
// that waits for another by yielding (sched_yield, as suspendG and
// casgstatus do) never blocks: under SCHED_FIFO two such threads of two
// agents, each waiting for a thread queued behind the other on the other
// CPU, can hold both CPUs until RT throttling. That fits what machine C
// showed, though no stack has shown it yet: two agents at 100 % of a CPU
// each while the orchestrator starved for 0.35 s and a heart-beat watcher
// decided a live peer dead, and a latency probe's watcher that ran 250 ms
// without sleeping (RLIMIT_RTTIME's bound). Under SCHED_RR a thread that
// only yields loses its CPU within one time slice.
const realtimePolicy = unix.SCHED_RR

// The bounds of RLIMIT_RTTIME on a process at real-time priority. The
// longest run without sleeping that a lab's process needs is its start
// (a Python interpreter's imports take about 0.5 s of CPU on machine C),
// and none starts at real-time priority (Process.promote waits for its
// first line); a detector or an agent at work sleeps within milliseconds.
const (
	realtimeRunLimit  = 250 * time.Millisecond
	realtimeKillLimit = time.Second
)

// realtimeOverrun is what an agent says when the kernel tells it, with
// SIGXCPU, that one of its threads ran realtimeRunLimit at real-time
// priority without sleeping.
var realtimeOverrun = fmt.Sprintf("a thread of this agent ran %v at real-time priority without sleeping (RLIMIT_RTTIME): it moved back to normal priority, and its goroutines' stacks are on its standard error", realtimeRunLimit)

// watchRealtimeOverrun catches SIGXCPU (realtimePriority's soft bound): the
// agent moves every thread back to normal priority, so that whatever spins
// stalls no other lab, says so as an error (its sample is not measured),
// then prints every goroutine's stack on standard error, which the
// sample's log keeps, to show what spun.
func watchRealtimeOverrun() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGXCPU)
	go func() {
		for range sigs {
			normalPriority(os.Getpid())
			stdoutEmitter.Emit(protocol.Event{Event: agentcmd.EventError, Msg: realtimeOverrun})
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			fmt.Fprintf(os.Stderr, "halfopen agent: %s\n%s\n", realtimeOverrun, buf[:n])
		}
	}()
}

// normalPriority moves every thread of process pid back to SCHED_NORMAL.
// It comes before an agent exits or is killed: the kernel tears a process
// down in its own threads, and for a Go process that is 1–6 ms of CPU
// (perf sched, 16 labs at once: 196 real-time bursts over 1 ms, all ending
// in exit), which at real-time priority would run ahead of the agents
// still waiting to stamp an instant on that CPU.
func normalPriority(pid int) {
	setPolicy(pid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL})
}

// setPolicy gives every thread of process pid the scheduling attributes
// attr. A thread made later inherits them from the thread that makes it;
// one made during the pass by a thread not yet changed is found by the
// next pass, until a pass finds no thread it has not changed. Where the
// kernel refuses (no CAP_SYS_NICE, a process gone), the threads keep their
// policy.
func setPolicy(pid int, attr *unix.SchedAttr) {
	done := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		if err != nil {
			return
		}
		changed := 0
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil && !done[tid] {
				done[tid] = true
				changed++
				_ = unix.SchedSetAttr(tid, attr, 0)
			}
		}
		if changed == 0 {
			return
		}
	}
}

// agentContext ends when the orchestrator closes the agent's standard input
// (it went away) or sends SIGTERM. Commands read from standard input are
// delivered on the returned channel.
func agentContext() (context.Context, <-chan agentcmd.Command) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		cancel()
	}()
	cmds := make(chan agentcmd.Command, 16)
	go func() {
		defer cancel()
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			var c agentcmd.Command
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				stdoutEmitter.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "bad command: " + err.Error()})
				continue
			}
			cmds <- c
		}
	}()
	return ctx, cmds
}

// establisher makes the agent's connections the protocol's way (package
// protocol: no MPTCP, no keepalive unless the detector asks for it), again
// after each one ends when the agent reconnects.
type establisher struct {
	side protocol.Side
	addr string
	ln   net.Listener
}

// dialPatience is how long an agent dials before it gives up: the listener
// may not be up yet when a program starts.
const dialPatience = 10 * time.Second

func (e *establisher) ready(ctx context.Context) error {
	if e.side == protocol.SideServer {
		ln, err := protocol.Listen(ctx, e.addr)
		if err != nil {
			return err
		}
		e.ln = ln
	}
	return nil
}

// connect returns n connections: accepted when this end listens, dialed otherwise.
func (e *establisher) connect(ctx context.Context, n int) ([]*net.TCPConn, error) {
	conns := make([]*net.TCPConn, 0, n)
	for len(conns) < n {
		var c *net.TCPConn
		var err error
		if e.ln != nil {
			var nc net.Conn
			nc, err = protocol.Accept(ctx, e.ln)
			if nc != nil {
				c = nc.(*net.TCPConn)
			}
		} else {
			c, err = protocol.Dial(ctx, e.addr, dialPatience)
		}
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// watcherAgent runs a built-in detector's watcher side and speaks protocol v1.
func watcherAgent() error {
	ctx, cmds := agentContext()
	em := stdoutEmitter
	det, sp, err := NewDetector(os.Getenv(envDetector))
	if err != nil {
		return err
	}
	side, err := protocol.ParseSide(os.Getenv(envSide))
	if err != nil {
		return err
	}
	n := 1
	if cc, ok := det.(connCounter); ok {
		n = cc.Conns()
	}
	em.Emit(protocol.Event{Event: protocol.EventHello, Protocol: protocol.Version, Name: sp.String(), PredictedS: det.Predict().Seconds()})
	var data atomic.Pointer[net.TCPConn]
	go calibrationCommands(ctx, cmds, em, data.Load)
	est := &establisher{side: side, addr: os.Getenv(envAddr)}
	if err := est.ready(ctx); err != nil {
		return err
	}
	em.Emit(protocol.Event{Event: protocol.EventReady})
	reconnect := os.Getenv(envReconnect) == "1"
	for {
		conns, err := est.connect(ctx, n)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		data.Store(conns[0])
		em.Emit(protocol.Event{Event: protocol.EventConnected, Local: conns[0].LocalAddr().String(), Remote: conns[0].RemoteAddr().String()})
		d := det.Watch(ctx, &Watch{Conns: conns, Log: em.Logf})
		if ctx.Err() != nil {
			return nil
		}
		em.Emit(protocol.Event{Event: protocol.EventDead, Reason: d.Reason, TNs: d.AtNs})
		for _, c := range conns {
			c.Close()
		}
		if !reconnect {
			<-ctx.Done()
			return nil
		}
	}
}

// calibrationCommands answers the orchestrator's probes of its own timing
// error: "decide-at" sleeps until the instant on CLOCK_MONOTONIC and says
// when the agent woke up (the machine's timer lateness plus the wake-up);
// "listen-datagrams" stamps the read of every probe datagram the peer
// sends (the wake-up on a packet, as a detector's read wakes). "write"
// writes a request on the data connection (conn) for the in-flight phase.
func calibrationCommands(ctx context.Context, cmds <-chan agentcmd.Command, em *protocol.Emitter, conn func() *net.TCPConn) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-cmds:
			switch c.Cmd {
			case agentcmd.CmdDecideAt:
				// A command that arrives after its instant measures the
				// orchestrator's pipe, not the agent's clock: say so.
				late := protocol.Now() > c.AtNs
				protocol.SleepUntil(c.AtNs)
				ev := protocol.Event{Event: agentcmd.EventDecided, Seq: c.Seq, TNs: protocol.Now()}
				if late {
					ev.Msg = "late"
				}
				em.Emit(ev)
			case agentcmd.CmdListenDatagrams:
				pc, err := net.ListenPacket("udp", c.Addr)
				if err != nil {
					em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "listen-datagrams: " + err.Error()})
					continue
				}
				context.AfterFunc(ctx, func() { pc.Close() })
				em.Emit(protocol.Event{Event: agentcmd.EventPort, Msg: pc.LocalAddr().String()})
				go stampDatagrams(pc, em)
			case cmdWrite:
				writeRequest(conn(), c, em)
			default:
				em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "watcher does not know command " + string(c.Cmd)})
			}
		}
	}
}

// writeRequest writes a request of c.Bytes on the data connection and says
// so, stamped before the write (its segment may be acknowledged before the
// call returns); a failed write is said in the event, not as an error: the
// fault may have ended the connection already, and the detector decides.
func writeRequest(c *net.TCPConn, cmd agentcmd.Command, em *protocol.Emitter) {
	if c == nil {
		em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "write: the watcher has no connection yet"})
		return
	}
	msg := make([]byte, max(cmd.Bytes, 1))
	for i := range msg {
		msg[i] = 'A' + byte(i%26)
	}
	at := protocol.Now()
	ev := protocol.Event{Event: agentcmd.EventSent, Seq: cmd.Seq, TNs: at}
	n, err := c.Write(msg)
	ev.Bytes = n
	if err != nil {
		ev.Msg = "write: " + protocol.Reason(err)
	}
	em.Emit(ev)
}

// stampDatagrams reads probe datagrams (each its decimal sequence number)
// until pc is closed, and says when each read returned.
func stampDatagrams(pc net.PacketConn, em *protocol.Emitter) {
	buf := make([]byte, 64)
	for {
		n, _, err := pc.ReadFrom(buf)
		at := protocol.Now()
		if err != nil {
			return
		}
		seq, err := strconv.Atoi(string(buf[:n]))
		if err != nil {
			em.Logf("probe datagram %q is not a sequence number", buf[:n])
			continue
		}
		em.Emit(protocol.Event{Event: agentcmd.EventReceived, Seq: seq, TNs: at})
	}
}

// peerAgent is the built-in peer: it accepts or dials as told, echoes every
// byte it receives, and on command sends chatter, closes (FIN) or resets (RST).
func peerAgent() error {
	ctx, cmds := agentContext()
	em := stdoutEmitter
	side, err := protocol.ParseSide(os.Getenv(envSide))
	if err != nil {
		return err
	}
	// The peer's side is the opposite of the watcher's.
	peerSide := protocol.SideClient
	if side == protocol.SideClient {
		peerSide = protocol.SideServer
	}
	em.Emit(protocol.Event{Event: protocol.EventHello, Protocol: protocol.Version, Name: "builtin-echo-peer"})
	est := &establisher{side: peerSide, addr: os.Getenv(envAddr)}
	if err := est.ready(ctx); err != nil {
		return err
	}
	em.Emit(protocol.Event{Event: protocol.EventReady})
	p := &echoPeer{em: em}
	n := envInt(envConns, 1)
	reconnect := os.Getenv(envReconnect) == "1"
	go p.commands(ctx, cmds)
	for {
		conns, err := est.connect(ctx, n)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		p.set(conns)
		for _, c := range conns {
			// Urgent bytes (oob-probe, netcheck) are read in band and echoed,
			// and counted; left out of band they would turn close into RST.
			if err := protocol.InlineUrgent(c); err != nil {
				em.Logf("SO_OOBINLINE: %v", err)
			}
		}
		em.Emit(protocol.Event{Event: protocol.EventConnected, Local: conns[0].LocalAddr().String(), Remote: conns[0].RemoteAddr().String()})
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				protocol.EchoConn(c, p.count)
			}()
		}
		if reconnect && est.ln != nil && ctx.Err() == nil {
			// A listening peer accepts the watcher's next connection at
			// once: the old one may take long to end (the watcher's FIN can
			// wait behind its unacknowledged retransmissions), and a watcher
			// that reconnects must find somebody echoing.
			go func() {
				wg.Wait()
				for _, c := range conns {
					c.Close()
				}
			}()
			continue
		}
		wg.Wait()
		if !reconnect || ctx.Err() != nil {
			<-ctx.Done()
			return nil
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

type echoPeer struct {
	em    *protocol.Emitter
	probe net.Conn // probe datagrams' socket (sendDatagram), made on the first
	mu    sync.Mutex
	conns []*net.TCPConn
	// received and nul count the bytes read, and the NUL bytes among them
	// (urgent probes read in band: the lab's own traffic has none).
	received, nul atomic.Int64
}

func (p *echoPeer) count(b []byte) {
	p.received.Add(int64(len(b)))
	p.nul.Add(int64(bytes.Count(b, []byte{0})))
}

func (p *echoPeer) set(conns []*net.TCPConn) {
	p.mu.Lock()
	p.conns = conns
	p.mu.Unlock()
}

func (p *echoPeer) current() []*net.TCPConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

// sendDatagram sends probe datagram c.Seq to c.Addr, over a socket made on
// the first, and says when it was sent: the instant is taken before the
// call, since the datagram may wake the watcher before the call returns.
func (p *echoPeer) sendDatagram(c agentcmd.Command) {
	if p.probe == nil || p.probe.RemoteAddr().String() != c.Addr {
		if p.probe != nil {
			p.probe.Close()
		}
		conn, err := net.Dial("udp", c.Addr)
		if err != nil {
			p.em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "send-datagram: " + err.Error()})
			return
		}
		p.probe = conn
	}
	at := protocol.Now()
	if _, err := p.probe.Write([]byte(strconv.Itoa(c.Seq))); err != nil {
		p.em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "send-datagram: " + err.Error()})
		return
	}
	p.em.Emit(protocol.Event{Event: agentcmd.EventSent, Seq: c.Seq, TNs: at})
}

func (p *echoPeer) commands(ctx context.Context, cmds <-chan agentcmd.Command) {
	for {
		var c agentcmd.Command
		select {
		case <-ctx.Done():
			return
		case c = <-cmds:
		}
		if c.Cmd == agentcmd.CmdSendDatagram {
			p.sendDatagram(c)
			continue
		}
		conns := p.current()
		if len(conns) == 0 {
			p.em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "peer has no connection for " + string(c.Cmd)})
			continue
		}
		switch c.Cmd {
		case agentcmd.CmdSend:
			msg := make([]byte, max(c.Bytes, 1))
			for i := range msg {
				msg[i] = 'a' + byte(i%26)
			}
			if _, err := conns[0].Write(msg); err != nil {
				p.em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "send: " + err.Error()})
				continue
			}
			p.em.Emit(protocol.Event{Event: agentcmd.EventSent, Seq: c.Seq, Bytes: len(msg)})
		case agentcmd.CmdClose:
			// shutdown(SHUT_WR) sends a FIN whatever is still unread, where
			// close() would send an RST if echoed bytes were queued. The
			// instant is taken before the call: the FIN crosses the veths
			// and wakes the watcher before shutdown() even returns.
			at := protocol.Now()
			var errs []error
			for _, c := range conns {
				errs = append(errs, c.CloseWrite())
			}
			if err := errors.Join(errs...); err != nil {
				p.em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "close: " + err.Error()})
				continue
			}
			p.em.Emit(protocol.Event{Event: agentcmd.EventClosed, TNs: at, Reason: "FIN"})
		case agentcmd.CmdReset:
			var errs []error
			for _, c := range conns {
				errs = append(errs, c.SetLinger(0))
			}
			at := protocol.Now()
			for _, c := range conns {
				errs = append(errs, c.Close())
			}
			if err := errors.Join(errs...); err != nil {
				p.em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "reset: " + err.Error()})
				continue
			}
			p.em.Emit(protocol.Event{Event: agentcmd.EventClosed, TNs: at, Reason: "RST"})
		case agentcmd.CmdStats:
			p.em.Emit(protocol.Event{Event: agentcmd.EventStats, Seq: c.Seq, Msg: fmt.Sprintf("received %d bytes, %d of them NUL (urgent bytes read in band, SO_OOBINLINE)", p.received.Load(), p.nul.Load())})
		default:
			p.em.Emit(protocol.Event{Event: agentcmd.EventError, Msg: "peer does not know command " + string(c.Cmd)})
		}
	}
}
