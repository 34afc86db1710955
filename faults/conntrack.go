package faults

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
)

// conntrackHandle opens a NETLINK_NETFILTER handle bound to the namespace
// of a lab host; the host's own handle speaks NETLINK_ROUTE only, and a
// handle without the family would open its socket in the caller's (the
// host machine's) namespace.
func conntrackHandle(lab *harness.Lab, role topo.Role) (*netlink.Handle, error) {
	h := lab.Host(role)
	if h == nil {
		return nil, fmt.Errorf("host %s is gone", role)
	}
	nh, err := netlink.NewHandleAt(h.NS, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("open conntrack netlink in %s: %w", role, err)
	}
	return nh, nil
}

// conntrackFlows lists the router's conntrack entries of TCP flows to the
// listener's port, retrying an interrupted dump.
func conntrackFlows(lab *harness.Lab, port uint16) ([]*netlink.ConntrackFlow, error) {
	h, err := conntrackHandle(lab, topo.Router)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var flows []*netlink.ConntrackFlow
	for try := 0; ; try++ {
		flows, err = h.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 5 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list conntrack entries in the router: %w", err)
	}
	var out []*netlink.ConntrackFlow
	for _, f := range flows {
		if f.Forward.Protocol == unix.IPPROTO_TCP && f.Forward.DstPort == port {
			out = append(out, f)
		}
	}
	return out, nil
}

// forgetFlows deletes the router's conntrack entry of the watched data
// flow (TCP from the dialer's data port to the listener's port), or flushes the whole table when all is set,
// and returns how many entries went (unknown, -1, for a flush). conn is
// the sample's connection, unused (nil allowed) when all is set.
func forgetFlows(lab *harness.Lab, conn *harness.Conn, all bool) (int, error) {
	h, err := conntrackHandle(lab, topo.Router)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	if all {
		if err := h.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
			return 0, fmt.Errorf("flush the router's conntrack table: %w", err)
		}
		return -1, nil
	}
	filter := &netlink.ConntrackFilter{}
	if err := filter.AddProtocol(unix.IPPROTO_TCP); err != nil {
		return 0, fmt.Errorf("conntrack filter: %w", err)
	}
	if err := filter.AddPort(netlink.ConntrackOrigDstPort, conn.Port); err != nil {
		return 0, fmt.Errorf("conntrack filter: %w", err)
	}
	// Only the data connection, as an idle-timeout eviction would forget
	// it: a detector's second connection (a dedicated heart-beat) keeps its
	// state. A foreign program that did not report its local port leaves
	// every connection to the listener in scope.
	if conn.DataPort != 0 {
		if err := filter.AddPort(netlink.ConntrackOrigSrcPort, conn.DataPort); err != nil {
			return 0, fmt.Errorf("conntrack filter: %w", err)
		}
	}
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.FAMILY_V4, filter)
	if err != nil {
		return 0, fmt.Errorf("delete the watched flow's conntrack entry in the router: %w", err)
	}
	return int(n), nil
}
