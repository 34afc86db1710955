package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/internal/topo"
)

// Where the lab's namespaces are named and mounted.
const (
	namespacePrefix  = topo.NamespacePrefix
	nsMountDirectory = topo.NSMountDir
)

// Host is one network namespace of a lab with its long-lived handles.
type Host struct {
	Role topo.Role
	// Name is the namespace's name under /run/netns, "ho-<run>-<lab>-<role>".
	Name string
	// NS is an open handle on the namespace; it keeps the namespace alive.
	NS netns.NsHandle
	// Link is a netlink handle bound to the namespace, usable from any goroutine.
	Link *netlink.Handle

	nftOnce sync.Once
	nft     *nftables.Conn
	nftErr  error

	runID string
	lab   *Lab
	// id identifies the namespace while NS holds it, even once its name
	// is gone; zero until the namespace exists.
	id nsID

	mu    sync.Mutex
	procs []*Process
	gone  bool
	// empty is set once a sweep found no process left in the namespace.
	empty bool
}

// Nft returns the host's long-lived nftables connection, opened on first use.
func (h *Host) Nft() (*nftables.Conn, error) {
	h.nftOnce.Do(func() {
		h.nft, h.nftErr = nftables.New(nftables.WithNetNSFd(int(h.NS)), nftables.AsLasting())
		if h.nftErr != nil {
			h.nftErr = fmt.Errorf("host %s: open nftables: %w", h.Name, h.nftErr)
		}
	})
	return h.nft, h.nftErr
}

// Processes returns the processes started in the host that are still tracked.
func (h *Host) Processes() []*Process {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Process(nil), h.procs...)
}

// Lab is three hosts joined by veth links through a router:
//
//	[peer 198.18.1.2] ==eth0/to-peer== [router] ==to-watcher/eth0== [watcher 198.18.2.2]
//	                                (forwarding, nftables, conntrack)
//
// No namespace has a default route or a link to the host's own namespace.
type Lab struct {
	// ID is "ho-<run>-<lab>", the prefix of the lab's namespace names.
	ID  string
	run *Run

	mu     sync.Mutex
	hosts  map[topo.Role]*Host
	closed atomic.Bool

	// measuring is set by Measuring: the lab's realtime processes run at
	// real-time priority, and those started later too.
	measuring atomic.Bool
	Sysctls   map[string]string

	closers []func() error
	// cg is the lab's cgroup (cgroup.go), nil where the machine gives
	// labs none; its processes are born in it.
	cg *labCgroup
	// returns run when a rebooted host is back (its services start again).
	returns []func(topo.Role) error
	// building is held while the lab's namespaces and links are made.
	building  sync.Mutex
	closeOnce sync.Once
	closeErr  error
}

// OnClose registers a cleanup that Close runs before the hosts go, in
// reverse order of registration.
func (l *Lab) OnClose(fn func() error) {
	l.mu.Lock()
	l.closers = append(l.closers, fn)
	l.mu.Unlock()
}

// Host returns the lab's host with the given role, or nil once it is gone.
func (l *Lab) Host(r topo.Role) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[r]
}

func mac(role topo.Role) net.HardwareAddr {
	// Locally administered, stable per role, so that a rebooted host comes
	// back with the MAC its neighbours have cached.
	b := map[topo.Role]byte{topo.Peer: 1, topo.Router: 2, topo.Watcher: 3}[role]
	return net.HardwareAddr{0x02, 0x68, 0x6f, 0x00, b, 0x01}
}

func routerMAC(towards topo.Role) net.HardwareAddr {
	b := map[topo.Role]byte{topo.Peer: 1, topo.Watcher: 3}[towards]
	return net.HardwareAddr{0x02, 0x68, 0x6f, 0x00, 0x02, b}
}

// baseSysctls are written in every lab namespace as it is born: no IPv6 (its
// neighbour discovery would add packets to every counter) and explicit
// forwarding, since a new namespace may inherit forwarding from the host.
func baseSysctls(role topo.Role) map[string]string {
	fwd := "0"
	if role == topo.Router {
		fwd = "1"
	}
	return map[string]string{
		"net.ipv6.conf.all.disable_ipv6":     "1",
		"net.ipv6.conf.default.disable_ipv6": "1",
		"net.ipv4.ip_forward":                fwd,
	}
}

// createHosts makes the namespaces of roles, sets their base sysctls, brings up
// loopback and opens a netlink handle in each, all while the creating thread
// is inside the new namespace.
func (l *Lab) createHosts(roles ...topo.Role) error {
	names := make([]string, len(roles))
	hosts := make([]*Host, len(roles))
	for i, r := range roles {
		names[i] = l.ID + "-" + string(r)
		hosts[i] = &Host{Role: r, Name: names[i], NS: -1, lab: l}
		if l.run != nil {
			hosts[i].runID = l.run.ID
		}
	}
	// Register first, so that a namespace that exists is always cleaned up.
	l.mu.Lock()
	for _, h := range hosts {
		l.hosts[h.Role] = h
	}
	l.mu.Unlock()
	setup := func(i int) error {
		h := hosts[i]
		for k, v := range baseSysctls(h.Role) {
			p, _ := sysctlPath(k)
			if err := os.WriteFile(p, []byte(v), 0); err != nil {
				return fmt.Errorf("set %s=%s: %w", k, v, err)
			}
		}
		link, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("open netlink: %w", err)
		}
		h.Link = link
		lo, err := link.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("find loopback: %w", err)
		}
		if err := link.LinkSetUp(lo); err != nil {
			return fmt.Errorf("loopback up: %w", err)
		}
		return nil
	}
	// Namespaces are made concurrently, one thread each: most of the cost
	// is the kernel initialising each namespace, which runs in parallel.
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hosts[i].NS, errs[i] = newNamespace(names[i], func() error { return setup(i) })
		}()
	}
	wg.Wait()
	for _, h := range hosts {
		if !h.NS.IsOpen() {
			continue
		}
		id, err := namespaceOfFd(int(h.NS))
		if err != nil {
			errs = append(errs, fmt.Errorf("identify namespace %s: %w", h.Name, err))
			continue
		}
		h.id = id
		if l.run != nil {
			errs = append(errs, l.run.watchNamespace(id, int(h.NS)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab %s: %w", l.ID, err)
	}
	return nil
}

// linkHost connects the peer or the watcher to the router with a veth pair
// created in the router and born with its other end in the host, then
// addresses both ends and adds the host's single route.
func (l *Lab) linkHost(role topo.Role) error {
	router, host := l.Host(topo.Router), l.Host(role)
	routerLink, hostAddr, routerAddr, remote := topo.RouterPeerLink, topo.PeerAddr, topo.RouterPeerAddr, topo.WatcherNet
	if role == topo.Watcher {
		routerLink, hostAddr, routerAddr, remote = topo.RouterWatchLink, topo.WatcherAddr, topo.RouterWatcherAddr, topo.PeerNet
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: routerLink, HardwareAddr: routerMAC(role), TxQLen: 1000},
		PeerName:         topo.HostLink,
		PeerHardwareAddr: mac(role),
		PeerNamespace:    netlink.NsFd(int(host.NS)),
	}
	if err := router.Link.LinkAdd(veth); err != nil {
		return fmt.Errorf("lab %s: add veth %s: %w", l.ID, routerLink, err)
	}
	if err := configureLink(router.Link, routerLink, routerAddr); err != nil {
		return fmt.Errorf("lab %s: router: %w", l.ID, err)
	}
	if err := configureLink(host.Link, topo.HostLink, hostAddr); err != nil {
		return fmt.Errorf("lab %s: %s: %w", l.ID, role, err)
	}
	hl, err := host.Link.LinkByName(topo.HostLink)
	if err != nil {
		return fmt.Errorf("lab %s: %s: find %s: %w", l.ID, role, topo.HostLink, err)
	}
	route := &netlink.Route{
		LinkIndex: hl.Attrs().Index,
		Dst:       prefixIPNet(remote),
		Gw:        net.IP(routerAddr.AsSlice()),
	}
	if err := host.Link.RouteAdd(route); err != nil {
		return fmt.Errorf("lab %s: %s: add route to %s: %w", l.ID, role, remote, err)
	}
	return nil
}

func configureLink(h *netlink.Handle, name string, addr netip.Addr) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	ipnet := &net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(24, 32)}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipnet}); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr, name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s up: %w", name, err)
	}
	return nil
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), 32)}
}

// SetLinkUp sets an interface of a host administratively up or down.
func (l *Lab) SetLinkUp(role topo.Role, name string, up bool) error {
	h := l.Host(role)
	if h == nil {
		return fmt.Errorf("lab %s: host %s is gone", l.ID, role)
	}
	link, err := h.Link.LinkByName(name)
	if err != nil {
		return fmt.Errorf("lab %s: %s: find %s: %w", l.ID, role, name, err)
	}
	if up {
		err = h.Link.LinkSetUp(link)
	} else {
		err = h.Link.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("lab %s: %s: set %s up=%v: %w", l.ID, role, name, up, err)
	}
	return nil
}

// SetSysctls writes kernel parameters in one host of the lab.
func (l *Lab) SetSysctls(role topo.Role, kv map[string]string) error {
	h := l.Host(role)
	if h == nil {
		return fmt.Errorf("lab %s: host %s is gone", l.ID, role)
	}
	if err := writeSysctls(h.NS, kv); err != nil {
		return fmt.Errorf("lab %s: %s: %w", l.ID, role, err)
	}
	return nil
}

// ReadSysctl reads one kernel parameter in one host of the lab.
func (l *Lab) ReadSysctl(role topo.Role, key string) (string, error) {
	h := l.Host(role)
	if h == nil {
		return "", fmt.Errorf("lab %s: host %s is gone", l.ID, role)
	}
	return readSysctl(h.NS, key)
}

// DestroyHost kills every process of a host, removes its link from the router
// and deletes its namespace: the host is gone. The router keeps no route to it.
func (l *Lab) DestroyHost(role topo.Role) error {
	l.mu.Lock()
	h := l.hosts[role]
	delete(l.hosts, role)
	router := l.hosts[topo.Router]
	l.mu.Unlock()
	if h == nil {
		return nil
	}
	var errs []error
	errs = append(errs, killAll(h))
	if router != nil && role != topo.Router {
		name := topo.RouterPeerLink
		if role == topo.Watcher {
			name = topo.RouterWatchLink
		}
		// Deleting the router's end removes the pair synchronously, so a host
		// made again with the same names does not race the kernel's cleanup.
		if link, err := router.Link.LinkByName(name); err == nil {
			if err := router.Link.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("delete %s: %w", name, err))
			}
		}
	}
	errs = append(errs, h.release())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab %s: destroy %s: %w", l.ID, role, err)
	}
	return nil
}

// RebootHost makes a destroyed host again, with the same name, addresses and
// MAC, and no memory of any connection.
func (l *Lab) RebootHost(role topo.Role) error {
	l.building.Lock()
	defer l.building.Unlock()
	if l.closed.Load() {
		return fmt.Errorf("lab %s is closed", l.ID)
	}
	if l.Host(role) != nil {
		return fmt.Errorf("lab %s: host %s still exists", l.ID, role)
	}
	if err := l.createHosts(role); err != nil {
		return err
	}
	return l.linkHost(role)
}

// Measuring says that the lab's sample is measuring from now on: its
// processes started as Realtime (agents, detector programs) move to
// real-time priority 1 (realtimePolicy), and those started later (a
// rebooted host's) once they have started (Process.promote). Before, while
// processes start and connect, they run at normal priority, behind the
// labs that measure.
func (l *Lab) Measuring() {
	if l.measuring.Swap(true) {
		return
	}
	l.mu.Lock()
	hosts := make([]*Host, 0, len(l.hosts))
	for _, h := range l.hosts {
		hosts = append(hosts, h)
	}
	l.mu.Unlock()
	for _, h := range hosts {
		h.mu.Lock()
		procs := append([]*Process(nil), h.procs...)
		h.mu.Unlock()
		for _, p := range procs {
			p.promote()
		}
	}
}

// Booted runs what a rebooted host starts at boot (OnReturn), once the
// fault that rebooted it has let it answer again: a real kernel answers
// (with RST) before its services are up.
func (l *Lab) Booted(role topo.Role) error {
	l.mu.Lock()
	returns := append([]func(topo.Role) error(nil), l.returns...)
	l.mu.Unlock()
	for _, fn := range returns {
		if err := fn(role); err != nil {
			return fmt.Errorf("lab %s: %s is back, but: %w", l.ID, role, err)
		}
	}
	return nil
}

// OnReturn registers fn to run when a rebooted host has booted (Booted),
// with its role: what the host runs at boot starts again.
func (l *Lab) OnReturn(fn func(topo.Role) error) {
	l.mu.Lock()
	l.returns = append(l.returns, fn)
	l.mu.Unlock()
}

// sweepHosts SIGKILLs every process living in the hosts' namespaces that
// killAll did not know: whatever a started process forked, in a session of
// its own or not, reparented or not, ignoring SIGTERM or not. It looks by
// namespace (/proc/PID/ns/net), not by name, so it finds them even when the
// namespace's name is already gone, and repeats until a scan finds none.
func sweepHosts(hosts ...*Host) error {
	set := map[nsID]bool{}
	for _, h := range hosts {
		if h.id != (nsID{}) {
			set[h.id] = true
		}
	}
	if _, err := killNamespaces(set, 5*time.Second); err != nil {
		return err
	}
	for _, h := range hosts {
		h.mu.Lock()
		h.empty = true
		h.mu.Unlock()
	}
	return nil
}

// killAll SIGKILLs every process started in the hosts, then every other
// process living in their namespaces (sweepHosts, one scan of /proc for all
// of them), and waits for the started ones to be reaped. The sweep comes
// before the wait: an escaped descendant may hold a started process's
// output open.
func killAll(hosts ...*Host) error {
	var procs []*Process
	for _, h := range hosts {
		h.mu.Lock()
		procs = append(procs, h.procs...)
		h.procs = nil
		h.mu.Unlock()
	}
	for _, p := range procs {
		p.signalKill()
	}
	errs := []error{sweepHosts(hosts...)}
	for _, p := range procs {
		errs = append(errs, p.Kill())
	}
	return errors.Join(errs...)
}

// release closes the host's handles and deletes its namespace name. The
// namespace disappears once no process and no handle refers to it.
func (h *Host) release() error {
	h.mu.Lock()
	if h.gone {
		h.mu.Unlock()
		return nil
	}
	h.gone = true
	empty := h.empty
	h.mu.Unlock()
	if empty && h.id != (nsID{}) && h.lab != nil && h.lab.run != nil {
		// Nothing lives in the namespace any more. A namespace that could
		// not be emptied stays the reaper's.
		h.lab.run.forgetNamespace(h.id)
	}
	var errs []error
	if h.nft != nil {
		errs = append(errs, h.nft.CloseLasting())
	}
	if h.Link != nil {
		h.Link.Close()
	}
	if h.NS >= 0 {
		errs = append(errs, h.NS.Close())
	}
	if err := deleteNamespace(h.Name); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Close tears the lab down: processes, handles, namespaces, in that order. It
// is idempotent and safe to call from a signal handler's goroutine.
//
// Every caller returns only once the teardown is complete: a second Close
// (the run's, at exit) waits for the first (a signal's).
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.teardown() })
	return l.closeErr
}

func (l *Lab) teardown() error {
	l.closed.Store(true)
	l.building.Lock()
	defer l.building.Unlock()
	var errs []error
	l.mu.Lock()
	closers := l.closers
	l.closers = nil
	l.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	l.mu.Lock()
	hosts := make([]*Host, 0, len(l.hosts))
	for _, r := range []topo.Role{topo.Watcher, topo.Peer, topo.Router} {
		if h := l.hosts[r]; h != nil {
			hosts = append(hosts, h)
		}
	}
	l.hosts = map[topo.Role]*Host{}
	l.mu.Unlock()
	// The cgroup goes first: frozen, nothing in it forks while it is
	// killed. The namespaces' sweep then finds what is not in it.
	errs = append(errs, l.cg.kill(5*time.Second))
	errs = append(errs, killAll(hosts...))
	for _, h := range hosts {
		errs = append(errs, h.release())
	}
	errs = append(errs, l.cg.remove())
	if l.run != nil {
		l.run.forget(l)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab %s: close: %w", l.ID, err)
	}
	return nil
}

// newLab builds a lab: three namespaces, two veth links, addresses, routes.
func newLab(ctx context.Context, run *Run, id string) (*Lab, error) {
	l := &Lab{ID: id, run: run, hosts: map[topo.Role]*Host{}}
	if err := run.remember(l); err != nil {
		return nil, err
	}
	fail := func(err error) (*Lab, error) {
		l.building.Unlock()
		return nil, errors.Join(err, l.Close())
	}
	// Close waits for the build to end, so that a lab torn down by a
	// signal while its namespaces are being made leaves none behind.
	l.building.Lock()
	if l.closed.Load() {
		// Closed between registration and now: Close found nothing to
		// tear down, so nothing may be built.
		l.building.Unlock()
		return nil, fmt.Errorf("lab %s: closed before it was built", l.ID)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	l.attachCgroup()
	if err := l.createHosts(topo.Peer, topo.Router, topo.Watcher); err != nil {
		return fail(err)
	}
	for _, r := range []topo.Role{topo.Peer, topo.Watcher} {
		if err := l.linkHost(r); err != nil {
			return fail(err)
		}
	}
	l.building.Unlock()
	if l.closed.Load() {
		// Close is waiting for the build and tears it down once it ends.
		return nil, fmt.Errorf("lab %s: closed while it was being built", l.ID)
	}
	return l, nil
}

// attachCgroup makes the lab's cgroup before any of its processes exists.
// A machine that gives labs none is said once on standard error, and the
// lab goes on without one: its namespaces still reap it.
func (l *Lab) attachCgroup() {
	cg, err := newLabCgroup(l.ID)
	if err != nil {
		if detectCgroups().used() {
			reportCgroupFailure(err)
		} else {
			reportNoCgroup()
		}
		return
	}
	l.cg = cg
}

// deleteNamespace unmounts and removes a namespace's name under /run/netns.
// A name whose bind mount never happened (a creation cut short) is only a
// file, and is removed all the same.
func deleteNamespace(name string) error {
	path := nsMountDirectory + "/" + name
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unmount namespace %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove namespace %s: %w", name, err)
	}
	return nil
}
