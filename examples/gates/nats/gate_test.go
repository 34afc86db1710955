package natsgate

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
)

// The faults every nats.go cell goes through: four that kill the server
// silently or loudly, and one disturbance a healthy connection must
// survive.
var (
	blackhole   = gate.Blackhole()
	hostCrash   = gate.HostCrash()
	hostReboot  = gate.HostReboot(time.Second)
	middlebox   = gate.MiddleboxStateLoss(gate.Firewall, gate.TheFlow)
	routerFlaps = gate.RouterRestart(2 * time.Second)
)

// faultLabel is the label of each fault's entries.
var faultLabel = map[gate.Fault]string{blackhole: "blackhole", hostCrash: "host-crash", hostReboot: "host-reboot", middlebox: "middlebox-state-loss", routerFlaps: "router-restart"}

// censored is how long a cell with nats.go's defaults waits: they notice a
// silent server after 4-6 min (PingInterval 2 min, MaxPingsOut 2), so
// these cells are censored at 30 s, and say so.
const censored = 30 * time.Second

var (
	// aggressive is PingInterval 1 s, MaxPingsOut 2: stale after 2-3 s,
	// but a 2 s outage can outlast it.
	aggressive = map[string]string{"ping": "1s", "maxout": "2"}
	// recommended is PingInterval 1 s, MaxPingsOut 4: stale after 4-5 s,
	// and a 2 s outage is ridden out: the PING sent in it is retransmitted
	// by the kernel (RTO 0.2, 0.6, 1.4, 3.0 s after it) and answered
	// before the fourth tick.
	recommended = map[string]string{"ping": "1s", "maxout": "4"}
)

// settingsLabel names a config in entry names and labels.
func settingsLabel(cfg map[string]string) string {
	switch cfg["maxout"] {
	case "2":
		return "aggressive"
	case "4":
		return "recommended"
	}
	return "defaults"
}

// entry is one entry of the nats gate: the role on its side, with cfg,
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

// notGated keeps a disturbance out of the verdict: its samples must be
// measured, and its false positives are reported, not judged.
func notGated(what string) func(*gate.Result) {
	return func(r *gate.Result) {
		for i, smp := range r.Samples {
			Expect(smp.Error).To(BeEmpty(), "sample %d of %v", i, r)
		}
		AddReportEntry(what, fmt.Sprintf("%d false positives in %d samples", r.FalsePositives, len(r.Samples)))
	}
}

// atLeast checks the fastest decision, for a rule with a lower bound.
func atLeast(s float64, why string) func(*gate.Result) {
	return func(r *gate.Result) {
		Expect(r.Fastest()).To(BeNumerically(">=", s), "%s\n%v", why, r)
	}
}

var _ = gate.DescribeTable("nats.go v1.55.0 against nats-server v2.15.2", Label("gates", "netns"), NodeTimeout(15*time.Minute),
	// The client, with nats.go's defaults (PING every 2 min, 2
	// outstanding): it never notices a silent server within 30 s, notices
	// a rebooted one in ~15 s, and survives a router restart.
	entry(roleClient, gate.SideClient, gate.PhaseIdle, blackhole, nil, 2, censored, gate.NeverDetect()),
	entry(roleClient, gate.SideClient, gate.PhaseIdle, hostCrash, nil, 2, censored, gate.NeverDetect()),
	// Not nats.go's PING: Go's TCP keepalive on the connection nats.go
	// dials (net.Dialer without KeepAlive: 15 s idle) sends its first
	// probe 15 s after the last segment, and the rebooted host resets it.
	entry(roleClient, gate.SideClient, gate.PhaseIdle, hostReboot, nil, 2, censored, gate.DetectWithin(16*time.Second), gate.GiveUpWith("ECONNRESET")),
	entry(roleClient, gate.SideClient, gate.PhaseIdle, middlebox, nil, 2, censored, gate.NeverDetect()),
	entry(roleClient, gate.SideClient, gate.PhaseIdle, routerFlaps, nil, 2, 5*time.Second, gate.Survive()),

	// PingInterval=1s, MaxPingsOut=2 notices a dead server in 2-3 s.
	entry(roleClient, gate.SideClient, gate.PhaseIdle, blackhole, aggressive, 3, 0, gate.DetectWithin(3500*time.Millisecond),
		atLeast(1.9, "MaxPingsOut=2 unanswered PINGs before stale"), gate.GiveUpWith("stale connection")),
	entry(roleClient, gate.SideClient, gate.PhaseIdle, hostCrash, aggressive, 3, 0, gate.DetectWithin(3500*time.Millisecond),
		atLeast(1.9, "MaxPingsOut=2 unanswered PINGs before stale"), gate.GiveUpWith("stale connection")),
	// The rebooted host resets the first PING (or its retransmission)
	// after it is back; were it late, the PINGs would go stale.
	entry(roleClient, gate.SideClient, gate.PhaseIdle, hostReboot, aggressive, 3, 0, gate.DetectWithin(2500*time.Millisecond), gate.GiveUpWith("ECONNRESET", "stale connection")),
	entry(roleClient, gate.SideClient, gate.PhaseIdle, middlebox, aggressive, 3, 0, gate.DetectWithin(3500*time.Millisecond),
		atLeast(1.9, "MaxPingsOut=2 unanswered PINGs before stale"), gate.GiveUpWith("stale connection")),
	// Not gated: whether the 2 s outage outlasts the two PINGs depends on
	// where in the PING interval it falls.
	entry(roleClient, gate.SideClient, gate.PhaseIdle, routerFlaps, aggressive, 6, 5*time.Second, notGated("1s × 2 through a 2 s router restart")),

	// PingInterval=1s, MaxPingsOut=4 notices a dead server in 4-5 s and
	// survives a 2 s router restart.
	entry(roleClient, gate.SideClient, gate.PhaseIdle, blackhole, recommended, 3, 0, gate.DetectWithin(5500*time.Millisecond), gate.GiveUpWith("stale connection")),
	entry(roleClient, gate.SideClient, gate.PhaseIdle, hostCrash, recommended, 3, 0, gate.DetectWithin(5500*time.Millisecond), gate.GiveUpWith("stale connection")),
	entry(roleClient, gate.SideClient, gate.PhaseIdle, hostReboot, recommended, 3, 0, gate.DetectWithin(2500*time.Millisecond), gate.GiveUpWith("ECONNRESET", "stale connection")),
	entry(roleClient, gate.SideClient, gate.PhaseIdle, middlebox, recommended, 3, 0, gate.DetectWithin(5500*time.Millisecond), gate.GiveUpWith("stale connection")),
	entry(roleClient, gate.SideClient, gate.PhaseIdle, routerFlaps, recommended, 3, 6*time.Second, gate.Survive()),

	// A request in flight: the fault lands while the client's PUB is
	// unacknowledged. nats.go's PING timer runs on its own clock, whatever
	// the connection's state, so the recommended setting gives up as idle
	// (stale after 4-5 s); Go's TCP keepalive on its dialer, inert while
	// data is in flight, never mattered.
	entry(roleClient, gate.SideClient, gate.PhaseInFlight, blackhole, recommended, 3, 0, gate.DetectWithin(5500*time.Millisecond), gate.GiveUpWith("stale connection")),
	entry(roleClient, gate.SideClient, gate.PhaseInFlight, middlebox, recommended, 3, 0, gate.DetectWithin(5500*time.Millisecond), gate.GiveUpWith("stale connection")),

	// The passive server: nats-server holding an idle nats.go client
	// (side server). With nats-server's defaults (PING every 2 min, no TCP
	// keepalive) it never notices a silent client within 30 s, and
	// survives a router restart.
	entry(roleServer, gate.SideServer, gate.PhaseIdle, blackhole, nil, 2, censored, gate.NeverDetect()),
	entry(roleServer, gate.SideServer, gate.PhaseIdle, hostCrash, nil, 2, censored, gate.NeverDetect()),
	// nats-server PINGs a new client 2 s (+ up to 20 %) after it connected
	// (firstClientPingInterval) before settling to every 2 min; the fault
	// comes within 1.5 s of the connection, so the host rebooted in
	// between resets that first PING.
	entry(roleServer, gate.SideServer, gate.PhaseIdle, hostReboot, nil, 2, censored, gate.DetectWithin(3*time.Second), gate.GiveUpWith("Read Error")),
	entry(roleServer, gate.SideServer, gate.PhaseIdle, middlebox, nil, 2, censored, gate.NeverDetect()),
	entry(roleServer, gate.SideServer, gate.PhaseIdle, routerFlaps, nil, 2, 5*time.Second, gate.Survive()),

	// PingInterval=1s, MaxPingsOut=2 notices a dead client in 2-3 s.
	entry(roleServer, gate.SideServer, gate.PhaseIdle, blackhole, aggressive, 3, 0, gate.DetectWithin(3500*time.Millisecond), gate.GiveUpWith("Stale Connection")),
	entry(roleServer, gate.SideServer, gate.PhaseIdle, hostCrash, aggressive, 3, 0, gate.DetectWithin(3500*time.Millisecond), gate.GiveUpWith("Stale Connection")),
	entry(roleServer, gate.SideServer, gate.PhaseIdle, hostReboot, aggressive, 3, 0, gate.DetectWithin(3500*time.Millisecond), gate.GiveUpWith("Read Error", "Stale Connection")),
	entry(roleServer, gate.SideServer, gate.PhaseIdle, middlebox, aggressive, 3, 0, gate.DetectWithin(3500*time.Millisecond), gate.GiveUpWith("Stale Connection")),
	// Not gated, as for the client.
	entry(roleServer, gate.SideServer, gate.PhaseIdle, routerFlaps, aggressive, 6, 5*time.Second, notGated("nats-server 1s × 2 through a 2 s router restart")),
	// With MaxPingsOut=4: 4-5 s, and it survives a 2 s router restart.
	entry(roleServer, gate.SideServer, gate.PhaseIdle, blackhole, recommended, 3, 0, gate.DetectWithin(5500*time.Millisecond), gate.GiveUpWith("Stale Connection")),
	entry(roleServer, gate.SideServer, gate.PhaseIdle, hostReboot, recommended, 3, 0, gate.DetectWithin(3500*time.Millisecond), gate.GiveUpWith("Read Error", "Stale Connection")),
	entry(roleServer, gate.SideServer, gate.PhaseIdle, routerFlaps, recommended, 3, 7*time.Second, gate.Survive()),
)
