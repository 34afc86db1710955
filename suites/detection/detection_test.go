// The first honest measurement: the first six faults × the first four
// detectors × both sides, each cell at least three samples, in fresh labs
// running in parallel from a bounded pool.
//
//	[peer 198.18.1.2] ==veth== [router] ==veth== [watcher 198.18.2.2]
//
// Every detected sample must fall inside its cell's predicted range
// (widened by report.PredictionTolerance, 150 ms, on each side), with the reason
// theory allows (EOF for a FIN, ECONNRESET for an RST, ETIMEDOUT for
// keepalive and the user timeout — or the router's ICMP error in its place
// after a cable pull); what theory says cannot be detected must be a
// censored sample and never a number.
package detection_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/suites"
)

var (
	suite = suites.New("detection", 0)

	detectorSpecs = []string{
		"read-eof",
		"keepalive-tuned:idle=1s,intvl=1s,cnt=3",
		"user-timeout:timeout=2s,every=200ms",
		"heartbeat-inband:interval=200ms,misses=3",
	}
	faultSpecs = []string{"graceful-close", "abortive-close", "process-kill", "peer-cable-pull", "blackhole", "host-crash"}
	sides      = []protocol.Side{protocol.SideClient, protocol.SideServer}
)

func cells() []harness.CellConfig {
	var out []harness.CellConfig
	for _, side := range sides {
		for _, d := range detectorSpecs {
			for _, f := range faultSpecs {
				out = append(out, harness.CellConfig{Detector: d, Fault: f, Side: side, Samples: suites.Samples(3)})
			}
		}
	}
	return out
}

var _ = Describe("the first six faults against the first four detectors", Label("netns", "measurement"), func() {
	suite.Table("decides as theory says", cells(), func(c *harness.Cell) {
		Expect(len(c.Record().Samples)).To(BeNumerically(">=", suites.Samples(3)))
		suites.ExpectTheory(c)
	})

	var silent []harness.CellConfig
	for _, side := range sides {
		for _, f := range []string{"peer-cable-pull", "blackhole", "host-crash"} {
			silent = append(silent, harness.CellConfig{Detector: "read-eof", Fault: f, Side: side, Samples: suites.Samples(3)})
		}
	}
	suite.It("never puts a number on a silent peer with read-eof", silent, func(cells []*harness.Cell) {
		for _, c := range cells {
			for i, s := range c.Record().Samples {
				Expect(s.Error).To(BeEmpty(), "sample %d of %s", i, c.Describe())
				Expect(s.Seconds).To(BeNil(), "sample %d of %s decided %q: a blocked read cannot see a silent peer", i, c.Describe(), s.Reason)
			}
		}
	})
})
