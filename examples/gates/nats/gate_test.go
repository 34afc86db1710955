package natsgate

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/tcprules"
)

// The faults every nats.go cell goes through: four that kill the server
// silently or loudly, and one disturbance a healthy connection must
// survive.
const (
	blackhole   = "blackhole"
	hostCrash   = "host-crash"
	hostReboot  = "host-reboot:down=1s"
	middlebox   = "middlebox-state-loss"
	routerFlaps = "router-restart:outage=2s"
)

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

var _ = Describe("nats.go v1.55.0 against nats-server v2.15.2", Label("gates", "netns"), func() {
	cell := func(fault string, cfg map[string]string, samples int, budget time.Duration) gate.Cell {
		return gate.Cell{Watcher: roleClient, Peer: "self", Fault: fault, Side: protocol.SideClient, Samples: samples, Budget: budget, Config: cfg}
	}

	It("with nats.go's defaults (PING every 2 min, 2 outstanding) never notices a silent server within 30 s, a rebooted one in ~15 s, and survives a router restart", func(ctx SpecContext) {
		r := gate.MeasureAll(ctx,
			cell(blackhole, nil, 2, censored),
			cell(hostCrash, nil, 2, censored),
			cell(hostReboot, nil, 2, censored),
			cell(middlebox, nil, 2, censored),
			cell(routerFlaps, nil, 2, 5*time.Second),
		)
		for _, res := range []*gate.Result{r[0], r[1], r[3]} {
			Expect(res).To(gate.NeverDetect())
		}
		// Not nats.go's PING: Go's TCP keepalive on the connection nats.go
		// dials (net.Dialer without KeepAlive: 15 s idle) sends its first
		// probe 15 s after the last segment, and the rebooted host resets it.
		Expect(r[2]).To(gate.DetectWithin(16 * time.Second))
		Expect(r[2]).To(gate.GiveUpWith("ECONNRESET"))
		Expect(r[4]).To(gate.Survive())
	})

	It("with PingInterval=1s, MaxPingsOut=2 notices a dead server in 2-3 s", func(ctx SpecContext) {
		r := gate.MeasureAll(ctx,
			cell(blackhole, aggressive, 3, 0),
			cell(hostCrash, aggressive, 3, 0),
			cell(hostReboot, aggressive, 3, 0),
			cell(middlebox, aggressive, 3, 0),
			// Not gated: whether the 2 s outage outlasts the two PINGs
			// depends on where in the PING interval it falls.
			cell(routerFlaps, aggressive, 6, 5*time.Second),
		)
		for _, res := range []*gate.Result{r[0], r[1], r[3]} {
			Expect(res).To(gate.DetectWithin(3500 * time.Millisecond))
			Expect(res.Fastest()).To(BeNumerically(">=", 1.9), "MaxPingsOut=2 unanswered PINGs before stale\n%v", res)
			Expect(res).To(gate.GiveUpWith("stale connection"))
		}
		// The rebooted host resets the first PING (or its retransmission)
		// after it is back; were it late, the PINGs would go stale.
		Expect(r[2]).To(gate.DetectWithin(2500 * time.Millisecond))
		Expect(r[2]).To(gate.GiveUpWith("ECONNRESET", "stale connection"))
		for i, smp := range r[4].Record.Samples {
			Expect(smp.Error).To(BeEmpty(), "sample %d of %v", i, r[4])
		}
		AddReportEntry("1s × 2 through a 2 s router restart", fmt.Sprintf("%d false positives in %d samples", r[4].Record.FalsePositives, len(r[4].Record.Samples)))
	})

	It("with PingInterval=1s, MaxPingsOut=4 notices a dead server in 4-5 s and survives a 2 s router restart", func(ctx SpecContext) {
		r := gate.MeasureAll(ctx,
			cell(blackhole, recommended, 3, 0),
			cell(hostCrash, recommended, 3, 0),
			cell(hostReboot, recommended, 3, 0),
			cell(middlebox, recommended, 3, 0),
			cell(routerFlaps, recommended, 3, 6*time.Second),
		)
		for _, res := range []*gate.Result{r[0], r[1], r[3]} {
			Expect(res).To(gate.DetectWithin(5500 * time.Millisecond))
			Expect(res).To(gate.GiveUpWith("stale connection"))
		}
		Expect(r[2]).To(gate.DetectWithin(2500 * time.Millisecond))
		Expect(r[2]).To(gate.GiveUpWith("ECONNRESET", "stale connection"))
		Expect(r[4]).To(gate.Survive())
	})

	// A request in flight: the fault lands while the client's PUB is
	// unacknowledged. nats.go's PING timer runs on its own clock, whatever
	// the connection's state, so the recommended setting gives up as idle
	// (stale after 4-5 s); Go's TCP keepalive on its dialer, inert while
	// data is in flight, never mattered.
	It("with PingInterval=1s, MaxPingsOut=4 notices a dead server in 4-5 s with a request in flight too", func(ctx SpecContext) {
		inFlight := func(fault string) gate.Cell {
			c := cell(fault, recommended, 3, 0)
			c.Phase = tcprules.PhaseInFlight
			return c
		}
		r := gate.MeasureAll(ctx, inFlight(blackhole), inFlight(middlebox))
		for _, res := range r {
			Expect(res).To(gate.DetectWithin(5500 * time.Millisecond))
			Expect(res).To(gate.GiveUpWith("stale connection"))
		}
	})

	Describe("the passive server: nats-server holding an idle nats.go client (nats-server, side server)", func() {
		cell := func(fault string, cfg map[string]string, samples int, budget time.Duration) gate.Cell {
			return gate.Cell{Watcher: roleServer, Peer: "self", Fault: fault, Side: protocol.SideServer, Samples: samples, Budget: budget, Config: cfg}
		}

		It("with nats-server's defaults (PING every 2 min, no TCP keepalive) never notices a silent client within 30 s, and survives a router restart", func(ctx SpecContext) {
			r := gate.MeasureAll(ctx,
				cell(blackhole, nil, 2, censored),
				cell(hostCrash, nil, 2, censored),
				cell(hostReboot, nil, 2, censored),
				cell(middlebox, nil, 2, censored),
				cell(routerFlaps, nil, 2, 5*time.Second),
			)
			for _, res := range []*gate.Result{r[0], r[1], r[3]} {
				Expect(res).To(gate.NeverDetect())
			}
			// nats-server PINGs a new client 2 s (+ up to 20 %) after it
			// connected (firstClientPingInterval) before settling to every
			// 2 min; the fault comes within 1.5 s of the connection, so
			// the host rebooted in between resets that first PING.
			Expect(r[2]).To(gate.DetectWithin(3 * time.Second))
			Expect(r[2]).To(gate.GiveUpWith("Read Error"))
			Expect(r[4]).To(gate.Survive())
		})

		It("with PingInterval=1s, MaxPingsOut=2 notices a dead client in 2-3 s; with MaxPingsOut=4 in 4-5 s and survives a 2 s router restart", func(ctx SpecContext) {
			r := gate.MeasureAll(ctx,
				cell(blackhole, aggressive, 3, 0),
				cell(hostCrash, aggressive, 3, 0),
				cell(hostReboot, aggressive, 3, 0),
				cell(middlebox, aggressive, 3, 0),
				// Not gated, as for the client.
				cell(routerFlaps, aggressive, 6, 5*time.Second),
				cell(blackhole, recommended, 3, 0),
				cell(hostReboot, recommended, 3, 0),
				cell(routerFlaps, recommended, 3, 7*time.Second),
			)
			for _, res := range []*gate.Result{r[0], r[1], r[3]} {
				Expect(res).To(gate.DetectWithin(3500 * time.Millisecond))
				Expect(res).To(gate.GiveUpWith("Stale Connection"))
			}
			Expect(r[2]).To(gate.DetectWithin(3500 * time.Millisecond))
			Expect(r[2]).To(gate.GiveUpWith("Read Error", "Stale Connection"))
			for i, smp := range r[4].Record.Samples {
				Expect(smp.Error).To(BeEmpty(), "sample %d of %v", i, r[4])
			}
			AddReportEntry("nats-server 1s × 2 through a 2 s router restart", fmt.Sprintf("%d false positives in %d samples", r[4].Record.FalsePositives, len(r[4].Record.Samples)))
			Expect(r[5]).To(gate.DetectWithin(5500 * time.Millisecond))
			Expect(r[5]).To(gate.GiveUpWith("Stale Connection"))
			Expect(r[6]).To(gate.DetectWithin(3500 * time.Millisecond))
			Expect(r[6]).To(gate.GiveUpWith("Read Error", "Stale Connection"))
			Expect(r[7]).To(gate.Survive())
		})
	})
})
