// Every fault of the catalogue against the detectors that exist, on the
// direct path and through Toxiproxy on the router:
//
//	[peer 198.18.1.2] ==veth== [router: nftables, conntrack, toxiproxy :7001, API :8474] ==veth== [watcher 198.18.2.2]
//
// Each cell is an entry of one table, and carries every claim made of it.
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

	"github.com/halfopen/halfopen/gate"
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

const (
	client = protocol.SideClient
	server = protocol.SideServer
)

// decides asserts that a detection cell decides as theory says, on at
// least its samples.
func decides(r *gate.Result) {
	Expect(len(r.Samples)).To(BeNumerically(">=", min(3, suites.Samples(3))))
	suites.ExpectTheory(r)
}

// resetsAtFirstProbe: a rebooted host answers the first keepalive probe
// after its return with an RST.
func resetsAtFirstProbe(r *gate.Result) {
	for i, s := range r.Record().Samples {
		Expect(s.Detected).To(BeTrue(), "sample %d of %s", i, r.Describe)
		Expect(s.Reason).To(Equal("ECONNRESET"), "sample %d of %s", i, r.Describe)
		// Down 1 s; the next probe goes within intvl (1 s) of it.
		Expect(*s.Seconds).To(And(BeNumerically(">=", 1.0-report.PredictionTolerance.Seconds()), BeNumerically("<=", 2.0+2*report.PredictionTolerance.Seconds())),
			"sample %d of %s: ECONNRESET must answer the first probe after the return", i, r.Describe)
	}
}

// natResetsNextWrite: a NAT that lost the flow resets the next 200 ms
// write.
func natResetsNextWrite(r *gate.Result) {
	for i, s := range r.Record().Samples {
		Expect(s.Reason).To(Equal("ECONNRESET"), "NAT sample %d", i)
		Expect(*s.Seconds).To(BeNumerically("<=", (200*time.Millisecond+2*report.PredictionTolerance).Seconds()), "NAT sample %d: the next 200 ms write must be reset", i)
	}
}

// firewallTimesOut: a firewall that lost the flow drops silently; only
// the 2 s user timeout can tell.
func firewallTimesOut(r *gate.Result) {
	for i, s := range r.Record().Samples {
		Expect(s.Reason).To(Equal("ETIMEDOUT"), "firewall sample %d", i)
		Expect(*s.Seconds).To(BeNumerically(">=", 2.0-report.PredictionTolerance.Seconds()), "firewall sample %d: only the 2 s user timeout can tell", i)
	}
}

// oneWayCaught: one-way loss toward the watcher is caught by keepalive
// 1/1/3 in [3, 4] s.
func oneWayCaught(r *gate.Result) {
	for i, s := range r.Record().Samples {
		Expect(s.Reason).To(Equal("ETIMEDOUT"), "sample %d", i)
		// [cnt·intvl, idle + cnt·intvl] by phase; the timer wheel may
		// fire a 1 s timer up to 12.5 % late.
		Expect(*s.Seconds).To(And(BeNumerically(">=", 3.0-report.PredictionTolerance.Seconds()), BeNumerically("<=", 4.5+report.PredictionTolerance.Seconds())), "sample %d", i)
	}
}

// resetByProxy: Toxiproxy's reset_peer gives ECONNRESET.
func resetByProxy(r *gate.Result) {
	for _, s := range r.Record().Samples {
		Expect(s.Reason).To(Equal("ECONNRESET"), r.Describe)
	}
}

// seesDirectCrash: on the direct path, a kernel-level detector sees the
// peer host crash.
func seesDirectCrash(r *gate.Result) {
	for _, s := range r.Record().Samples {
		Expect(s.Detected).To(BeTrue(), "%s on the direct path", r.Describe)
	}
}

// blindBehindProxy: behind the proxy, a kernel-level detector cannot see
// the peer host crash, because its TCP peer is the proxy's kernel, and
// the report says why.
func blindBehindProxy(r *gate.Result) {
	rec := r.Record()
	for _, s := range rec.Samples {
		Expect(s.Detected).To(BeFalse(), "%s decided %s behind the proxy", r.Describe, s.Reason)
	}
	Expect(rec.Path).To(Equal("toxiproxy"))
	Expect(rec.Note).To(ContainSubstring("proxy's kernel"))
}

// heartbeatBehindProxy: a heart-beat needs the peer's own answers, which
// stop.
func heartbeatBehindProxy(r *gate.Result) {
	for _, s := range r.Record().Samples {
		Expect(s.Reason).To(Equal("heartbeat"), "a heart-beat needs the peer's own answers, which stop")
	}
}

func entries() []gate.TableEntry {
	var e suites.Entries
	cell := suites.Cell
	// Every detection cell decides as theory says, the watcher dialing
	// and the watcher a passive server.
	for _, f := range clientFaults {
		for _, d := range detectorSpecs {
			e.Add(cell(d, f, client), decides)
		}
	}
	for _, f := range serverFaults {
		for _, d := range detectorSpecs {
			e.Add(cell(d, f, server), decides)
		}
	}
	// A 1 s router restart is survived by keepalive 1/1/3, and not by a
	// 200 ms × 3 heart-beat.
	restart := disturbances[0]
	for _, d := range []string{keepalive, userTimeout, readEOF} {
		e.Add(cell(d, restart, client), suites.ExpectSurvived)
	}
	e.Add(cell(heartbeat, restart, client), suites.ExpectFalsePositives)
	// Latency, jitter, a bandwidth squeeze, slicing, low-rate loss and a
	// long idle are survived.
	for _, f := range disturbances[1:] {
		for _, d := range detectorSpecs {
			if d == heartbeat && f == "random-loss:percent=5,for=2s" {
				// A lost pong waits for a retransmission (RTO ≥ 200 ms,
				// doubling): a 600 ms heart-beat may or may not outlast
				// it; the cell is measured, not asserted.
				e.Add(cell(d, f, client), suites.Measured)
				continue
			}
			e.Add(cell(d, f, client), suites.ExpectSurvived)
		}
	}
	// A rebooted host resets the first keepalive probe after its return;
	// a blocked read sends nothing, so no segment meets the RST.
	e.Add(cell(keepalive, "host-reboot:down=1s", client), resetsAtFirstProbe)
	e.Add(cell(keepalive, "host-reboot:down=1s", server), resetsAtFirstProbe)
	e.Add(cell(readEOF, "host-reboot:down=1s", client), gate.NeverDetect())
	// NAT state loss resets the next write; firewall state loss times out
	// silently.
	e.Add(cell(userTimeout, "middlebox-state-loss:mode=nat", client), natResetsNextWrite)
	e.Add(cell(userTimeout, "middlebox-state-loss", client), firewallTimesOut)
	e.Add(cell(readEOF, "middlebox-state-loss:mode=nat", client), gate.NeverDetect())
	// One-way loss toward the watcher is caught by keepalive 1/1/3 in
	// [3, 4] s.
	e.Add(cell(keepalive, "one-way", client), oneWayCaught)
	// Toxiproxy's reset_peer gives ECONNRESET on every detector.
	for _, d := range detectorSpecs {
		e.Add(cell(d, "toxiproxy-reset-peer", client), resetByProxy)
	}
	// Kernel-level detectors cannot see a peer host crash behind the
	// proxy, and the report says why.
	for _, d := range []string{keepalive, userTimeout} {
		e.Add(cell(d, "host-crash", client), seesDirectCrash)
		e.Add(cell(d, "toxiproxy-host-crash", client), blindBehindProxy)
	}
	e.Add(cell(heartbeat, "toxiproxy-host-crash", client), heartbeatBehindProxy)
	return e.List()
}

var _ = Describe("every fault of the catalogue", Label("netns", "toxiproxy", "measurement"), func() {
	gate.DescribeTable("decides as theory says, survives what it must, and shows what TCP's rules say", entries(), suites.MeasureTimeout)
})
