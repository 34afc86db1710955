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

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/suites"
)

var (
	detectorSpecs = []string{
		"read-eof",
		"keepalive-tuned:idle=1s,intvl=1s,cnt=3",
		"user-timeout:timeout=2s,every=200ms",
		"heartbeat-inband:interval=200ms,misses=3",
	}
	faultSpecs = []string{"graceful-close", "abortive-close", "process-kill", "peer-cable-pull", "blackhole", "host-crash"}
	sides      = []protocol.Side{protocol.SideClient, protocol.SideServer}
	// silent are the faults after which the peer sends nothing more.
	silent = map[string]bool{"peer-cable-pull": true, "blackhole": true, "host-crash": true}
)

// decides asserts that a cell decides as theory says, on at least the
// profile's samples.
func decides(r *gate.Result) {
	Expect(len(r.Samples)).To(BeNumerically(">=", suites.Samples(3)))
	suites.ExpectTheory(r)
}

// silentPeerCensored asserts that read-eof never puts a number on a silent
// peer: a blocked read cannot see it.
func silentPeerCensored(r *gate.Result) {
	for i, s := range r.Record().Samples {
		Expect(s.Error).To(BeEmpty(), "sample %d of %s", i, r.Describe)
		Expect(s.Seconds).To(BeNil(), "sample %d of %s decided %q: a blocked read cannot see a silent peer", i, r.Describe, s.Reason)
	}
}

func entries() []gate.TableEntry {
	var out suites.Entries
	for _, side := range sides {
		for _, d := range detectorSpecs {
			for _, f := range faultSpecs {
				args := []any{decides}
				if d == "read-eof" && silent[f] {
					args = append(args, silentPeerCensored)
				}
				out.Add(suites.Cell(d, f, side), args...)
			}
		}
	}
	return out.List()
}

var _ = Describe("the first six faults against the first four detectors", Label("netns", "measurement"), func() {
	gate.DescribeTable("decides as theory says; read-eof never puts a number on a silent peer", entries(), suites.MeasureTimeout)
})
