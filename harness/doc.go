// Package harness is halfopen's lab: namespaced hosts joined by a router,
// the processes that run in them, and the runner that measures cells in
// fresh labs. It speaks to every program, its own agents included, through
// package protocol (protocol v1: its events, its clock protocol.Now, Side).
//
//	[peer host 198.18.1.2] ==veth== [router host] ==veth== [watcher host 198.18.2.2]
//	 echo peer, a foreign        (forwarding, nftables,     the detector: halfopen's
//	 peer, or a real server      conntrack, optional        watcher agent, a foreign
//	 (Service)                   Toxiproxy process)         program or a Go role
//
// Each host is a network namespace named ho-<run>-<lab>-<role>, addressed
// from 198.18.0.0/15 (RFC 2544), with no default route and no link to the
// host's own namespace, built over netlink and nftables in pure Go. Every
// role is a process started inside its host (Go moves goroutines between
// threads, so a socket made by a goroutine would land anywhere).
//
// The pieces, one file each:
//
//   - contract.go: Fault and Detector, and every optional capability, with
//     which one wins when two apply;
//   - registry.go, params.go: the registries and the parameter decoding of
//     NAME[:key=value,...] specs (the grammar itself is package spec);
//   - cell.go, theory.go: a cell (detector × fault × side) as asked for,
//     resolved with what theory predicts of it;
//   - matrix.go: the bounded pool of fresh labs and the run's one store of
//     samples, the report (report.Writer);
//   - session.go, service.go: one watched connection set up in a lab, with
//     halfopen's agents, foreign programs or real servers;
//   - sample.go, observe.go: one detection sample and one disturbance
//     sample, their deciding logic pure functions of events and instants;
//   - agent.go, protocol.go, request.go: halfopen's own agents, built on
//     package protocol, and the commands only they get from the runner;
//   - calibrate.go: the harness's own timing error, under the same load;
//   - lab.go, run.go, process.go, ns.go, sysctl.go: namespaces, links,
//     processes, sysctls and their cleanup;
//   - reaper.go, gc.go: what a killed run leaves is swept within
//     milliseconds by the run's reaper, a process that outlives it (the
//     design is in reaper.go); gc is for a machine that crashed;
//   - rootless.go, preflight.go: the privilege a run has (root, or root of
//     a user namespace of its own that EnterUserNamespace makes for an
//     ordinary user) and what the machine lacks, in one sentence each.
package harness
