package faults

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// These tests need root: each builds a fresh lab, connects a watcher and
// the built-in echo peer, injects one fault and observes its effect on real
// packets (nftables counters, RSTs, conntrack entries, link state).

// newFaultLab makes a lab torn down when the test ends, even on failure.
func newFaultLab(t *testing.T) (context.Context, *harness.Lab) {
	t.Helper()
	if err := harness.Preflight(); err != nil {
		t.Skip(err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	run := harness.NewRun()
	t.Cleanup(func() {
		if err := run.Close(); err != nil {
			t.Errorf("close run: %v", err)
		}
	})
	lab, err := run.NewLab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return ctx, lab
}

// connectFault prepares the fault (if it must be), then starts the peer and a
// watcher running detector on side, as the runner does, through conn.Via.
func connectFault(t *testing.T, ctx context.Context, lab *harness.Lab, f harness.Fault, detector string, side protocol.Side) *harness.Conn {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := harness.Connect(wctx, lab, detector, side, f)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return conn
}

// waitVerdict waits up to d for the watcher's verdict and returns its reason
// and how long after at it came ("" if none).
func waitVerdict(t *testing.T, conn *harness.Conn, at int64, d time.Duration) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ev, err := conn.Agents[topo.Watcher].WaitEvent(ctx, protocol.EventDead)
	if err != nil {
		return "", 0
	}
	return ev.Reason, time.Duration(ev.TNs - at)
}

func mustFault(t *testing.T, spec string) harness.Fault {
	t.Helper()
	f, _, err := harness.NewFault(spec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func inject(t *testing.T, ctx context.Context, lab *harness.Lab, conn *harness.Conn, f harness.Fault) (harness.Heal, int64) {
	t.Helper()
	heal, at, err := f.Inject(ctx, lab, conn)
	if err != nil {
		t.Fatalf("inject: %v", err)
	}
	return heal, at
}

func packets(t *testing.T, f harness.Fault) uint64 {
	t.Helper()
	n, _, err := f.(Counters).Counters()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const hb = "heartbeat-inband:interval=100ms,misses=3"

// TestOneWay: each direction's drops count packets and starve the
// heart-beat; the other direction still delivers.
func TestOneWay(t *testing.T) {
	for _, dir := range []string{"to-watcher", "to-peer"} {
		t.Run(dir, func(t *testing.T) {
			ctx, lab := newFaultLab(t)
			f := mustFault(t, "one-way:direction="+dir)
			conn := connectFault(t, ctx, lab, f, hb, protocol.SideClient)
			_, at := inject(t, ctx, lab, conn, f)
			reason, after := waitVerdict(t, conn, at, 3*time.Second)
			if reason != "heartbeat" {
				t.Fatalf("the heart-beat decided %q, want heartbeat", reason)
			}
			if n := packets(t, f); n == 0 {
				t.Errorf("no packet dropped in %v", after)
			}
		})
	}
}

// TestRandomLoss: percent=0 drops nothing, percent=100 drops everything,
// percent=50 some but not all (the numgen comparison is numeric).
func TestRandomLoss(t *testing.T) {
	for _, tc := range []struct {
		percent  int
		wantDead bool
	}{{0, false}, {100, true}, {10, false}} {
		t.Run(fmt.Sprint(tc.percent), func(t *testing.T) {
			ctx, lab := newFaultLab(t)
			f := mustFault(t, fmt.Sprintf("random-loss:percent=%d", tc.percent))
			// A tolerant heart-beat (2 s of silence): 10 % loss must not
			// starve it. A ping and its pong both get through with
			// probability 0.81; to go 2 s without one, a segment must fail
			// at its send and at the retransmissions 0.2, 0.6 and 1.4 s
			// later (RFC 6298 doubling): 0.19^4 ≈ 0.13 %. At 50 % loss
			// that is 0.75^4 ≈ 32 %, which made this test flaky.
			conn := connectFault(t, ctx, lab, f, "heartbeat-inband:interval=50ms,misses=40", protocol.SideClient)
			heal, at := inject(t, ctx, lab, conn, f)
			reason, _ := waitVerdict(t, conn, at, 2500*time.Millisecond)
			n := packets(t, f)
			if _, err := heal(ctx); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.percent == 0 && n != 0:
				t.Errorf("percent=0 dropped %d packets", n)
			case tc.percent > 0 && n == 0:
				t.Errorf("percent=%d dropped nothing", tc.percent)
			}
			if (reason != "") != tc.wantDead {
				t.Errorf("percent=%d: watcher decided %q", tc.percent, reason)
			}
		})
	}
}

// TestLocalCablePull: the watcher's eth0 loses carrier but stays
// administratively up; plugging back restores it and the connection lives.
func TestLocalCablePull(t *testing.T) {
	ctx, lab := newFaultLab(t)
	f := mustFault(t, "local-cable-pull:for=1s")
	conn := connectFault(t, ctx, lab, f, "heartbeat-inband:interval=200ms,misses=10", protocol.SideClient)
	heal, _ := inject(t, ctx, lab, conn, f)
	w := lab.Host(topo.Watcher)
	link, err := w.Link.LinkByName(topo.HostLink)
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().OperState == netlink.OperUp || link.Attrs().Flags&1 == 0 {
		t.Errorf("watcher eth0: oper %v flags %v, want administratively up without carrier", link.Attrs().OperState, link.Attrs().Flags)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := heal(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		link, _ = w.Link.LinkByName(topo.HostLink)
		if link.Attrs().OperState == netlink.OperUp || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if link.Attrs().OperState != netlink.OperUp {
		t.Errorf("watcher eth0 %v after the cable is back", link.Attrs().OperState)
	}
	if reason, _ := waitVerdict(t, conn, protocol.Now(), 1500*time.Millisecond); reason != "" {
		t.Errorf("the heart-beat decided %q after the cable came back", reason)
	}
}

// TestRouterRestart: the router forwards nothing (drops counted, or its
// ports down with carrier=true), its conntrack entries go, and a tolerant
// detector survives a short outage.
func TestRouterRestart(t *testing.T) {
	for _, carrier := range []bool{false, true} {
		t.Run(fmt.Sprintf("carrier=%v", carrier), func(t *testing.T) {
			ctx, lab := newFaultLab(t)
			f := mustFault(t, fmt.Sprintf("router-restart:outage=300ms,carrier=%v", carrier))
			conn := connectFault(t, ctx, lab, f, "heartbeat-inband:interval=200ms,misses=10", protocol.SideClient)
			heal, at := inject(t, ctx, lab, conn, f)
			r := lab.Host(topo.Router)
			for _, name := range []string{topo.RouterPeerLink, topo.RouterWatchLink} {
				l, err := r.Link.LinkByName(name)
				if err != nil {
					t.Fatal(err)
				}
				if up := l.Attrs().Flags&1 != 0; up == carrier {
					t.Errorf("router %s up=%v during a restart with carrier=%v", name, up, carrier)
				}
			}
			time.Sleep(300 * time.Millisecond)
			if !carrier {
				dropped, _, err := f.(*RouterRestart).Counters()
				if err != nil || dropped == 0 {
					t.Errorf("the restarting router dropped %d packets (%v) while 200 ms pings ran for 300 ms", dropped, err)
				}
			}
			if _, err := heal(ctx); err != nil {
				t.Fatal(err)
			}
			if reason, _ := waitVerdict(t, conn, at, 3*time.Second); reason != "" {
				t.Errorf("the connection did not survive a 300 ms router restart: %q", reason)
			}
		})
	}
}

// TestHostReboot: the peer returns with the same address, the router's
// isolation goes, and the watcher's next keepalive probe is reset.
func TestHostReboot(t *testing.T) {
	ctx, lab := newFaultLab(t)
	f := mustFault(t, "host-reboot:down=500ms")
	conn := connectFault(t, ctx, lab, f, "keepalive-tuned:idle=1s,intvl=1s,cnt=5", protocol.SideClient)
	_, at := inject(t, ctx, lab, conn, f)
	if lab.Host(topo.Peer) != nil {
		t.Fatal("the peer host still exists after the crash")
	}
	reason, after := waitVerdict(t, conn, at, 5*time.Second)
	if reason != "ECONNRESET" {
		t.Fatalf("watcher decided %q, want ECONNRESET", reason)
	}
	ret, err := f.(*HostReboot).Returned()
	if err != nil || ret == 0 {
		t.Fatalf("the peer never returned: %v", err)
	}
	back := time.Duration(ret - at)
	// The RST answers the first probe after the return: within one probe
	// interval (1 s) of it, plus scheduling.
	if after < back || after > back+1200*time.Millisecond {
		t.Errorf("ECONNRESET %v after the crash, the peer returned after %v: want within one probe interval of the return", after, back)
	}
	if lab.Host(topo.Peer) == nil {
		t.Error("the peer host did not come back")
	}
}

// TestHalfOpen: the crash waits for an idle connection, the peer host is
// gone and the heart-beat notices.
func TestHalfOpen(t *testing.T) {
	ctx, lab := newFaultLab(t)
	f := mustFault(t, "half-open")
	conn := connectFault(t, ctx, lab, f, hb, protocol.SideServer)
	_, at := inject(t, ctx, lab, conn, f)
	if !f.(*HalfOpen).WasIdle {
		t.Error("the connection was never idle")
	}
	if lab.Host(topo.Peer) != nil {
		t.Error("the peer host still exists")
	}
	if reason, _ := waitVerdict(t, conn, at, 2*time.Second); reason != "heartbeat" {
		t.Errorf("watcher decided %q, want heartbeat", reason)
	}
}

// TestMiddleboxStateLoss: the watched flow's conntrack entry goes; then the
// firewall drops (as NEW-without-SYN with tcp_loose=1, as INVALID with
// tcp_loose=0) and the NAT's new mapping is answered with an RST.
func TestMiddleboxStateLoss(t *testing.T) {
	for _, tc := range []struct {
		name, spec, loose string
		side              protocol.Side
	}{
		{"firewall-loose", "middlebox-state-loss", "1", protocol.SideClient},
		{"firewall-strict", "middlebox-state-loss:scope=all", "0", protocol.SideClient},
		{"nat-client", "middlebox-state-loss:mode=nat", "", protocol.SideClient},
		{"nat-server", "middlebox-state-loss:mode=nat", "", protocol.SideServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, lab := newFaultLab(t)
			f := mustFault(t, tc.spec)
			conn := connectFault(t, ctx, lab, f, hb, tc.side)
			if tc.loose != "" {
				if err := lab.SetSysctls(topo.Router, map[string]string{"net.netfilter.nf_conntrack_tcp_loose": tc.loose}); err != nil {
					t.Fatal(err)
				}
			}
			flows, err := conntrackFlows(lab, topo.ListenPort)
			if err != nil || len(flows) == 0 {
				t.Fatalf("no tracked flow before the loss (%v)", err)
			}
			_, at := inject(t, ctx, lab, conn, f)
			reason, _ := waitVerdict(t, conn, at, 2*time.Second)
			newNotSyn, invalid, snat, err := f.(*MiddleboxStateLoss).Drops()
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case strings.HasPrefix(tc.name, "nat"):
				if reason != "ECONNRESET" {
					t.Errorf("watcher decided %q, want ECONNRESET from the NAT's lost mapping", reason)
				}
				if tc.side == protocol.SideClient && snat < 2 {
					t.Errorf("the NAT mapped %d flows, want the original and the one after the loss", snat)
				}
			case tc.loose == "1":
				// A FIN or RST (the watcher's, after its verdict) is never
				// picked up, so it may still count as INVALID.
				if reason != "heartbeat" || newNotSyn == 0 {
					t.Errorf("tcp_loose=1: decided %q, dropped %d NEW-without-SYN (%d INVALID); want heartbeat and >0", reason, newNotSyn, invalid)
				}
			default:
				if reason != "heartbeat" || invalid == 0 || newNotSyn != 0 {
					t.Errorf("tcp_loose=0: decided %q, dropped %d NEW-without-SYN and %d INVALID; want heartbeat, 0, >0", reason, newNotSyn, invalid)
				}
			}
			if tc.loose != "" {
				if flows, _ := conntrackFlows(lab, topo.ListenPort); len(flows) != 0 {
					t.Errorf("the firewall kept %d entries of the flow after the loss", len(flows))
				}
			}
		})
	}
}

// TestMiddleboxResetNeverPrecedesItsFault: a NAT restart (scope=all) in
// front of a watcher that writes every millisecond resets a write within
// about a millisecond of the flush; the fault's instant must come before
// that decision, or the harness calls the sample "decided before the
// fault" (the instant was once taken after the netlink request returned).
func TestMiddleboxResetNeverPrecedesItsFault(t *testing.T) {
	// Before the fix 2 samples in 15 were stamped before their fault
	// (by 116–121 µs): twenty catch it about 19 times in 20.
	for i := range 20 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			ctx, lab := newFaultLab(t)
			f := mustFault(t, "middlebox-state-loss:mode=nat,scope=all")
			conn := connectFault(t, ctx, lab, f, "user-timeout:timeout=2s,every=1ms", protocol.SideServer)
			_, at := inject(t, ctx, lab, conn, f)
			reason, after := waitVerdict(t, conn, at, 2*time.Second)
			// The reset sets the socket's error once: a write every
			// millisecond may take it first (sock_error in
			// sk_stream_error), and the read then returns 0, so EOF is
			// the same reset seen from the other goroutine.
			if reason != "ECONNRESET" && reason != "EOF" {
				t.Fatalf("watcher decided %q, want ECONNRESET (or EOF) from the NAT's lost mapping", reason)
			}
			if after < 0 {
				t.Errorf("the watcher's ECONNRESET is stamped %v before the fault's instant", -after)
			}
		})
	}
}

// TestToxiproxy: the API in the router answers the orchestrator from its
// namespace; reset_peer resets the watcher's connection; a disabled proxy
// closes it; a latency toxic delays the echo.
func TestToxiproxy(t *testing.T) {
	for _, tc := range []struct {
		spec, detector, want string
		side                 protocol.Side
	}{
		{"toxiproxy-reset-peer", "read-eof", "ECONNRESET", protocol.SideClient},
		{"toxiproxy-reset-peer:timeout=300ms", "read-eof", "ECONNRESET", protocol.SideServer},
		{"toxiproxy-down", "read-eof", "EOF", protocol.SideClient},
		{"toxiproxy-limit-data:bytes=10", "read-eof", "EOF", protocol.SideServer},
		{"toxiproxy-timeout:timeout=0s", hb, "heartbeat", protocol.SideClient},
	} {
		t.Run(tc.spec+"/"+string(tc.side), func(t *testing.T) {
			ctx, lab := newFaultLab(t)
			f := mustFault(t, tc.spec)
			conn := connectFault(t, ctx, lab, f, tc.detector, tc.side)
			if conn.PathName != "toxiproxy" {
				t.Fatalf("path %q, want toxiproxy", conn.PathName)
			}
			st := f.(interface {
				state(*harness.Lab) *proxyState
			}).state(lab)
			if err := st.api.call(ctx, "GET", "/proxies/"+toxiproxyName, nil, 200); err != nil {
				t.Fatalf("the API does not answer from the router's namespace: %v", err)
			}
			_, at := inject(t, ctx, lab, conn, f)
			reason, after := waitVerdict(t, conn, at, 3*time.Second)
			if reason != tc.want {
				t.Errorf("watcher decided %q after %v, want %s", reason, after, tc.want)
			}
		})
	}
}

// TestToxiproxyHidesHostCrash: behind the proxy, the watcher's keepalive
// is answered by the proxy's kernel and never sees the peer host die.
func TestToxiproxyHidesHostCrash(t *testing.T) {
	ctx, lab := newFaultLab(t)
	f := mustFault(t, "toxiproxy-host-crash")
	conn := connectFault(t, ctx, lab, f, "keepalive-tuned:idle=1s,intvl=1s,cnt=2", protocol.SideClient)
	_, at := inject(t, ctx, lab, conn, f)
	if lab.Host(topo.Peer) != nil {
		t.Fatal("the peer host still exists")
	}
	// Direct, keepalive 1/1/2 decides within 3 s; through the proxy never.
	if reason, after := waitVerdict(t, conn, at, 4*time.Second); reason != "" {
		t.Errorf("keepalive decided %q after %v behind the proxy", reason, after)
	}
}
