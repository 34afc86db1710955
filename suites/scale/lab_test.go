package scale_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/internal/nftcount"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/suites/scale"
)

// Timing of one lab. Every family's timer period is 1 s (keepalive idle and
// interval, the user timeout's write, the heart-beat, the TCP_INFO poll).
const (
	// dialRate: the client opens at most this many connections a second,
	// evenly paced over a whole number of periods (see spreadFor).
	dialRate = 4000
	// settle: after the last connection, one more period, so that the last
	// one's keepalive has fired once and every timer runs.
	settle = time.Second
	// window: the healthy, idle observation of packets and CPU.
	window = 2 * time.Second
	// budget: how long after the fault the server may take to free its
	// connections; the slowest prediction (keepalive, 4.5 s) plus 1.5 s.
	budget = 6 * time.Second
	// listenPort is where the server listens on the watcher host.
	listenPort = 7000
)

// labSysctls are set in the lab's namespaces only: room for N connections
// in the server's accept queue and the client's ephemeral ports; and one
// FIN retransmission for an orphan (a socket closed by its program with
// its FIN unacknowledged: the crashed client's, or the server's at
// teardown) instead of the default 8, so that tens of thousands of them
// do not linger for minutes against the machine-wide tcp_max_orphans,
// which every other lab on the machine shares. An orphan is closed by its
// program already: no connection the server holds is one.
var labSysctls = map[topo.Role]map[string]string{
	topo.Watcher: {"net.core.somaxconn": "65535", "net.ipv4.tcp_max_syn_backlog": "65535", "net.ipv4.tcp_orphan_retries": "1"},
	topo.Peer:    {"net.ipv4.ip_local_port_range": "10000 65000", "net.ipv4.tcp_orphan_retries": "1"},
}

// The scale agents are started without ProcSpec.Realtime, and their labs
// never call Lab.Measuring: they run at normal priority. The harness runs
// the agents of a measuring lab at SCHED_FIFO so that their instants are
// not delayed by other labs; a Go program holding 10 000 connections at
// SCHED_FIFO starves everything else until the kernel's RT throttling cuts
// in (950 ms of every second): measured here, other labs' accepts stalled
// for 1 s.

// labSpec is one lab: a server of one design with one detector holding
// Conns connections from the peer host when Fault strikes. Overhead says
// whether the lab also observes the healthy window (one lab per family,
// design and N does: the host-crash one).
type labSpec struct {
	Detector string
	Design   scale.Design
	Conns    int
	Fault    string
	Overhead bool
}

func (s labSpec) String() string {
	return fmt.Sprintf("%s / %s / %d connections / %s", s.Detector, s.Design, s.Conns, s.Fault)
}

// labResult is what one lab measured.
type labResult struct {
	spec       labSpec
	prediction harness.Prediction
	// accepted connections; freeS are the seconds from the fault until the
	// server freed each connection it freed, sorted; early counts those it
	// freed before the fault (false positives).
	accepted int
	// spread is how long the client took to dial, by design (spreadFor).
	spread time.Duration
	// acceptGap is the widest stretch of the timer period in which no
	// connection has its phase (its accept instant modulo the period):
	// evenly paced dials give period/N, so a wide one means the server
	// (or the machine) stalled and the connections' phases bunched.
	acceptGap time.Duration
	// bunched are the accept gaps of earlier attempts of this lab that
	// exceeded maxAcceptGap and were measured again.
	bunched []time.Duration
	freeS   []float64
	early   int
	reasons map[string]int
	// establish: from the client's start to the server's N-th accept.
	establish time.Duration
	// baseRSS before the first connection and rss holding all, from
	// /proc/PID/status VmRSS; threads from its Threads line.
	baseRSS, rss uint64
	threads      int
	// Over the healthy window (zero when not observed): the server's CPU
	// time, the packets and bytes the router forwarded between the hosts.
	windowDur      time.Duration
	cpu            time.Duration
	packets, bytes uint64
	sysctls        map[string]map[string]string
}

// measureLab builds a lab, runs one measurement in it and tears it down.
// The lab belongs to run from before its first namespace exists, so a
// failure or an interrupt anywhere leaves nothing behind once run closes.
func measureLab(ctx context.Context, run *harness.Run, spec labSpec, dir string) (res labResult, err error) {
	res.spec, res.spread = spec, spreadFor(spec.Conns)
	det, _, err := harness.NewDetector(spec.Detector)
	if err != nil {
		return res, err
	}
	res.prediction = det.Predict()
	flt, _, err := harness.NewFault(spec.Fault)
	if err != nil {
		return res, err
	}
	lab, err := run.NewLab(ctx)
	if err != nil {
		return res, fmt.Errorf("%s: %w", spec, err)
	}
	defer func() { err = errors.Join(err, lab.Close()) }()
	wrap := func(err error) error { return fmt.Errorf("%s: lab %s: %w", spec, lab.ID, err) }

	res.sysctls = map[string]map[string]string{}
	for role, kv := range labSysctls {
		if err := lab.SetSysctls(role, kv); err != nil {
			return res, wrap(err)
		}
		res.sysctls[string(role)] = map[string]string{}
		for k := range kv {
			v, err := lab.ReadSysctl(role, k)
			if err != nil {
				return res, wrap(err)
			}
			res.sysctls[string(role)][k] = v
		}
	}
	counter, err := newForwardCounter(lab)
	if err != nil {
		return res, wrap(err)
	}
	exe, err := os.Executable()
	if err != nil {
		return res, wrap(err)
	}
	addr := fmt.Sprintf("%s:%d", topo.WatcherAddr, listenPort)
	out := filepath.Join(dir, strings.TrimPrefix(lab.ID, "ho-")+".json")
	server, err := lab.Host(topo.Watcher).Start(harness.ProcSpec{Path: exe, Label: "scale server", Env: []string{
		"HALFOPEN_AGENT=" + scale.ServerAgent, scale.EnvDetector + "=" + spec.Detector, scale.EnvDesign + "=" + string(spec.Design),
		scale.EnvAddr + "=" + addr, scale.EnvConns + "=" + strconv.Itoa(spec.Conns), scale.EnvOut + "=" + out,
	}})
	if err != nil {
		return res, wrap(err)
	}
	// Before the lab goes: SIGTERM makes the server reset (RST) every
	// connection it still holds rather than leave orphans closing them.
	defer server.Stop(2 * time.Second)
	step := func(p *harness.Process, d time.Duration, names ...string) (protocol.Event, error) {
		sctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return p.WaitEvent(sctx, names...)
	}
	if _, err := step(server, 10*time.Second, protocol.EventReady); err != nil {
		return res, wrap(err)
	}
	if res.baseRSS, _, err = procStatus(server.Pid()); err != nil {
		return res, wrap(err)
	}
	peer, err := lab.Host(topo.Peer).Start(harness.ProcSpec{Path: exe, Label: "scale client host", Env: []string{
		"HALFOPEN_AGENT=" + scale.PeerAgent, scale.EnvAddr + "=" + addr,
		scale.EnvConns + "=" + strconv.Itoa(spec.Conns), scale.EnvSpread + "=" + res.spread.String(),
	}})
	if err != nil {
		return res, wrap(err)
	}
	defer peer.Stop(2 * time.Second)
	ready, err := step(peer, 10*time.Second, protocol.EventReady)
	if err != nil {
		return res, wrap(err)
	}
	// The client host says connected once its last dial returned, the
	// server once it accepted the N-th; a client that fails ends the wait
	// for the server with its own error.
	cctx, cancel := context.WithTimeout(ctx, res.spread+20*time.Second)
	cctx, fail := context.WithCancelCause(cctx)
	peerDone := make(chan error, 1)
	go func() {
		_, err := peer.WaitEvent(cctx, protocol.EventConnected)
		if err != nil {
			fail(err)
		}
		peerDone <- err
	}()
	all, err := server.WaitEvent(cctx, protocol.EventConnected)
	perr := <-peerDone
	fail(nil)
	cancel()
	if err != nil {
		if perr != nil {
			err = perr
		}
		return res, wrap(fmt.Errorf("%w (the client host's standard error: %q)", err, peer.Stderr()))
	}
	if perr != nil {
		return res, wrap(perr)
	}
	res.establish = time.Duration(all.TNs - ready.TNs)
	time.Sleep(settle)
	if spec.Overhead {
		p0, b0, err := counter.read()
		if err != nil {
			return res, wrap(err)
		}
		c0, err := procCPU(server.Pid())
		if err != nil {
			return res, wrap(err)
		}
		t0 := protocol.Now()
		time.Sleep(window)
		p1, b1, err := counter.read()
		if err != nil {
			return res, wrap(err)
		}
		c1, err := procCPU(server.Pid())
		if err != nil {
			return res, wrap(err)
		}
		res.windowDur = protocol.Since(t0)
		res.packets, res.bytes, res.cpu = p1-p0, b1-b0, c1-c0
	}
	if res.rss, res.threads, err = procStatus(server.Pid()); err != nil {
		return res, wrap(err)
	}
	// The sample's connection is the scale design's own server and clients,
	// not halfopen's agents: a fault that needs an agent says so.
	conn := &harness.Conn{Side: protocol.SideServer, PathName: "direct"}
	_, at, err := flt.Inject(ctx, lab, conn)
	if err != nil {
		return res, wrap(err)
	}
	wctx, cancel := context.WithDeadline(ctx, time.Now().Add(budget-protocol.Since(at)))
	_, werr := server.WaitEvent(wctx, scale.EventAllFreed)
	timedOut := wctx.Err() != nil && ctx.Err() == nil
	cancel()
	if werr != nil && !timedOut {
		return res, wrap(werr)
	}
	if err := server.Send(agentcmd.Command{Cmd: "dump"}); err != nil {
		return res, wrap(err)
	}
	if _, err := step(server, 10*time.Second, scale.EventDumped); err != nil {
		return res, wrap(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return res, wrap(err)
	}
	var d scale.Dump
	if err := json.Unmarshal(b, &d); err != nil {
		return res, wrap(fmt.Errorf("free records: %w", err))
	}
	res.accepted = len(d.AcceptedNs)
	res.acceptGap = phaseGap(d.AcceptedNs, period)
	res.reasons = map[string]int{}
	for _, f := range d.Freed {
		if f.AtNs < at {
			res.early++
			continue
		}
		if s := protocol.Seconds(f.AtNs - at); s <= budget.Seconds() {
			res.freeS = append(res.freeS, s)
			res.reasons[f.Reason]++
		}
	}
	sort.Float64s(res.freeS)
	return res, nil
}

// spreadFor is how long the client takes to open n connections: whole
// periods, so that the connections' phases (dial instants modulo the
// period) cover it evenly, and at most dialRate a second, a pace the
// goroutine server keeps up with on two shared cores (at 10 000 a second
// it stalled for up to 600 ms).
func spreadFor(n int) time.Duration {
	return period * time.Duration(max(1, (n+dialRate-1)/dialRate))
}

// phaseGap returns the widest stretch of the period that holds no instant's
// phase (instant modulo the period), wrapping around.
func phaseGap(ns []int64, period time.Duration) time.Duration {
	if len(ns) == 0 {
		return period
	}
	phases := make([]int64, len(ns))
	for i, t := range ns {
		phases[i] = t % int64(period)
	}
	slices.Sort(phases)
	gap := phases[0] + int64(period) - phases[len(phases)-1]
	for i := 1; i < len(phases); i++ {
		gap = max(gap, phases[i]-phases[i-1])
	}
	return time.Duration(gap)
}

// forwardCounter counts, on the router, every packet it forwards between
// the two hosts, in a table of its own on the forward hook.
type forwardCounter struct {
	conn  *nftables.Conn
	table *nftables.Table
	chain *nftables.Chain
}

func newForwardCounter(lab *harness.Lab) (*forwardCounter, error) {
	conn, err := lab.Host(topo.Router).Nft()
	if err != nil {
		return nil, err
	}
	t := conn.AddTable(&nftables.Table{Name: "halfopen-scale", Family: nftables.TableFamilyIPv4})
	policy := nftables.ChainPolicyAccept
	c := conn.AddChain(&nftables.Chain{Name: "forwarded", Table: t, Hooknum: nftables.ChainHookForward,
		Priority: nftables.ChainPriorityFilter, Type: nftables.ChainTypeFilter, Policy: &policy})
	for _, link := range []string{topo.RouterPeerLink, topo.RouterWatchLink} {
		name := make([]byte, 16)
		copy(name, link)
		conn.AddRule(&nftables.Rule{Table: t, Chain: c, UserData: []byte("halfopen:scale"), Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
			&expr.Counter{},
		}})
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("install forward counters: %w", err)
	}
	return &forwardCounter{conn: conn, table: t, chain: c}, nil
}

func (f *forwardCounter) read() (packets, bytes uint64, err error) {
	return nftcount.Sum(f.conn, f.table, nil, f.chain)
}

// procStatus reads a process's resident set (VmRSS) and thread count from
// /proc/PID/status.
func procStatus(pid int) (rss uint64, threads int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read the server's status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			kb, _ := strconv.ParseUint(f[0], 10, 64)
			rss = kb * 1024
		case "Threads":
			threads, _ = strconv.Atoi(f[0])
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
	}
	return rss, threads, nil
}

// procCPU sums the time every thread of a process has run on a CPU, in
// nanoseconds, from /proc/PID/task/*/schedstat (its first field): finer
// than /proc/PID/stat's 10 ms ticks, which a window of 100 idle
// connections does not fill.
func procCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("list the server's threads: %w", err)
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // a thread that exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/%d/task/%s/schedstat: %w", pid, t.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// connBudget bounds how many connections the labs running at once hold
// together, so that two labs of 10 000 do not share two cores.
type connBudget struct {
	mu   sync.Mutex
	cond *sync.Cond
	free int
}

func newConnBudget(n int) *connBudget {
	b := &connBudget{free: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *connBudget) acquire(n int) {
	b.mu.Lock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	b.mu.Unlock()
}

func (b *connBudget) release(n int) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// A lab measures what it should only if its connections' timers run at
// every phase of the period: the client paces its dials evenly over whole
// periods, and the server accepts each as it arrives. When the machine
// stalls the server (the labs of three other engineers share its two
// cores) so that a stretch of maxAcceptGap of the period holds no
// connection's phase, the lab is measured again, at most attempts times in
// all; the report says so.
const (
	maxAcceptGap = period / 4
	attempts     = 3
)

// measureLabs runs the labs, in the order given, as many at once as the
// connection budget allows, and returns their results in that order.
func measureLabs(ctx context.Context, run *harness.Run, specs []labSpec, pool *connBudget, dir string) ([]labResult, []error) {
	results := make([]labResult, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		pool.acquire(s.Conns)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pool.release(s.Conns)
			var gaps []time.Duration
			for range attempts {
				results[i], errs[i] = measureLab(ctx, run, s, dir)
				if errs[i] != nil || results[i].acceptGap <= maxAcceptGap {
					break
				}
				gaps = append(gaps, results[i].acceptGap)
			}
			results[i].bunched = gaps
		}()
	}
	wg.Wait()
	return results, errs
}
