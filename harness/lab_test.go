package harness_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	_ "github.com/halfopen/halfopen/detectors"
	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/hostsnap"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// TestMain dispatches agent mode first: these tests start agents by
// re-executing this test binary inside lab hosts.
func TestMain(m *testing.M) {
	harness.MaybeRunAgent()
	os.Exit(m.Run())
}

func requireLab(tb testing.TB) *harness.Run {
	tb.Helper()
	if err := harness.Preflight(); err != nil {
		tb.Skip(err)
	}
	run := harness.NewRun()
	tb.Cleanup(func() {
		if err := run.Close(); err != nil {
			tb.Errorf("close run: %v", err)
		}
	})
	return run
}

func TestLabTopology(t *testing.T) {
	run := requireLab(t)
	before, err := hostsnap.Take()
	if err != nil {
		t.Fatal(err)
	}
	lab, err := run.NewLab(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		role    topo.Role
		addrs   []string
		forward string
		routes  []string
	}{
		{topo.Peer, []string{"198.18.1.2/24"}, "0", []string{"198.18.1.0/24 via <nil>", "198.18.2.0/24 via 198.18.1.1"}},
		{topo.Router, []string{"198.18.1.1/24", "198.18.2.1/24"}, "1", []string{"198.18.1.0/24 via <nil>", "198.18.2.0/24 via <nil>"}},
		{topo.Watcher, []string{"198.18.2.2/24"}, "0", []string{"198.18.1.0/24 via 198.18.2.1", "198.18.2.0/24 via <nil>"}},
	} {
		h := lab.Host(tc.role)
		if !strings.HasPrefix(h.Name, "ho-"+run.ID+"-") || !strings.HasSuffix(h.Name, "-"+string(tc.role)) {
			t.Errorf("%s namespace is named %q, want ho-<run>-<lab>-%s", tc.role, h.Name, tc.role)
		}
		addrs, err := h.Link.AddrList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range addrs {
			if !a.IP.IsLoopback() {
				got = append(got, a.IPNet.String())
			}
		}
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(tc.addrs, " ") {
			t.Errorf("%s addresses = %v, want %v", tc.role, got, tc.addrs)
		}
		routes, err := h.Link.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		var rs []string
		for _, r := range routes {
			if r.Dst == nil {
				t.Errorf("%s has a default route via %v: a lab must not reach outside", tc.role, r.Gw)
				continue
			}
			rs = append(rs, r.Dst.String()+" via "+r.Gw.String())
		}
		sort.Strings(rs)
		if strings.Join(rs, "; ") != strings.Join(tc.routes, "; ") {
			t.Errorf("%s routes = %v, want %v", tc.role, rs, tc.routes)
		}
		if v, err := lab.ReadSysctl(tc.role, "net.ipv4.ip_forward"); err != nil || v != tc.forward {
			t.Errorf("%s ip_forward = %q (%v), want %s", tc.role, v, err, tc.forward)
		}
	}
	names := []string{lab.Host(topo.Peer).Name, lab.Host(topo.Router).Name, lab.Host(topo.Watcher).Name}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join("/run/netns", n)); !os.IsNotExist(err) {
			t.Errorf("namespace %s still exists after Close (%v)", n, err)
		}
	}
	after, err := hostsnap.Take()
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Diff(before); len(d) > 0 {
		t.Errorf("the host's namespace changed: %v", d)
	}
}

func TestRebootedHostKeepsAddressAndMAC(t *testing.T) {
	run := requireLab(t)
	lab, err := run.NewLab(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	macOf := func() string {
		l, err := lab.Host(topo.Peer).Link.LinkByName(topo.HostLink)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().HardwareAddr.String()
	}
	mac := macOf()
	if err := lab.DestroyHost(topo.Peer); err != nil {
		t.Fatal(err)
	}
	if err := lab.RebootHost(topo.Peer); err != nil {
		t.Fatal(err)
	}
	if got := macOf(); got != mac {
		t.Errorf("rebooted peer has MAC %s, want %s", got, mac)
	}
}

func TestConnectDisablesGoDefaultKeepalive(t *testing.T) {
	run := requireLab(t)
	for _, side := range []protocol.Side{protocol.SideClient, protocol.SideServer} {
		lab, err := run.NewLab(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := harness.Connect(ctx, lab, "read-eof", side, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		w, p := conn.Agents[topo.Watcher], conn.Agents[topo.Peer]
		// /proc/net/tcp's timer column: 2 means a keepalive timer is armed.
		for _, proc := range []*harness.Process{w, p} {
			b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(proc.Pid()), "net/tcp"))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n")[1:] {
				f := strings.Fields(line)
				if len(f) > 5 && f[3] == "01" && strings.HasPrefix(f[5], "02:") {
					t.Errorf("%s side %s: an established socket has a keepalive timer: %s", proc.Label, side, line)
				}
			}
		}
		lab.Close()
	}
}
