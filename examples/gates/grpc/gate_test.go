package grpcgate

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
)

// The faults every grpc-go cell goes through: four that kill the peer
// silently or loudly, and one disturbance a healthy connection must
// survive.
var (
	blackhole   = gate.Blackhole()
	hostCrash   = gate.HostCrash()
	hostReboot  = gate.HostReboot(time.Second)
	middlebox   = gate.MiddleboxStateLoss(gate.Firewall, gate.TheFlow)
	routerFlaps = gate.RouterRestart(2 * time.Second)
	// longOutage outlasts the client's 10 s PING interval, so a PING is
	// sent while the path is down.
	longOutage = gate.RouterRestart(12 * time.Second)
)

// faultLabel is the label of each fault's entries.
var faultLabel = map[gate.Fault]string{blackhole: "blackhole", hostCrash: "host-crash", hostReboot: "host-reboot", middlebox: "middlebox-state-loss", routerFlaps: "router-restart", longOutage: "router-restart-long"}

// censored is how long a cell whose library sends nothing waits: grpc-go's
// defaults notice a silent peer after hours (the client never, the server
// after 2 h + 20 s), so these cells are censored at 30 s, and say so.
const censored = 30 * time.Second

// tuned is the aggressive setting, on either end: Time 1 s, Timeout 1 s.
// grpc-go raises a client's Time to 10 s; a server's 1 s stands.
var tuned = map[string]string{"time": "1s", "timeout": "1s"}

// recommendedClient is the client setting that passes both phases: Time
// 10 s (grpc-go's floor) and Timeout 4 s, which grpc-go also sets as
// TCP_USER_TIMEOUT. Idle, its PING goes 10 s after the last read and is
// given up 4 s later; with a request in flight the kernel gives up at
// t1 + 4 s (t1 the first retransmission, 0.41 s after the request;
// KERNEL-RULES §2), long before any PING; and a 2 s outage is ridden out
// by both.
var recommendedClient = map[string]string{"time": "10s", "timeout": "4s", "permit": "true"}

// bare serves grpc-go on a listener whose connections have no TCP
// keepalive (the harness's own), instead of net.Listen's 15 s.
var bare = map[string]string{"listen": "bare"}

// tolerant is the server setting that rides out a 2 s outage: a PING's
// Timeout (and TCP_USER_TIMEOUT, which grpc-go sets to it) must outlast
// the outage and the retransmission that follows it (RTO 0.2, 0.6, 1.4,
// 3.0 s after the PING).
var tolerant = map[string]string{"time": "1s", "timeout": "4s"}

// settingsLabel names a config in entry names and labels.
func settingsLabel(cfg map[string]string) string {
	switch {
	case cfg == nil:
		return "defaults"
	case cfg["listen"] == "bare":
		return "bare-listener"
	case cfg["time"] == "10s":
		return "recommended"
	case cfg["timeout"] == "4s":
		return "tolerant"
	}
	return "tuned"
}

// entry is one entry of the grpc gate: the role on its side, with cfg,
// under fault, labelled with side, settings, fault (and phase).
func entry(role gate.Role, side gate.Side, phase gate.Phase, fault gate.Fault, cfg map[string]string, samples int, budget time.Duration, expect ...any) gate.TableEntry {
	settings := settingsLabel(cfg)
	name := fmt.Sprintf("%s %s × %s", role.Name(), settings, fault)
	labels := Label(string(side), settings, faultLabel[fault])
	if phase == gate.PhaseInFlight {
		name += " in flight"
		labels = Label(string(side), settings, faultLabel[fault], "in-flight")
	}
	cell := gate.Cell{Watcher: role, Peer: gate.Self, Fault: fault, Side: side, Samples: samples, Budget: budget, Config: cfg, Phase: phase}
	return gate.Entry(name, cell, append([]any{labels}, expect...)...)
}

// onClient and onServer are entries of either role, idle.
func onClient(fault gate.Fault, cfg map[string]string, samples int, budget time.Duration, expect ...any) gate.TableEntry {
	return entry(roleClient, gate.SideClient, gate.PhaseIdle, fault, cfg, samples, budget, expect...)
}

func onServer(fault gate.Fault, cfg map[string]string, samples int, budget time.Duration, expect ...any) gate.TableEntry {
	return entry(roleServer, gate.SideServer, gate.PhaseIdle, fault, cfg, samples, budget, expect...)
}

// inFlight is a client entry whose fault lands with a request in flight.
func inFlight(fault gate.Fault, cfg map[string]string, samples int, budget time.Duration, expect ...any) gate.TableEntry {
	return entry(roleClient, gate.SideClient, gate.PhaseInFlight, fault, cfg, samples, budget, expect...)
}

// atLeast checks the fastest decision, for a rule with a lower bound.
func atLeast(s float64, why string) func(*gate.Result) {
	return func(r *gate.Result) {
		Expect(r.Fastest()).To(BeNumerically(">=", s), "%s\n%v", why, r)
	}
}

// dropsEverySample: a disturbance that costs every sample the healthy
// connection, the price of a short PING timeout.
func dropsEverySample(r *gate.Result) {
	Expect(r.FalsePositives).To(BeNumerically(">=", len(r.Samples)), "every sample should drop the healthy connection\n%v", r)
}

var _ = gate.DescribeTable("grpc-go v1.85.0", Label("gates", "netns"), NodeTimeout(15*time.Minute),
	// A client with an open, idle stream (grpc-client, side client), with
	// grpc-go's defaults (keepalive off): it never notices a dead server
	// within 30 s, and survives router restarts of 2 s and 12 s.
	onClient(blackhole, nil, 2, censored, gate.NeverDetect()),
	onClient(hostCrash, nil, 2, censored, gate.NeverDetect()),
	onClient(hostReboot, nil, 2, censored, gate.NeverDetect()),
	onClient(middlebox, nil, 2, censored, gate.NeverDetect()),
	onClient(routerFlaps, nil, 2, 5*time.Second, gate.Survive()),
	onClient(longOutage, nil, 2, 3*time.Second, gate.Survive()),

	// With Time=1s, Timeout=1s (raised to 10 s) it notices a dead server
	// in 9-11.5 s, survives a 2 s router restart, but not a 12 s one.
	// grpc-go's 10 s floor: a 1 s keepalive would decide in ~2 s; it gives
	// up on its own PING timer, or TCP_USER_TIMEOUT at the same instant.
	onClient(blackhole, tuned, 3, 0, gate.DetectWithin(12*time.Second), atLeast(8, "grpc-go raises ClientParameters.Time to 10 s"), gate.GiveUpWith("Unavailable: keepalive", "Unavailable: ETIMEDOUT")),
	onClient(hostCrash, tuned, 3, 0, gate.DetectWithin(12*time.Second), atLeast(8, "grpc-go raises ClientParameters.Time to 10 s"), gate.GiveUpWith("Unavailable: keepalive", "Unavailable: ETIMEDOUT")),
	// The rebooted host resets the first PING, 10 s after the last read.
	onClient(hostReboot, tuned, 3, 0, gate.DetectWithin(11*time.Second), gate.GiveUpWith("Unavailable: ECONNRESET")),
	onClient(middlebox, tuned, 3, 0, gate.DetectWithin(12*time.Second), atLeast(8, "grpc-go raises ClientParameters.Time to 10 s"), gate.GiveUpWith("Unavailable: keepalive", "Unavailable: ETIMEDOUT")),
	// The observation spans the first PING after the restart.
	onClient(routerFlaps, tuned, 2, 12*time.Second, gate.Survive()),
	// The price of Timeout 1 s: a PING sent while the path is down (10 s
	// after the last read, inside the 12 s outage) is not answered within
	// 1 s, and the healthy connection is dropped.
	onClient(longOutage, tuned, 2, 3*time.Second, Not(gate.Survive()), dropsEverySample, gate.GiveUpWith("Unavailable: keepalive", "Unavailable: ETIMEDOUT")),

	// A client with a request in flight (a Check its server holds), with
	// Time=10s, Timeout=4s: it notices a dead server in 12-14.5 s idle
	// (grpc-go's PING 10 s after the last read, given up 4 s later) and in
	// ~4.5 s with a request in flight (t1 + 4 s, [4.2, 4.7] s after the
	// fault: the kernel's ETIMEDOUT from TCP_USER_TIMEOUT, not grpc-go's
	// PING), and survives a 2 s router restart; Time=1s, Timeout=1s gives
	// up in flight at t1 + 1 s, [1.2, 1.7] s.
	onClient(blackhole, recommendedClient, 2, 0, gate.DetectWithin(16*time.Second), gate.GiveUpWith("Unavailable: keepalive", "Unavailable: ETIMEDOUT")),
	onClient(middlebox, recommendedClient, 2, 0, gate.DetectWithin(16*time.Second), gate.GiveUpWith("Unavailable: keepalive", "Unavailable: ETIMEDOUT")),
	onClient(routerFlaps, recommendedClient, 2, 16*time.Second, gate.Survive()),
	inFlight(blackhole, recommendedClient, 2, 0, gate.DetectWithin(5500*time.Millisecond), gate.GiveUpWith("Unavailable: ETIMEDOUT")),
	inFlight(middlebox, recommendedClient, 2, 0, gate.DetectWithin(5500*time.Millisecond), gate.GiveUpWith("Unavailable: ETIMEDOUT")),
	inFlight(blackhole, tuned, 2, 0, gate.DetectWithin(2500*time.Millisecond), gate.GiveUpWith("Unavailable: ETIMEDOUT")),

	// The passive server: a server holding an idle client's stream
	// (grpc-server, side server), with grpc-go's defaults (PING after 2
	// h): not grpc-go's PING but Go's TCP keepalive on a connection
	// accepted from net.Listen probes after 15 s idle, and the
	// TCP_USER_TIMEOUT of 20 s that grpc-go sets even with its defaults
	// ends it at the next probe timer, 30 s after the last segment; a
	// rebooted host resets the first probe; it survives a router restart.
	onServer(blackhole, nil, 2, 40*time.Second, gate.DetectWithin(32*time.Second), atLeast(27, "15 s idle + one 15 s probe interval past the 20 s user timeout"), gate.GiveUpWith("Canceled: ETIMEDOUT")),
	onServer(hostCrash, nil, 2, 40*time.Second, gate.DetectWithin(32*time.Second), atLeast(27, "15 s idle + one 15 s probe interval past the 20 s user timeout"), gate.GiveUpWith("Canceled: ETIMEDOUT")),
	onServer(hostReboot, nil, 2, censored, gate.DetectWithin(16*time.Second), gate.GiveUpWith("Canceled: ECONNRESET")),
	onServer(middlebox, nil, 2, 40*time.Second, gate.DetectWithin(32*time.Second), atLeast(27, "15 s idle + one 15 s probe interval past the 20 s user timeout"), gate.GiveUpWith("Canceled: ETIMEDOUT")),
	onServer(routerFlaps, nil, 2, 5*time.Second, gate.Survive()),
	// Without Go's keepalive on the listener, grpc-go alone waits 2 h.
	onServer(blackhole, bare, 2, censored, gate.NeverDetect()),

	// With Time=1s, Timeout=1s it notices a dead client in 1-2.5 s, but
	// drops a healthy one in a 2 s router restart (the reference text's
	// objection to keepalive, measured: the first PING in the outage times
	// out after 1 s, before the router is back). The PING sent while a
	// rebooting client's host is down is either retransmitted to the
	// returned host and reset, or times out first (1 s).
	onServer(blackhole, tuned, 3, 0, gate.DetectWithin(3*time.Second), gate.GiveUpWith("Canceled: keepalive", "Canceled: ETIMEDOUT")),
	onServer(hostCrash, tuned, 3, 0, gate.DetectWithin(3*time.Second), gate.GiveUpWith("Canceled: keepalive", "Canceled: ETIMEDOUT")),
	onServer(hostReboot, tuned, 3, 0, gate.DetectWithin(3*time.Second), gate.GiveUpWith("Canceled: ECONNRESET", "Canceled: keepalive")),
	onServer(middlebox, tuned, 3, 0, gate.DetectWithin(3*time.Second), gate.GiveUpWith("Canceled: keepalive", "Canceled: ETIMEDOUT")),
	onServer(routerFlaps, tuned, 2, 5*time.Second, Not(gate.Survive()), dropsEverySample),

	// With Time=1s, Timeout=4s it notices a dead client in 4-5.5 s and
	// survives a 2 s router restart; the rebooted host resets the first
	// PING after it is back.
	onServer(blackhole, tolerant, 3, 0, gate.DetectWithin(6*time.Second), gate.GiveUpWith("Canceled: keepalive", "Canceled: ETIMEDOUT")),
	onServer(hostCrash, tolerant, 3, 0, gate.DetectWithin(6*time.Second), gate.GiveUpWith("Canceled: keepalive", "Canceled: ETIMEDOUT")),
	onServer(hostReboot, tolerant, 3, 0, gate.DetectWithin(3*time.Second), gate.GiveUpWith("Canceled: ECONNRESET")),
	onServer(middlebox, tolerant, 3, 0, gate.DetectWithin(6*time.Second), gate.GiveUpWith("Canceled: keepalive", "Canceled: ETIMEDOUT")),
	onServer(routerFlaps, tolerant, 3, 6*time.Second, gate.Survive()),
)
