package harness

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/tcprules"
)

// session is one watched connection in a lab, set up as every sample sets
// it up:
//
//	[peer: echo peer or foreign peer] ==veth== [router] ==veth== [watcher: the detector]
//
// the cell's kernel parameters written in the namespaces, the fault's
// Prepare run, the listening end started and ready, then the dialing end,
// and both connected. The Matrix opens one per sample; tests and tools open
// their own (Connect).
type session struct {
	Lab  *Lab
	Cell *Cell
	// Conn is the sample's connection: its side, path and programs.
	Conn *Conn
	// Watcher and Peer are the two ends' processes.
	Watcher, Peer *Process
	// WatcherStartNs is the CLOCK_MONOTONIC instant just before the watcher
	// was started: none of its decisions can be stamped earlier.
	WatcherStartNs int64
	// Builtin is true when both ends are halfopen's own agents.
	Builtin bool
	// Service is the peer's real server, when the detector's peer is one.
	Service *Service

	opt sessionOptions
	// watcherLocal and watcherRemote are the data connection's addresses as
	// the watcher said when it connected ("" when it did not say).
	watcherLocal, watcherRemote string
	// hold holds the peer's pure ACKs to a foreign watcher aimed at the
	// in-flight phase (nil: none).
	hold *flowHold
}

// sessionOptions say how a session starts its processes.
type sessionOptions struct {
	// Exe is the binary re-executed as halfopen's agents.
	Exe string
	// Reconnect makes the watcher connect again after each decision (a
	// disturbance counts every mistake).
	Reconnect bool
	// LogDir, when set, keeps a service peer's output there, one file per
	// sample (Name); otherwise only its last lines are kept, for errors.
	LogDir, Name string
}

// setupTimeout bounds a session's set-up: both ends started and connected.
const setupTimeout = 10 * time.Second

// openSession sets up one watched connection for cell in lab. flt is the
// sample's own copy of the cell's fault, whose Prepare runs (nil: none).
func openSession(ctx context.Context, lab *Lab, cell *Cell, flt Fault, opt sessionOptions) (*session, error) {
	conn := newConn(cell.Config.Side, cell.Config.Port)
	if err := prepareLab(ctx, lab, conn, cell, flt); err != nil {
		return nil, err
	}
	s := &session{Lab: lab, Cell: cell, Conn: conn, Builtin: true, opt: opt}
	if sp, ok := cell.Detector.(ServicePeer); ok {
		if svc, ok := sp.PeerService(); ok {
			s.Service = &svc
		}
	}
	if err := s.start(ctx); err != nil {
		if _, herr := s.releaseHold(); herr != nil {
			err = fmt.Errorf("%w; %w", err, herr)
		}
		return nil, err
	}
	lab.Measuring()
	return s, nil
}

// Connect readies lab as a sample does (the detector's kernel parameters,
// the fault's Prepare when flt is not nil), starts the built-in peer and a
// watcher running detector on side, waits until both are connected, and
// returns the sample's connection (its Agents hold both ends). It is the
// set-up of one sample, for tests and tools that inject faults by hand.
func Connect(ctx context.Context, lab *Lab, detector string, side protocol.Side, flt Fault) (*Conn, error) {
	c, err := Resolve(CellConfig{Detector: detector, Fault: calibrationFault, Side: side})
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to re-execute as agents: %w", err)
	}
	s, err := openSession(ctx, lab, c, flt, sessionOptions{Exe: exe})
	if err != nil {
		return nil, err
	}
	return s.Conn, nil
}

// prepareLab writes the cell's kernel parameters (its sysctls in every
// namespace, the detector's in the watcher's) and lets the fault arrange
// the path before any connection exists.
func prepareLab(ctx context.Context, lab *Lab, conn *Conn, c *Cell, flt Fault) error {
	if len(c.Config.Sysctls) > 0 {
		for _, r := range []topo.Role{topo.Peer, topo.Router, topo.Watcher} {
			if err := lab.SetSysctls(r, c.Config.Sysctls); err != nil {
				return err
			}
		}
	}
	if err := lab.SetSysctls(topo.Watcher, c.WatcherSysctls); err != nil {
		return err
	}
	if p, ok := flt.(Preparer); ok {
		if err := p.Prepare(ctx, lab, conn); err != nil {
			return fmt.Errorf("prepare %s: %w", c.FaultSpec, err)
		}
	}
	return nil
}

// start starts the listening end first, waits until it is ready, then the
// dialing end, and waits until both are connected.
func (s *session) start(ctx context.Context) error {
	lab, c, conn := s.Lab, s.Cell, s.Conn
	exe, reconnect := s.opt.Exe, s.opt.Reconnect
	side := c.Config.Side
	listenAddr := conn.ListenAddr()
	// The dialing end goes through conn.Via (a proxy put there by a fault's
	// Prepare) or straight to the listener.
	if !conn.Via.IsValid() {
		conn.Via = listenAddr
		conn.PathName = topo.PathDirect
	}
	watcherAddr, peerAddr := conn.Via.String(), listenAddr.String()
	if side == protocol.SideServer {
		watcherAddr, peerAddr = listenAddr.String(), conn.Via.String()
	}
	if c.Config.Phase == tcprules.PhaseInFlight && side == protocol.SideClient && (isA[Program](c.Detector) || s.Service != nil) {
		// A library may write its request the moment it is connected,
		// before the harness hears that it is: its peer's pure ACKs are
		// held from before it dials (aimAtForeignRequest).
		h, err := holdFlow(lab, flow{local: netip.AddrPortFrom(topo.WatcherAddr, 0), remote: conn.Via})
		if err != nil {
			return err
		}
		s.hold = h
	}
	conns := 1
	if cc, ok := c.Detector.(connCounter); ok {
		conns = cc.Conns()
	}
	common := []string{
		fmt.Sprintf("%s=%d", envProtocol, protocol.Version),
		envSide + "=" + string(side),
		fmt.Sprintf("%s=%d", envConns, conns),
	}
	if reconnect {
		common = append(common, envReconnect+"=1")
	}
	wspec := AgentProc(exe, "watcher", append([]string{
		envAgent + "=watcher", envRole + "=watcher", envAddr + "=" + watcherAddr, envDetector + "=" + c.DetSpec.String(),
	}, common...)...)
	pspec := AgentProc(exe, "peer", append([]string{
		envAgent + "=peer", envRole + "=peer", envAddr + "=" + peerAddr,
	}, common...)...)
	foreignPeer := false
	if prog, ok := c.Detector.(Program); ok {
		s.Builtin = false
		wspec = prog.WatcherProgram(side, watcherAddr)
		wspec.Env = append(wspec.Env, common...)
		if ps, ok := prog.PeerProgram(side, peerAddr); ok {
			pspec, foreignPeer = ps, true
			pspec.Env = append(pspec.Env, common...)
		}
	}
	wspec.Realtime, pspec.Realtime = true, true
	if s.Service != nil {
		if side != protocol.SideClient {
			return fmt.Errorf("the peer is the service %s, a server: only side client (the watcher dials it) can be measured", s.Service.Name)
		}
		// The service's own start-up has its ReadyTimeout; the watcher's
		// connecting has setupTimeout after it.
		if err := s.startService(ctx, listenAddr); err != nil {
			return err
		}
		setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
		defer cancel()
		s.Builtin = false
		s.WatcherStartNs = protocol.Now()
		w, err := lab.Host(topo.Watcher).Start(wspec)
		if err != nil {
			return err
		}
		s.Watcher = w
		conn.Agents[topo.Watcher] = w
		ev, err := w.WaitEvent(setupCtx, protocol.EventConnected)
		if err != nil {
			return fmt.Errorf("connection never established: %w", err)
		}
		s.watcherLocal, s.watcherRemote = ev.Local, ev.Remote
		return nil
	}
	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	first, second := pspec, wspec
	firstHost, secondHost := topo.Peer, topo.Watcher
	if side == protocol.SideServer {
		first, second = wspec, pspec
		firstHost, secondHost = topo.Watcher, topo.Peer
	}
	if side == protocol.SideServer {
		s.WatcherStartNs = protocol.Now()
	}
	a, err := lab.Host(firstHost).Start(first)
	if err != nil {
		return err
	}
	if _, err := a.WaitEvent(setupCtx, protocol.EventReady); err != nil {
		return err
	}
	if side == protocol.SideClient {
		s.WatcherStartNs = protocol.Now()
	}
	b, err := lab.Host(secondHost).Start(second)
	if err != nil {
		return err
	}
	s.Watcher, s.Peer = b, a
	if side == protocol.SideServer {
		s.Watcher, s.Peer = a, b
	}
	conn.Agents[topo.Watcher], conn.Agents[topo.Peer] = s.Watcher, s.Peer
	// The watcher's connected is what counts; a foreign peer (a program or
	// a real server) owes none. halfopen's own peer says it too, with its
	// address. The dialing end's local port names the data connection in
	// the router's conntrack table (its original source port, before NAT).
	ev, err := s.Watcher.WaitEvent(setupCtx, protocol.EventConnected)
	if err != nil {
		return fmt.Errorf("connection never established: %w", err)
	}
	s.watcherLocal, s.watcherRemote = ev.Local, ev.Remote
	port := ev.Local
	if side == protocol.SideServer {
		port = ev.Remote
	}
	if !foreignPeer {
		pev, err := s.Peer.WaitEvent(setupCtx, protocol.EventConnected)
		if err != nil {
			return fmt.Errorf("connection never established: %w", err)
		}
		if side == protocol.SideServer {
			port = pev.Local
		}
	}
	if ap, err := netip.ParseAddrPort(port); err == nil {
		conn.DataPort = ap.Port()
	}
	return nil
}

// startService runs the sample's setup of the service, starts it in the
// peer host and waits until it is ready; when a rebooted peer host
// returns, it starts the service again there (the same directory: a
// reboot keeps the disk, not the connections).
func (s *session) startService(ctx context.Context, addr netip.AddrPort) error {
	svc := *s.Service
	if err := svc.Check(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "halfopen-service-")
	if err != nil {
		return fmt.Errorf("service %s: %w", svc.Name, err)
	}
	s.Lab.OnClose(func() error { return os.RemoveAll(dir) })
	if svc.User != "" {
		cred, err := credentialOf(svc.User)
		if err != nil {
			return err
		}
		if err := chownForUser(dir, cred); err != nil {
			return fmt.Errorf("service %s: %w", svc.Name, err)
		}
	}
	if svc.Setup != nil {
		if err := svc.Setup(dir); err != nil {
			return fmt.Errorf("set up service %s: %w", svc.Name, err)
		}
	}
	spec := svc.procSpec(addr, dir)
	if s.opt.LogDir != "" {
		if err := os.MkdirAll(s.opt.LogDir, 0o755); err != nil {
			return fmt.Errorf("service %s: log directory: %w", svc.Name, err)
		}
		f, err := os.Create(filepath.Join(s.opt.LogDir, s.opt.Name+"-"+svc.Name+".log"))
		if err != nil {
			return fmt.Errorf("service %s: %w", svc.Name, err)
		}
		s.Lab.OnClose(f.Close)
		spec.Output = f
	} else {
		spec.Output = io.Discard
	}
	start := func() (*Process, error) {
		h := s.Lab.Host(topo.Peer)
		if h == nil {
			return nil, fmt.Errorf("service %s: the peer host is gone", svc.Name)
		}
		p, err := h.Start(spec)
		if err != nil {
			return nil, err
		}
		return p, svc.waitReady(ctx, h, p, addr)
	}
	p, err := start()
	if err != nil {
		return err
	}
	s.Peer = p
	s.Conn.Agents[topo.Peer] = p
	s.Lab.OnReturn(func(r topo.Role) error {
		if r != topo.Peer {
			return nil
		}
		_, err := start()
		return err
	})
	return nil
}

// ReadSysctls reads back, from each host's namespace, the kernel
// parameters every report records and those the cell set: host role → key
// → value, what the sample really ran with.
func (s *session) ReadSysctls() (map[string]map[string]string, error) {
	keys := recordedSysctls()
	for k := range s.Cell.Config.Sysctls {
		keys = append(keys, k)
	}
	for k := range s.Cell.WatcherSysctls {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	out := map[string]map[string]string{}
	for _, role := range []topo.Role{topo.Peer, topo.Router, topo.Watcher} {
		kv := map[string]string{}
		for _, k := range keys {
			v, err := s.Lab.ReadSysctl(role, k)
			if err != nil {
				return nil, fmt.Errorf("read back %s on the %s: %w", k, role, err)
			}
			kv[k] = v
		}
		out[string(role)] = kv
	}
	return out, nil
}

// End ends a session whose watcher or peer is a foreign program, as
// protocol v1 says: SIGTERM, then SIGKILL after ProgramGrace. A program
// that had to be killed, or that printed a line outside the protocol, is
// the error. halfopen's own agents end with the lab. A hold on the flow
// still in place is released.
func (s *session) End() error {
	_, holdErr := s.releaseHold()
	if s.Builtin {
		return holdErr
	}
	procs := []*Process{s.Watcher}
	if prog, ok := s.Cell.Detector.(Program); ok {
		if _, foreign := prog.PeerProgram(s.Cell.Config.Side, ""); foreign {
			procs = append(procs, s.Peer)
		}
	}
	problems := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, proc := range procs {
		if proc == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := proc.ProtocolErr(); err != nil {
				problems[i] = fmt.Errorf("the %s broke protocol v1: %v", proc.Label, err)
			}
			if stopHung(proc, programGrace) && problems[i] == nil {
				problems[i] = fmt.Errorf("the %s (pid %d) was still running %v after SIGTERM and was killed", proc.Label, proc.Pid(), programGrace)
			}
		}()
	}
	wg.Wait()
	for _, err := range problems {
		if err != nil {
			return err
		}
	}
	return holdErr
}

// connCounter is a detector that needs more than one connection (a
// dedicated heart-beat connection); Watch.Conns has that many.
type connCounter interface{ Conns() int }
