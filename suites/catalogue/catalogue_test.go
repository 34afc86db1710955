// Every fault of the catalogue against the detectors that exist, on the
// direct path and through Toxiproxy on the router:
//
//	[peer 198.18.1.2] ==veth== [router: nftables, conntrack, toxiproxy :7001, API :8474] ==veth== [watcher 198.18.2.2]
//
// Detection cells must decide as theory says (suites.ExpectTheory: inside
// the predicted range widened by suites.Tolerance, with an allowed reason,
// or censored when theory says never). Disturbance cells keep the
// connection observed for their whole window and count every false
// positive. On top, the claims TCP's rules make:
//
//   - a 1 s router restart is survived by keepalive 1/1/3, with no false
//     positive, and not by a 200 ms × 3 heart-beat;
//   - a rebooted host answers the first keepalive probe after its return
//     with an RST: ECONNRESET within one probe interval of the return;
//   - a NAT that lost its state resets the next write; a firewall that
//     lost it drops silently, and the user timeout catches it;
//   - one-way loss toward the watcher is caught by keepalive 1/1/3 in
//     [3, 4] s (stretched by the timer wheel);
//   - Toxiproxy's reset_peer gives ECONNRESET; behind the proxy a crashed
//     peer host is invisible to keepalive and the user timeout, because
//     their TCP peer is the proxy's kernel.
package catalogue_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/suites"
)

const (
	readEOF     = "read-eof"
	keepalive   = "keepalive-tuned:idle=1s,intvl=1s,cnt=3"
	userTimeout = "user-timeout:timeout=2s,every=200ms"
	heartbeat   = "heartbeat-inband:interval=200ms,misses=3"
)

var (
	detectorSpecs = []string{readEOF, keepalive, userTimeout, heartbeat}

	// Detection faults on the client side (the watcher dials).
	clientFaults = []string{
		"local-cable-pull",
		"one-way",
		"one-way:direction=to-peer",
		"host-reboot:down=1s",
		"half-open",
		"middlebox-state-loss",
		"middlebox-state-loss:mode=nat",
		"toxiproxy-reset-peer",
		"toxiproxy-timeout",
		"toxiproxy-slow-close:delay=500ms",
		"toxiproxy-limit-data:bytes=8",
		"toxiproxy-down",
		"toxiproxy-host-crash",
		"host-crash", // the direct-path control of toxiproxy-host-crash
	}
	// Detection faults also run with the watcher as the reference text's
	// passive server.
	serverFaults = []string{
		"half-open",
		"host-reboot:down=1s",
		"middlebox-state-loss:mode=nat,scope=all",
		"toxiproxy-reset-peer:timeout=100ms",
	}
	// Disturbances: the connection must survive (or the detector pays a
	// false positive).
	disturbances = []string{
		"router-restart:outage=1s",
		"random-loss:percent=5,for=2s",
		"toxiproxy-latency:latency=200ms,jitter=50ms,for=1s",
		"toxiproxy-bandwidth:rate=1,for=1s",
		"toxiproxy-slicer:average_size=2,size_variation=1,delay=5ms,for=1s",
		"long-idle:for=3s",
	}
)

type cellKey struct{ detector, fault, side string }

var _ = Describe("every fault of the catalogue", Ordered, Label("netns", "toxiproxy", "measurement"), func() {
	var cells []*harness.Cell
	notes := map[cellKey]report.Cell{}

	BeforeAll(func(ctx SpecContext) {
		suites.RequireLab()
		var configs []harness.CellConfig
		add := func(f string, side harness.Side) {
			for _, d := range detectorSpecs {
				configs = append(configs, harness.CellConfig{Detector: d, Fault: f, Side: side, Samples: suites.Samples(3)})
			}
		}
		for _, f := range clientFaults {
			add(f, harness.SideClient)
		}
		for _, f := range serverFaults {
			add(f, harness.SideServer)
		}
		for _, f := range disturbances {
			add(f, harness.SideClient)
		}
		cells = suites.RunCells(ctx, "catalogue", configs, 12, func(cs []*harness.Cell, r *report.Report) {
			for _, c := range r.Cells {
				notes[cellKey{c.Detector, c.Fault, c.Side}] = c
			}
		})
	}, NodeTimeout(10*time.Minute))

	reportCell := func(c *harness.Cell) report.Cell {
		return notes[cellKey{c.DetSpec.String(), c.FaultSpec.String(), string(c.Config.Side)}]
	}

	for _, tc := range []struct {
		faults []string
		side   harness.Side
	}{{clientFaults, harness.SideClient}, {serverFaults, harness.SideServer}} {
		for _, f := range tc.faults {
			for _, d := range detectorSpecs {
				It("decides as theory says: "+d+" × "+f+" × "+string(tc.side), func() {
					c := suites.Find(cells, d, f, tc.side)
					Expect(len(c.Samples)).To(BeNumerically(">=", min(3, suites.Samples(3))))
					suites.ExpectTheory(c)
				})
			}
		}
	}

	It("survives a 1 s router restart with keepalive 1/1/3, and not with a 200 ms × 3 heart-beat", func() {
		for _, d := range []string{keepalive, userTimeout, readEOF} {
			suites.ExpectSurvived(suites.Find(cells, d, "router-restart:outage=1s", harness.SideClient))
		}
		suites.ExpectFalsePositives(suites.Find(cells, heartbeat, "router-restart:outage=1s", harness.SideClient))
	})

	It("survives latency, jitter, a bandwidth squeeze, slicing, low-rate loss and a long idle", func() {
		for _, f := range disturbances[1:] {
			for _, d := range detectorSpecs {
				c := suites.Find(cells, d, f, harness.SideClient)
				if d == heartbeat && f == "random-loss:percent=5,for=2s" {
					// A lost pong waits for a retransmission (RTO ≥ 200 ms,
					// doubling): a 600 ms heart-beat may or may not outlast
					// it; the cell is measured, not asserted.
					for _, s := range c.Samples {
						Expect(s.Error).To(BeEmpty())
					}
					continue
				}
				suites.ExpectSurvived(c)
			}
		}
	})

	It("resets at the first keepalive probe after a rebooted host returns", func() {
		for _, side := range []harness.Side{harness.SideClient, harness.SideServer} {
			c := suites.Find(cells, keepalive, "host-reboot:down=1s", side)
			for i, s := range c.Samples {
				Expect(s.Detected).To(BeTrue(), "sample %d × %s", i, side)
				Expect(s.Reason).To(Equal("ECONNRESET"), "sample %d × %s", i, side)
				// Down 1 s; the next probe goes within intvl (1 s) of it.
				Expect(*s.Seconds).To(And(BeNumerically(">=", 1.0-suites.Tolerance.Seconds()), BeNumerically("<=", 2.0+2*suites.Tolerance.Seconds())),
					"sample %d × %s: ECONNRESET must answer the first probe after the return", i, side)
			}
		}
		Expect(suites.Find(cells, readEOF, "host-reboot:down=1s", harness.SideClient).Expect).To(Equal("never"))
	})

	It("resets the next write after NAT state loss, and times out silently after firewall state loss", func() {
		nat := suites.Find(cells, userTimeout, "middlebox-state-loss:mode=nat", harness.SideClient)
		for i, s := range nat.Samples {
			Expect(s.Reason).To(Equal("ECONNRESET"), "NAT sample %d", i)
			Expect(*s.Seconds).To(BeNumerically("<=", (200*time.Millisecond+2*suites.Tolerance).Seconds()), "NAT sample %d: the next 200 ms write must be reset", i)
		}
		fw := suites.Find(cells, userTimeout, "middlebox-state-loss", harness.SideClient)
		for i, s := range fw.Samples {
			Expect(s.Reason).To(Equal("ETIMEDOUT"), "firewall sample %d", i)
			Expect(*s.Seconds).To(BeNumerically(">=", 2.0-suites.Tolerance.Seconds()), "firewall sample %d: only the 2 s user timeout can tell", i)
		}
		Expect(suites.Find(cells, readEOF, "middlebox-state-loss:mode=nat", harness.SideClient).Expect).To(Equal("never"))
	})

	It("catches one-way loss toward the watcher with keepalive 1/1/3 in [3, 4] s", func() {
		c := suites.Find(cells, keepalive, "one-way", harness.SideClient)
		for i, s := range c.Samples {
			Expect(s.Reason).To(Equal("ETIMEDOUT"), "sample %d", i)
			// [cnt·intvl, idle + cnt·intvl] by phase; the timer wheel may
			// fire a 1 s timer up to 12.5 % late.
			Expect(*s.Seconds).To(And(BeNumerically(">=", 3.0-suites.Tolerance.Seconds()), BeNumerically("<=", 4.5+suites.Tolerance.Seconds())), "sample %d", i)
		}
	})

	It("gets ECONNRESET from Toxiproxy's reset_peer on every detector", func() {
		for _, d := range detectorSpecs {
			for _, s := range suites.Find(cells, d, "toxiproxy-reset-peer", harness.SideClient).Samples {
				Expect(s.Reason).To(Equal("ECONNRESET"), d)
			}
		}
	})

	It("cannot see a peer host crash behind the proxy with kernel-level detectors, and says why", func() {
		for _, d := range []string{keepalive, userTimeout} {
			direct := suites.Find(cells, d, "host-crash", harness.SideClient)
			proxied := suites.Find(cells, d, "toxiproxy-host-crash", harness.SideClient)
			for _, s := range direct.Samples {
				Expect(s.Detected).To(BeTrue(), "%s × host-crash on the direct path", d)
			}
			for _, s := range proxied.Samples {
				Expect(s.Detected).To(BeFalse(), "%s × host-crash behind the proxy decided %s", d, s.Reason)
			}
			rc := reportCell(proxied)
			Expect(rc.Path).To(Equal("toxiproxy"))
			Expect(rc.Note).To(ContainSubstring("proxy's kernel"))
		}
		for _, s := range suites.Find(cells, heartbeat, "toxiproxy-host-crash", harness.SideClient).Samples {
			Expect(s.Reason).To(Equal("heartbeat"), "a heart-beat needs the peer's own answers, which stop")
		}
	})
})
