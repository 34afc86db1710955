// Package hostsnap reads what a run must never change in the host's own
// network namespace, and what this process's runs left behind: the
// suites and the command's tests check both around every run.
package hostsnap

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/internal/topo"
)

// Snapshot is what a run must never change in the host's own network
// namespace: links, addresses, routes, forwarding and TCP sysctls, and the
// nftables ruleset (tables, chains and rules, counters left out).
type Snapshot struct {
	Items map[string]string
}

// Take reads the host's namespace (the one this process runs in).
func Take() (*Snapshot, error) {
	s := &Snapshot{Items: map[string]string{}}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("host snapshot: list links: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		s.Items["link "+a.Name] = fmt.Sprintf("type=%s up=%v mtu=%d mac=%s master=%d", l.Type(), a.Flags&1 != 0, a.MTU, a.HardwareAddr, a.MasterIndex)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("host snapshot: list addresses: %w", err)
	}
	for _, a := range addrs {
		s.Items["addr "+a.IPNet.String()] = fmt.Sprintf("link=%d", a.LinkIndex)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("host snapshot: list routes: %w", err)
	}
	for _, r := range routes {
		s.Items[fmt.Sprintf("route table=%d dst=%v src=%v gw=%v link=%d", r.Table, r.Dst, r.Src, r.Gw, r.LinkIndex)] = fmt.Sprintf("proto=%d scope=%d type=%d", r.Protocol, r.Scope, r.Type)
	}
	sysctls, _ := filepath.Glob("/proc/sys/net/ipv4/tcp_*")
	sysctls = append(sysctls, "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf/all/forwarding")
	for _, p := range sysctls {
		b, err := os.ReadFile(p)
		if err == nil {
			s.Items["sysctl "+strings.TrimPrefix(p, "/proc/sys/")] = strings.TrimSpace(string(b))
		}
	}
	if err := s.addRuleset(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Snapshot) addRuleset() error {
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("host snapshot: nftables: %w", err)
	}
	tables, err := conn.ListTables()
	if err != nil {
		return fmt.Errorf("host snapshot: list nftables tables: %w", err)
	}
	for _, t := range tables {
		s.Items[fmt.Sprintf("nft table %d/%s", t.Family, t.Name)] = "present"
	}
	chains, err := conn.ListChains()
	if err != nil {
		return fmt.Errorf("host snapshot: list nftables chains: %w", err)
	}
	for _, c := range chains {
		rules, err := conn.GetRules(c.Table, c)
		if err != nil {
			return fmt.Errorf("host snapshot: list rules of %s: %w", c.Name, err)
		}
		handles := make([]string, 0, len(rules))
		for _, r := range rules {
			handles = append(handles, strconv.FormatUint(r.Handle, 10)+":"+strconv.Itoa(len(r.Exprs)))
		}
		s.Items[fmt.Sprintf("nft chain %d/%s/%s", c.Table.Family, c.Table.Name, c.Name)] = strings.Join(handles, ",")
	}
	return nil
}

// Diff lists, one line each, what differs between an earlier snapshot and this one.
func (s *Snapshot) Diff(before *Snapshot) []string {
	var out []string
	for k, v := range before.Items {
		now, ok := s.Items[k]
		switch {
		case !ok:
			out = append(out, "gone: "+k+" ("+v+")")
		case now != v:
			out = append(out, fmt.Sprintf("changed: %s: %s -> %s", k, v, now))
		}
	}
	for k, v := range s.Items {
		if _, ok := before.Items[k]; !ok {
			out = append(out, "new: "+k+" ("+v+")")
		}
	}
	sort.Strings(out)
	return out
}

// OwnLeftovers lists what this process's runs left: lab namespaces named
// with its pid, and child processes still alive. A clean run leaves none.
func OwnLeftovers() []string {
	var out []string
	entries, _ := os.ReadDir(topo.NSMountDir)
	for _, e := range entries {
		if pid, ok := topo.RunPID(e.Name()); ok && pid == os.Getpid() {
			out = append(out, "namespace "+e.Name())
		}
	}
	procs, _ := os.ReadDir("/proc")
	me := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) start after ')'.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) > 1 && f[1] == me && f[0] != "Z" {
			out = append(out, "process "+p.Name())
		}
	}
	return out
}
