package faults

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/nftmatch"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// connect starts a watcher running detector and the built-in peer, and
// returns both and the sample's connection.
func connect(t *testing.T, lab *harness.Lab, detector string, side protocol.Side) (w, p *harness.Process, conn *harness.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := harness.Connect(ctx, lab, detector, side, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn.Agents[topo.Watcher], conn.Agents[topo.Peer], conn
}

// flagCounter counts, on the router, forwarded TCP segments with a flag set.
type flagCounter struct{ rs *ruleSet }

const (
	tcpFIN = 0x01
	tcpRST = 0x04
)

func countFlag(t *testing.T, lab *harness.Lab, name string, flag byte) *flagCounter {
	t.Helper()
	rs, err := newRuleSet(lab, topo.Router, "test-"+name)
	if err != nil {
		t.Fatal(err)
	}
	c := rs.chain("count", nftables.ChainHookForward, nftables.ChainPriorityFilter)
	rs.rule(c, expr.VerdictAccept, nftmatch.TCP(), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{flag}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0}},
	})
	if _, err := rs.commit(); err != nil {
		t.Fatal(err)
	}
	return &flagCounter{rs: rs}
}

func (f *flagCounter) packets(t *testing.T) uint64 {
	t.Helper()
	p, _, err := f.rs.counters()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitDead waits for the watcher's decision.
func waitDead(t *testing.T, w *harness.Process, within time.Duration) protocol.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	ev, err := w.WaitEvent(ctx, protocol.EventDead)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestPeerClosesSendTheirSegment(t *testing.T) {
	for _, tc := range []struct {
		fault      string
		wantReason []string
		seen, not  byte
	}{
		{"graceful-close", []string{"EOF"}, tcpFIN, tcpRST},
		{"abortive-close", []string{"ECONNRESET"}, tcpRST, tcpFIN},
		{"process-kill", []string{"EOF", "ECONNRESET"}, tcpFIN | tcpRST, 0},
	} {
		for _, side := range []protocol.Side{protocol.SideClient, protocol.SideServer} {
			t.Run(tc.fault+"/"+string(side), func(t *testing.T) {
				_, lab := newFaultLab(t)
				w, p, conn := connect(t, lab, "read-eof", side)
				seen := countFlag(t, lab, "seen", tc.seen)
				var not *flagCounter
				if tc.not != 0 {
					not = countFlag(t, lab, "not", tc.not)
				}
				f, _, err := harness.NewFault(tc.fault)
				if err != nil {
					t.Fatal(err)
				}
				_, at, err := f.Inject(context.Background(), lab, conn)
				if err != nil {
					t.Fatal(err)
				}
				ev := waitDead(t, w, 5*time.Second)
				found := false
				for _, r := range tc.wantReason {
					found = found || r == ev.Reason
				}
				if !found {
					t.Errorf("watcher decided %q, want one of %v", ev.Reason, tc.wantReason)
				}
				if ev.TNs < at {
					t.Errorf("decision %d ns before the injection", at-ev.TNs)
				}
				if n := seen.packets(t); n == 0 {
					t.Errorf("the router forwarded no segment with flags %#x", tc.seen)
				}
				if not != nil {
					if n := not.packets(t); n != 0 {
						t.Errorf("the router forwarded %d segments with flags %#x, want none", n, tc.not)
					}
				}
				if tc.fault == "process-kill" {
					select {
					case <-p.Exited():
					case <-time.After(5 * time.Second):
						t.Error("the peer process is still alive after process-kill")
					}
				}
			})
		}
	}
}

func TestBlackholeDropsBothWaysAndHeals(t *testing.T) {
	_, lab := newFaultLab(t)
	w, _, conn := connect(t, lab, "heartbeat-inband:interval=50ms,misses=100", protocol.SideClient)
	f := &Blackhole{}
	heal, _, err := f.Inject(context.Background(), lab, conn)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	dropped, _, err := f.Counters()
	if err != nil {
		t.Fatal(err)
	}
	// Pings every 50 ms from the watcher, and their retransmissions.
	if dropped < 3 {
		t.Errorf("blackhole dropped %d packets in 300 ms of 50 ms pings, want at least 3", dropped)
	}
	if _, err := heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	nft, err := lab.Host(topo.Router).Nft()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := nft.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chains {
		if c.Table.Name == tableName {
			t.Errorf("chain %s is still installed after healing", c.Name)
		}
	}
	// The connection survives: the heart-beat (tolerance 5 s) never decides.
	select {
	case ev := <-w.Events():
		if ev.Event == protocol.EventDead {
			t.Errorf("watcher decided %q across a healed 300 ms blackhole", ev.Reason)
		}
	case <-time.After(500 * time.Millisecond):
	}
}

func TestPeerCablePullSetsTheRouterPortDown(t *testing.T) {
	_, lab := newFaultLab(t)
	_, _, conn := connect(t, lab, "read-eof", protocol.SideClient)
	heal, _, err := (&PeerCablePull{}).Inject(context.Background(), lab, conn)
	if err != nil {
		t.Fatal(err)
	}
	router := lab.Host(topo.Router)
	link, err := router.Link.LinkByName(topo.RouterPeerLink)
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().Flags&1 != 0 {
		t.Error("the router's port to the peer is still up")
	}
	watcherLink, err := lab.Host(topo.Watcher).Link.LinkByName(topo.HostLink)
	if err != nil {
		t.Fatal(err)
	}
	if watcherLink.Attrs().Flags&1 == 0 {
		t.Error("the watcher's own link went down; only the peer's cable is pulled")
	}
	if _, err := heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	link, _ = router.Link.LinkByName(topo.RouterPeerLink)
	if link.Attrs().Flags&1 == 0 {
		t.Error("healing left the router's port down")
	}
}

func TestHostCrashLeavesNothingOfThePeer(t *testing.T) {
	_, lab := newFaultLab(t)
	w, p, conn := connect(t, lab, "heartbeat-inband:interval=50ms,misses=100", protocol.SideServer)
	name := lab.Host(topo.Peer).Name
	f := &HostCrash{}
	if _, _, err := f.Inject(context.Background(), lab, conn); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("the peer process survived the crash")
	}
	if _, err := os.Stat(filepath.Join("/run/netns", name)); !os.IsNotExist(err) {
		t.Errorf("namespace %s still exists after the crash (%v)", name, err)
	}
	time.Sleep(300 * time.Millisecond)
	dropped, _, err := f.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if dropped == 0 {
		t.Error("the router dropped nothing for the dead host although the watcher pings every 50 ms")
	}
	select {
	case ev := <-w.Events():
		if ev.Event == protocol.EventDead {
			t.Errorf("the watcher decided %q within 300 ms of a silent crash: something answered", ev.Reason)
		}
	default:
	}
}
