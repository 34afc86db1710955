// The first honest measurement: the first six faults × the first four
// detectors × both sides, each cell at least three samples, in fresh labs
// running in parallel from a bounded pool.
//
//	[peer 198.18.1.2] ==veth== [router] ==veth== [watcher 198.18.2.2]
//
// Every detected sample must fall inside its cell's predicted range
// (widened by suites.Tolerance, 150 ms, on each side), with the reason
// theory allows (EOF for a FIN, ECONNRESET for an RST, ETIMEDOUT for
// keepalive and the user timeout — or the router's ICMP error in its place
// after a cable pull); what theory says cannot be detected must be a
// censored sample and never a number.
package detection_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/harness"
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
	sides      = []harness.Side{harness.SideClient, harness.SideServer}
)

var _ = Describe("the first six faults against the first four detectors", Ordered, Label("netns", "measurement"), func() {
	var cells []*harness.Cell
	var snap *harness.HostSnapshot

	BeforeAll(func(ctx SpecContext) {
		suites.RequireLab()
		var err error
		snap, err = harness.SnapshotHost()
		Expect(err).NotTo(HaveOccurred())
		var configs []harness.CellConfig
		for _, side := range sides {
			for _, d := range detectorSpecs {
				for _, f := range faultSpecs {
					configs = append(configs, harness.CellConfig{Detector: d, Fault: f, Side: side, Samples: suites.Samples(3)})
				}
			}
		}
		cells = suites.RunCells(ctx, "detection", configs, 0)
	}, NodeTimeout(15*time.Minute))

	for _, side := range sides {
		for _, d := range detectorSpecs {
			for _, f := range faultSpecs {
				It("decides as theory says: "+d+" × "+f+" × "+string(side), func() {
					c := suites.Find(cells, d, f, side)
					Expect(len(c.Samples)).To(BeNumerically(">=", 3))
					suites.ExpectTheory(c)
				})
			}
		}
	}

	It("never measures a silent peer with read-eof", func() {
		for _, side := range sides {
			for _, f := range []string{"peer-cable-pull", "blackhole", "host-crash"} {
				c := suites.Find(cells, "read-eof", f, side)
				Expect(c.Expect).To(Equal("never"))
				for _, s := range c.Samples {
					Expect(s.Seconds).To(BeNil())
				}
			}
		}
	})

	It("leaves the host's own namespace exactly as it found it, and no lab behind", func(ctx context.Context) {
		Eventually(harness.OwnLeftovers).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeEmpty())
		after, err := harness.SnapshotHost()
		Expect(err).NotTo(HaveOccurred())
		Expect(after.Diff(snap)).To(BeEmpty())
	})
})
