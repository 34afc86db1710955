package grpcgate

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/tcprules"
)

// The faults every grpc-go cell goes through: four that kill the peer
// silently or loudly, and one disturbance a healthy connection must
// survive.
const (
	blackhole   = "blackhole"
	hostCrash   = "host-crash"
	hostReboot  = "host-reboot:down=1s"
	middlebox   = "middlebox-state-loss"
	routerFlaps = "router-restart:outage=2s"
	// longOutage outlasts the client's 10 s PING interval, so a PING is
	// sent while the path is down.
	longOutage = "router-restart:outage=12s"
)

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

var _ = Describe("grpc-go v1.85.0", Label("gates", "netns"), func() {
	Describe("a client with an open, idle stream (grpc-client, side client)", func() {
		cell := func(fault string, cfg map[string]string, samples int, budget time.Duration) gate.Cell {
			return gate.Cell{Watcher: roleClient, Peer: "self", Fault: fault, Side: protocol.SideClient, Samples: samples, Budget: budget, Config: cfg}
		}

		It("with grpc-go's defaults (keepalive off) never notices a dead server within 30 s, and survives router restarts of 2 s and 12 s", func(ctx SpecContext) {
			r := gate.MeasureAll(ctx,
				cell(blackhole, nil, 2, censored),
				cell(hostCrash, nil, 2, censored),
				cell(hostReboot, nil, 2, censored),
				cell(middlebox, nil, 2, censored),
				cell(routerFlaps, nil, 2, 5*time.Second),
				cell(longOutage, nil, 2, 3*time.Second),
			)
			for _, res := range r[:4] {
				Expect(res).To(gate.NeverDetect())
			}
			Expect(r[4]).To(gate.Survive())
			Expect(r[5]).To(gate.Survive())
		})

		It("with Time=1s, Timeout=1s (raised to 10 s) notices a dead server in 9-11.5 s, survives a 2 s router restart, but not a 12 s one", func(ctx SpecContext) {
			r := gate.MeasureAll(ctx,
				cell(blackhole, tuned, 3, 0),
				cell(hostCrash, tuned, 3, 0),
				cell(hostReboot, tuned, 3, 0),
				cell(middlebox, tuned, 3, 0),
				// The observation spans the first PING after the restart.
				cell(routerFlaps, tuned, 2, 12*time.Second),
				cell(longOutage, tuned, 2, 3*time.Second),
			)
			for _, res := range []*gate.Result{r[0], r[1], r[3]} {
				Expect(res).To(gate.DetectWithin(12 * time.Second))
				// grpc-go's 10 s floor: a 1 s keepalive would decide in ~2 s.
				Expect(res.Fastest()).To(BeNumerically(">=", 8), "grpc-go raises ClientParameters.Time to 10 s\n%v", res)
				// Its own PING timer, or TCP_USER_TIMEOUT at the same instant.
				Expect(res).To(gate.GiveUpWith("Unavailable: keepalive", "Unavailable: ETIMEDOUT"))
			}
			// The rebooted host resets the first PING, 10 s after the last read.
			Expect(r[2]).To(gate.DetectWithin(11 * time.Second))
			Expect(r[2]).To(gate.GiveUpWith("Unavailable: ECONNRESET"))
			Expect(r[4]).To(gate.Survive())
			// The price of Timeout 1 s: a PING sent while the path is down
			// (10 s after the last read, inside the 12 s outage) is not
			// answered within 1 s, and the healthy connection is dropped.
			Expect(r[5]).NotTo(gate.Survive())
			Expect(r[5].Record.FalsePositives).To(BeNumerically(">=", len(r[5].Record.Samples)), "every sample should drop the healthy connection\n%v", r[5])
			Expect(r[5]).To(gate.GiveUpWith("Unavailable: keepalive", "Unavailable: ETIMEDOUT"))
		})
	})

	Describe("a client with a request in flight (grpc-client, side client, a Check its server holds)", func() {
		cell := func(fault string, cfg map[string]string, phase tcprules.Phase, samples int, budget time.Duration) gate.Cell {
			return gate.Cell{Watcher: roleClient, Peer: "self", Fault: fault, Side: protocol.SideClient, Samples: samples, Budget: budget, Config: cfg, Phase: phase}
		}
		idle, inFlight := tcprules.PhaseIdle, tcprules.PhaseInFlight

		It("with Time=10s, Timeout=4s notices a dead server in 12-14.5 s idle and in ~4.5 s with a request in flight (TCP_USER_TIMEOUT), and survives a 2 s router restart; Time=1s, Timeout=1s in ~1.5 s in flight", func(ctx SpecContext) {
			r := gate.MeasureAll(ctx,
				cell(blackhole, recommendedClient, idle, 2, 0),
				cell(middlebox, recommendedClient, idle, 2, 0),
				cell(routerFlaps, recommendedClient, idle, 2, 16*time.Second),
				cell(blackhole, recommendedClient, inFlight, 2, 0),
				cell(middlebox, recommendedClient, inFlight, 2, 0),
				cell(blackhole, tuned, inFlight, 2, 0),
			)
			// Idle: grpc-go's PING 10 s after the last read, given up 4 s
			// later: [12, 14.5] s after the fault (keepaliveRange).
			for _, res := range r[:2] {
				Expect(res).To(gate.DetectWithin(16 * time.Second))
				Expect(res).To(gate.GiveUpWith("Unavailable: keepalive", "Unavailable: ETIMEDOUT"))
			}
			Expect(r[2]).To(gate.Survive())
			// In flight: t1 + 4 s, [4.2, 4.7] s after the fault, within
			// 5.5 s; the kernel's ETIMEDOUT, not grpc-go's PING.
			for _, res := range r[3:5] {
				Expect(res).To(gate.DetectWithin(5500 * time.Millisecond))
				Expect(res).To(gate.GiveUpWith("Unavailable: ETIMEDOUT"))
			}
			// Timeout 1 s: t1 + 1 s, [1.2, 1.7] s, within 2.5 s.
			Expect(r[5]).To(gate.DetectWithin(2500 * time.Millisecond))
			Expect(r[5]).To(gate.GiveUpWith("Unavailable: ETIMEDOUT"))
		})
	})

	Describe("the passive server: a server holding an idle client's stream (grpc-server, side server)", func() {
		cell := func(fault string, cfg map[string]string, samples int, budget time.Duration) gate.Cell {
			return gate.Cell{Watcher: roleServer, Peer: "self", Fault: fault, Side: protocol.SideServer, Samples: samples, Budget: budget, Config: cfg}
		}

		It("with grpc-go's defaults (PING after 2 h) notices a silent client in ~30 s only through Go's TCP keepalive, a rebooted one in ~15 s, and survives a router restart", func(ctx SpecContext) {
			r := gate.MeasureAll(ctx,
				cell(blackhole, nil, 2, 40*time.Second),
				cell(hostCrash, nil, 2, 40*time.Second),
				cell(hostReboot, nil, 2, censored),
				cell(middlebox, nil, 2, 40*time.Second),
				cell(routerFlaps, nil, 2, 5*time.Second),
				cell(blackhole, bare, 2, censored),
			)
			// Not grpc-go's PING (2 h away): Go's TCP keepalive on a
			// connection accepted from net.Listen probes after 15 s idle,
			// and the TCP_USER_TIMEOUT of 20 s that grpc-go sets even with
			// its defaults ends it at the next probe timer, 30 s after the
			// last segment.
			for _, res := range []*gate.Result{r[0], r[1], r[3]} {
				Expect(res).To(gate.DetectWithin(32 * time.Second))
				Expect(res.Fastest()).To(BeNumerically(">=", 27), "15 s idle + one 15 s probe interval past the 20 s user timeout\n%v", res)
				Expect(res).To(gate.GiveUpWith("Canceled: ETIMEDOUT"))
			}
			// The rebooted host resets the first keepalive probe.
			Expect(r[2]).To(gate.DetectWithin(16 * time.Second))
			Expect(r[2]).To(gate.GiveUpWith("Canceled: ECONNRESET"))
			Expect(r[4]).To(gate.Survive())
			// Without Go's keepalive on the listener, grpc-go alone waits 2 h.
			Expect(r[5]).To(gate.NeverDetect())
		})

		It("with Time=1s, Timeout=1s notices a dead client in 1-2.5 s, but drops a healthy one in a 2 s router restart", func(ctx SpecContext) {
			r := gate.MeasureAll(ctx,
				cell(blackhole, tuned, 3, 0),
				cell(hostCrash, tuned, 3, 0),
				cell(hostReboot, tuned, 3, 0),
				cell(middlebox, tuned, 3, 0),
				cell(routerFlaps, tuned, 2, 5*time.Second),
			)
			for _, res := range []*gate.Result{r[0], r[1], r[3]} {
				Expect(res).To(gate.DetectWithin(3 * time.Second))
				Expect(res).To(gate.GiveUpWith("Canceled: keepalive", "Canceled: ETIMEDOUT"))
			}
			// The PING sent while the client's host is down is either
			// retransmitted to the returned host and reset, or times out
			// first (1 s): both are grpc-go noticing the reboot.
			Expect(r[2]).To(gate.DetectWithin(3 * time.Second))
			Expect(r[2]).To(gate.GiveUpWith("Canceled: ECONNRESET", "Canceled: keepalive"))
			// The reference text's objection to keepalive, measured: the
			// first PING in the outage times out after 1 s, before the
			// router is back.
			Expect(r[4]).NotTo(gate.Survive())
			Expect(r[4].Record.FalsePositives).To(BeNumerically(">=", len(r[4].Record.Samples)), "every sample should drop the healthy connection\n%v", r[4])
		})

		It("with Time=1s, Timeout=4s notices a dead client in 4-5.5 s and survives a 2 s router restart", func(ctx SpecContext) {
			r := gate.MeasureAll(ctx,
				cell(blackhole, tolerant, 3, 0),
				cell(hostCrash, tolerant, 3, 0),
				cell(hostReboot, tolerant, 3, 0),
				cell(middlebox, tolerant, 3, 0),
				cell(routerFlaps, tolerant, 3, 6*time.Second),
			)
			for _, res := range []*gate.Result{r[0], r[1], r[3]} {
				Expect(res).To(gate.DetectWithin(6 * time.Second))
				Expect(res).To(gate.GiveUpWith("Canceled: keepalive", "Canceled: ETIMEDOUT"))
			}
			// The rebooted host resets the first PING after it is back.
			Expect(r[2]).To(gate.DetectWithin(3 * time.Second))
			Expect(r[2]).To(gate.GiveUpWith("Canceled: ECONNRESET"))
			Expect(r[4]).To(gate.Survive())
		})
	})
})
