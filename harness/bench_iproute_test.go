package harness_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/internal/hostsnap"
)

// iprouteLab builds, with iproute2 commands run one by one as a shell script
// would, the same three-host lab as harness.Run.NewLab:
//
//	[peer 198.18.1.2] ==eth0/to-peer== [router] ==to-watcher/eth0== [watcher 198.18.2.2]
//	                               (ip_forward=1)
//
// three namespaces, two veth pairs created in the router with their other
// end born in the host, addresses, loopback and links up, one route per
// host, and the same sysctls (no IPv6, explicit forwarding). Its names,
// "ho-<pid>pip-<i>-<role>", carry the benchmark's pid as a run's do, so
// `halfopen gc` removes what a killed benchmark left, and "ip" is not a
// run id's hex, so they never collide with a lab's.
type iprouteLab struct {
	prefix string
}

func (l iprouteLab) ns(role string) string { return l.prefix + "-" + role }

// script returns the ip commands that build the lab, in order.
func (l iprouteLab) script() [][]string {
	p, r, w := l.ns("peer"), l.ns("router"), l.ns("watcher")
	return [][]string{
		{"netns", "add", p},
		{"netns", "add", r},
		{"netns", "add", w},
		{"netns", "exec", p, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv4.ip_forward=0"},
		{"netns", "exec", r, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv4.ip_forward=1"},
		{"netns", "exec", w, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv4.ip_forward=0"},
		{"-n", p, "link", "set", "lo", "up"},
		{"-n", r, "link", "set", "lo", "up"},
		{"-n", w, "link", "set", "lo", "up"},
		{"-n", r, "link", "add", "to-peer", "address", "02:68:6f:00:02:01", "txqueuelen", "1000", "type", "veth", "peer", "name", "eth0", "address", "02:68:6f:00:01:01", "netns", p},
		{"-n", r, "addr", "add", "198.18.1.1/24", "dev", "to-peer"},
		{"-n", r, "link", "set", "to-peer", "up"},
		{"-n", p, "addr", "add", "198.18.1.2/24", "dev", "eth0"},
		{"-n", p, "link", "set", "eth0", "up"},
		{"-n", p, "route", "add", "198.18.2.0/24", "via", "198.18.1.1"},
		{"-n", r, "link", "add", "to-watcher", "address", "02:68:6f:00:02:03", "txqueuelen", "1000", "type", "veth", "peer", "name", "eth0", "address", "02:68:6f:00:03:01", "netns", w},
		{"-n", r, "addr", "add", "198.18.2.1/24", "dev", "to-watcher"},
		{"-n", r, "link", "set", "to-watcher", "up"},
		{"-n", w, "addr", "add", "198.18.2.2/24", "dev", "eth0"},
		{"-n", w, "link", "set", "eth0", "up"},
		{"-n", w, "route", "add", "198.18.1.0/24", "via", "198.18.2.1"},
	}
}

// roles are the lab's hosts, in the order down deletes them.
var roles = []string{"watcher", "peer", "router"}

// up runs the script; the first failing command is the error.
func (l iprouteLab) up(ctx context.Context) error {
	for _, args := range l.script() {
		if err := ip(ctx, args...); err != nil {
			return fmt.Errorf("iproute2 lab %s: %w", l.prefix, err)
		}
	}
	return nil
}

// down deletes the three namespaces, and with them the veth pairs.
func (l iprouteLab) down(ctx context.Context) error {
	for _, role := range roles {
		if err := ip(ctx, "netns", "delete", l.ns(role)); err != nil {
			return fmt.Errorf("iproute2 lab %s: %w", l.prefix, err)
		}
	}
	return nil
}

// sweep removes whatever of the lab still exists, whatever state a failed
// script left it in; it runs as the benchmark's cleanup.
func (l iprouteLab) sweep() {
	for _, role := range roles {
		name := l.ns(role)
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			_ = exec.Command("ip", "netns", "delete", name).Run()
		}
	}
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// BenchmarkLabIproute2VsNetlink builds and tears down the same 3-host lab
// with iproute2 commands (exec'd one by one, as a script does) and with
// halfopen's netlink lab, alternating in one run so that both see the same
// machine, and reports both medians of up+down and their ratio:
//
//	go test -run '^$' -bench Iproute2 -benchtime 20x ./harness/
//
// Each iteration builds one lab of each kind. Nothing touches the host's
// own namespace: every link and address is made inside the lab's
// namespaces, addresses only from 198.18.0.0/15.
func BenchmarkLabIproute2VsNetlink(b *testing.B) {
	run := requireLab(b)
	if _, err := exec.LookPath("ip"); err != nil {
		b.Skip("iproute2's ip is not installed, so there is nothing to compare the lab against")
	}
	if _, err := exec.LookPath("sysctl"); err != nil {
		b.Skip("procps' sysctl is not installed, which the iproute2 script uses to set the lab's sysctls")
	}
	ctx := context.Background()
	before, err := hostsnap.Take()
	if err != nil {
		b.Fatal(err)
	}
	var viaIP, viaNetlink []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l := iprouteLab{prefix: fmt.Sprintf("ho-%dpip-%d", os.Getpid(), i)}
		// Registered before the first namespace exists.
		b.Cleanup(l.sweep)
		start := time.Now()
		if err := l.up(ctx); err != nil {
			b.Fatal(err)
		}
		if err := l.down(ctx); err != nil {
			b.Fatal(err)
		}
		viaIP = append(viaIP, time.Since(start))

		start = time.Now()
		lab, err := run.NewLab(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := lab.Close(); err != nil {
			b.Fatal(err)
		}
		viaNetlink = append(viaNetlink, time.Since(start))
	}
	b.StopTimer()
	after, err := hostsnap.Take()
	if err != nil {
		b.Fatal(err)
	}
	if d := after.Diff(before); len(d) > 0 {
		b.Fatalf("the host's own namespace changed during the benchmark: %s", strings.Join(d, "; "))
	}
	ipMed, nlMed := median(viaIP), median(viaNetlink)
	b.ReportMetric(ms(ipMed), "iproute2-median-ms")
	b.ReportMetric(ms(nlMed), "netlink-median-ms")
	b.ReportMetric(ipMed.Seconds()/nlMed.Seconds(), "ratio")
	b.Logf("3-host lab up+down, median of %d: iproute2 %.1f ms (%d ip commands), halfopen netlink %.1f ms: %.1f× faster",
		b.N, ms(ipMed), len(iprouteLab{}.script())+len(roles), ms(nlMed), ipMed.Seconds()/nlMed.Seconds())
}

// median is the nearest-rank median of ds.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
