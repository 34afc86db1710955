package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/halfopen/halfopen/internal/nftcount"
	"github.com/halfopen/halfopen/internal/nftmatch"
	"github.com/halfopen/halfopen/internal/topo"
)

// wireCounter counts, on the router, every packet that arrives from the peer
// or the watcher and every packet the router itself sends them (a proxy's):
// the traffic on the wire. Its chains sit before every fault's drops
// (priority -350), so a packet a fault drops is still counted as sent.
type wireCounter struct {
	conn  *nftables.Conn
	table *nftables.Table
	pre   *nftables.Chain
	out   *nftables.Chain
}

const overheadTable = "halfopen-overhead"

func newWireCounter(lab *Lab) (*wireCounter, error) {
	h := lab.Host(topo.Router)
	if h == nil {
		return nil, fmt.Errorf("lab %s: router is gone", lab.ID)
	}
	conn, err := h.Nft()
	if err != nil {
		return nil, err
	}
	t := conn.AddTable(&nftables.Table{Name: overheadTable, Family: nftables.TableFamilyIPv4})
	policy := nftables.ChainPolicyAccept
	prio := nftables.ChainPriorityRef(-350)
	w := &wireCounter{conn: conn, table: t}
	w.pre = conn.AddChain(&nftables.Chain{Name: "wire-in", Table: t, Hooknum: nftables.ChainHookPrerouting, Priority: prio, Type: nftables.ChainTypeFilter, Policy: &policy})
	w.out = conn.AddChain(&nftables.Chain{Name: "wire-out", Table: t, Hooknum: nftables.ChainHookOutput, Priority: prio, Type: nftables.ChainTypeFilter, Policy: &policy})
	for _, link := range []string{topo.RouterPeerLink, topo.RouterWatchLink} {
		conn.AddRule(&nftables.Rule{Table: t, Chain: w.pre, UserData: []byte("halfopen:overhead"), Exprs: append(nftmatch.IIF(link), &expr.Counter{})})
		conn.AddRule(&nftables.Rule{Table: t, Chain: w.out, UserData: []byte("halfopen:overhead"), Exprs: append(nftmatch.OIF(link), &expr.Counter{})})
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("lab %s: install wire counters: %w", lab.ID, err)
	}
	return w, nil
}

// read returns the packets and bytes counted so far.
func (w *wireCounter) read() (packets, bytes uint64, err error) {
	return nftcount.Sum(w.conn, w.table, nil, w.pre, w.out)
}

// cpuTicks returns a process's user+system CPU time in clock ticks
// (USER_HZ, 100 per second on Linux), from /proc/PID/stat.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the command: state(0) ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime(11) stime(12).
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat times", pid)
	}
	return u + st, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times.
const clockTicks = 100
