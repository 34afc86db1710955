// Every fault of the catalogue against the detectors that exist, on the
// direct path and through Toxiproxy on the router:
//
//	[peer 198.18.1.2] ==veth== [router: nftables, conntrack, toxiproxy :7001, API :8474] ==veth== [watcher 198.18.2.2]
//
// Detection cells must decide as theory says (suites.ExpectTheory: inside
// the predicted range widened by report.PredictionTolerance, with an allowed reason,
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
	"github.com/halfopen/halfopen/protocol"
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
	suite = suites.New("catalogue", 0)

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

// cell is one cell of the catalogue.
func cell(detector, fault string, side protocol.Side) harness.CellConfig {
	return harness.CellConfig{Detector: detector, Fault: fault, Side: side, Samples: suites.Samples(3)}
}

// across returns the cells of every detector against each fault.
func across(detectors, faults []string, side protocol.Side) []harness.CellConfig {
	var out []harness.CellConfig
	for _, f := range faults {
		for _, d := range detectors {
			out = append(out, cell(d, f, side))
		}
	}
	return out
}

var _ = Describe("every fault of the catalogue", Label("netns", "toxiproxy", "measurement"), func() {
	detect := func(c *harness.Cell) {
		Expect(len(c.Record().Samples)).To(BeNumerically(">=", min(3, suites.Samples(3))))
		suites.ExpectTheory(c)
	}
	suite.Table("decides as theory says, the watcher dialing", across(detectorSpecs, clientFaults, protocol.SideClient), detect)
	suite.Table("decides as theory says, the watcher a passive server", across(detectorSpecs, serverFaults, protocol.SideServer), detect)

	restart := "router-restart:outage=1s"
	suite.It("survives a 1 s router restart with keepalive 1/1/3, and not with a 200 ms × 3 heart-beat",
		across([]string{keepalive, userTimeout, readEOF, heartbeat}, []string{restart}, protocol.SideClient), func(cells []*harness.Cell) {
			for _, c := range cells[:3] {
				suites.ExpectSurvived(c)
			}
			suites.ExpectFalsePositives(cells[3])
		})

	suite.It("survives latency, jitter, a bandwidth squeeze, slicing, low-rate loss and a long idle",
		across(detectorSpecs, disturbances[1:], protocol.SideClient), func(cells []*harness.Cell) {
			for _, c := range cells {
				if c.Config.Detector == heartbeat && c.Config.Fault == "random-loss:percent=5,for=2s" {
					// A lost pong waits for a retransmission (RTO ≥ 200 ms,
					// doubling): a 600 ms heart-beat may or may not outlast
					// it; the cell is measured, not asserted.
					for _, s := range c.Record().Samples {
						Expect(s.Error).To(BeEmpty())
					}
					continue
				}
				suites.ExpectSurvived(c)
			}
		})

	suite.It("resets at the first keepalive probe after a rebooted host returns", []harness.CellConfig{
		cell(keepalive, "host-reboot:down=1s", protocol.SideClient),
		cell(keepalive, "host-reboot:down=1s", protocol.SideServer),
		cell(readEOF, "host-reboot:down=1s", protocol.SideClient),
	}, func(cells []*harness.Cell) {
		for _, c := range cells[:2] {
			for i, s := range c.Record().Samples {
				Expect(s.Detected).To(BeTrue(), "sample %d of %s", i, c.Describe())
				Expect(s.Reason).To(Equal("ECONNRESET"), "sample %d of %s", i, c.Describe())
				// Down 1 s; the next probe goes within intvl (1 s) of it.
				Expect(*s.Seconds).To(And(BeNumerically(">=", 1.0-report.PredictionTolerance.Seconds()), BeNumerically("<=", 2.0+2*report.PredictionTolerance.Seconds())),
					"sample %d of %s: ECONNRESET must answer the first probe after the return", i, c.Describe())
			}
		}
		// A blocked read sends nothing, so no segment meets the RST.
		suites.ExpectCensored(cells[2])
	})

	suite.It("resets the next write after NAT state loss, and times out silently after firewall state loss", []harness.CellConfig{
		cell(userTimeout, "middlebox-state-loss:mode=nat", protocol.SideClient),
		cell(userTimeout, "middlebox-state-loss", protocol.SideClient),
		cell(readEOF, "middlebox-state-loss:mode=nat", protocol.SideClient),
	}, func(cells []*harness.Cell) {
		for i, s := range cells[0].Record().Samples {
			Expect(s.Reason).To(Equal("ECONNRESET"), "NAT sample %d", i)
			Expect(*s.Seconds).To(BeNumerically("<=", (200*time.Millisecond+2*report.PredictionTolerance).Seconds()), "NAT sample %d: the next 200 ms write must be reset", i)
		}
		for i, s := range cells[1].Record().Samples {
			Expect(s.Reason).To(Equal("ETIMEDOUT"), "firewall sample %d", i)
			Expect(*s.Seconds).To(BeNumerically(">=", 2.0-report.PredictionTolerance.Seconds()), "firewall sample %d: only the 2 s user timeout can tell", i)
		}
		suites.ExpectCensored(cells[2])
	})

	suite.It("catches one-way loss toward the watcher with keepalive 1/1/3 in [3, 4] s", []harness.CellConfig{
		cell(keepalive, "one-way", protocol.SideClient),
	}, func(cells []*harness.Cell) {
		for i, s := range cells[0].Record().Samples {
			Expect(s.Reason).To(Equal("ETIMEDOUT"), "sample %d", i)
			// [cnt·intvl, idle + cnt·intvl] by phase; the timer wheel may
			// fire a 1 s timer up to 12.5 % late.
			Expect(*s.Seconds).To(And(BeNumerically(">=", 3.0-report.PredictionTolerance.Seconds()), BeNumerically("<=", 4.5+report.PredictionTolerance.Seconds())), "sample %d", i)
		}
	})

	suite.It("gets ECONNRESET from Toxiproxy's reset_peer on every detector",
		across(detectorSpecs, []string{"toxiproxy-reset-peer"}, protocol.SideClient), func(cells []*harness.Cell) {
			for _, c := range cells {
				for _, s := range c.Record().Samples {
					Expect(s.Reason).To(Equal("ECONNRESET"), c.Describe())
				}
			}
		})

	suite.It("cannot see a peer host crash behind the proxy with kernel-level detectors, and says why", []harness.CellConfig{
		cell(keepalive, "host-crash", protocol.SideClient),
		cell(keepalive, "toxiproxy-host-crash", protocol.SideClient),
		cell(userTimeout, "host-crash", protocol.SideClient),
		cell(userTimeout, "toxiproxy-host-crash", protocol.SideClient),
		cell(heartbeat, "toxiproxy-host-crash", protocol.SideClient),
	}, func(cells []*harness.Cell) {
		for i := 0; i < 4; i += 2 {
			direct, proxied := cells[i], cells[i+1]
			for _, s := range direct.Record().Samples {
				Expect(s.Detected).To(BeTrue(), "%s on the direct path", direct.Describe())
			}
			rec := proxied.Record()
			for _, s := range rec.Samples {
				Expect(s.Detected).To(BeFalse(), "%s decided %s behind the proxy", proxied.Describe(), s.Reason)
			}
			Expect(rec.Path).To(Equal("toxiproxy"))
			Expect(rec.Note).To(ContainSubstring("proxy's kernel"))
		}
		for _, s := range cells[4].Record().Samples {
			Expect(s.Reason).To(Equal("heartbeat"), "a heart-beat needs the peer's own answers, which stop")
		}
	})
})
