package harness

import (
	"net/netip"

	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// Conn is one sample's watched connection in a lab: its side, the path it
// takes, and the programs at its ends. A Lab is only the hosts, links and
// addresses; a sample opens its Conn in it (Connect, openSession), and a
// fault's Prepare, Inject and Note are given both.
type Conn struct {
	// Side is the sample's side, set before a fault's Prepare runs (a proxy
	// listens facing whichever end dials).
	Side protocol.Side
	// Via is where the dialing end's connection goes: the listener
	// (direct), or a proxy on the router that a fault's Prepare put on the
	// path.
	Via netip.AddrPort
	// PathName says which path Via is (topo.PathDirect or topo.PathToxiproxy).
	PathName string
	// DataPort is the dialing end's local port of the data connection (the
	// first one), 0 when its program did not say: with the listener's port
	// it singles out the watched flow among the connections between the hosts.
	DataPort uint16
	// Port is the listening end's port (CellConfig.Port, or
	// topo.ListenPort).
	Port uint16
	// Agents are the sample's programs by host: the watcher, the peer, and
	// a program a fault runs on the router (a proxy).
	Agents map[topo.Role]*Process
}

// newConn is a sample's connection before anything is started; port 0
// is topo.ListenPort.
func newConn(side protocol.Side, port uint16) *Conn {
	if port == 0 {
		port = topo.ListenPort
	}
	return &Conn{Side: side, Port: port, Agents: map[topo.Role]*Process{}}
}

// ListenAddr is where the listening end listens: the peer for side
// client, the watcher for side server.
func (c *Conn) ListenAddr() netip.AddrPort {
	if c.Side == protocol.SideServer {
		return netip.AddrPortFrom(topo.WatcherAddr, c.Port)
	}
	return netip.AddrPortFrom(topo.PeerAddr, c.Port)
}
