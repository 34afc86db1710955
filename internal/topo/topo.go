// Package topo is the fixed topology of every lab: the three hosts' roles,
// their addresses and the names of their links. A lab (harness.Lab) is
// these hosts made real in network namespaces; faults, capture and the
// harness name them from here, and no outside module needs to.
package topo

import (
	"net/netip"
	"strconv"
	"strings"
)

// Role names a host of the lab.
type Role string

// The three hosts of every lab.
const (
	Peer    Role = "peer"
	Router  Role = "router"
	Watcher Role = "watcher"
)

// Addresses of the lab, all from 198.18.0.0/15 (RFC 2544, benchmark testing).
// Every lab reuses them: each lab is its own set of namespaces.
var (
	PeerAddr          = netip.MustParseAddr("198.18.1.2")
	RouterPeerAddr    = netip.MustParseAddr("198.18.1.1")
	RouterWatcherAddr = netip.MustParseAddr("198.18.2.1")
	WatcherAddr       = netip.MustParseAddr("198.18.2.2")
	PeerNet           = netip.MustParsePrefix("198.18.1.0/24")
	WatcherNet        = netip.MustParsePrefix("198.18.2.0/24")
)

// Interface names inside the lab's namespaces.
const (
	HostLink        = "eth0"       // the single link of the peer and of the watcher
	RouterPeerLink  = "to-peer"    // the router's port facing the peer
	RouterWatchLink = "to-watcher" // the router's port facing the watcher
)

// ListenPort is the port the listening end of the watched connection uses.
const ListenPort = 7000

// Where a lab's namespaces are named and mounted: "ho-<pid>p<hex>-<lab>-<role>"
// under /run/netns, <pid> the orchestrator's.
const (
	NamespacePrefix = "ho-"
	NSMountDir      = "/run/netns"
)

// RunPID extracts the orchestrator's pid from a namespace name made by a run.
func RunPID(nsName string) (int, bool) {
	rest, ok := strings.CutPrefix(nsName, NamespacePrefix)
	if !ok {
		return 0, false
	}
	pidStr, _, ok := strings.Cut(rest, "p")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// The paths between watcher and peer (harness.Conn.PathName).
const (
	// PathDirect: the watcher's connection goes to the peer itself.
	PathDirect = "direct"
	// PathToxiproxy: the watcher's connection ends at a Toxiproxy on the
	// router, which holds its own to the peer.
	PathToxiproxy = "toxiproxy"
)
