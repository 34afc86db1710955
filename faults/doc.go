// Package faults holds halfopen's fault primitives. Each file is one fault:
// its parameters, what it does on the wire, and its registration. A fault
// acts on a lab built by package harness:
//
//	[peer 198.18.1.2] ==eth0/to-peer== [router] ==to-watcher/eth0== [watcher 198.18.2.2]
//	                                 nftables "halfopen" table,
//	                                 conntrack, optional Toxiproxy
//
// Every nftables rule a fault installs lives in a lab namespace, ends in a
// counter and is tagged "halfopen:<fault>" in its user data.
package faults

import (
	"context"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/internal/topo"
)

// peerCommand tells the built-in peer to do something to its connection and
// returns the instant it reports having done it.
func peerCommand(ctx context.Context, conn *harness.Conn, cmd agentcmd.CommandName) (int64, error) {
	p := conn.Agents[topo.Peer]
	if p == nil || p.Label != "peer" {
		return 0, errNoPeerAgent
	}
	ev, err := p.Request(ctx, agentcmd.Command{Cmd: cmd}, agentcmd.EventClosed)
	if err != nil {
		return 0, err
	}
	return ev.TNs, nil
}
