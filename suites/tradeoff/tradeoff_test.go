// Tolerance against detection, per detector family: each configuration is
// put through router restarts of growing outage (the connection must
// survive) and through a silent death (a blackhole):
//
//	[peer] ==veth== [router: down for `outage`, or dropping all] ==veth== [watcher]
//
// The longest outage it survives with no false positive is its tolerance;
// its detection time is measured on the silent death. No detector can
// decide sooner after a silence than the longest silence it forgives, so
// tolerance / detection ≤ 1: the assertion uses the slowest detection
// sample, since a lucky phase lets one outage sample outlast a median
// detection, and a ladder step as tolerance. The frontier goes into the
// report and its HTML plot.
package tradeoff_test

import (
	"fmt"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/suites"
)

var (
	families = []string{
		"keepalive-tuned:idle=1s,intvl=1s,cnt=2",
		"keepalive-tuned:idle=1s,intvl=1s,cnt=3",
		"user-timeout:timeout=1s,every=200ms",
		"user-timeout:timeout=2s,every=200ms",
		"heartbeat-inband:interval=200ms,misses=3",
		"heartbeat-inband:interval=200ms,misses=6",
		"phi-accrual:interval=200ms,threshold=8",
		"phi-accrual:interval=200ms,threshold=16",
	}
	outages = []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond, 2400 * time.Millisecond, 4800 * time.Millisecond}
)

const death = "blackhole"

func outageFault(d time.Duration) string { return fmt.Sprintf("router-restart:outage=%s", d) }

// sweep is a configuration's cells, by their entries' names: the silent
// death, and each outage of the ladder in order.
type sweep struct {
	death   string
	outages []string
}

// sweepOf adds a configuration's cells to the table's entries and returns
// their names. Each cell is measured without error; the claims read them.
func sweepOf(e *suites.Entries, det string) sweep {
	sw := sweep{death: e.Add(suites.Cell(det, death, protocol.SideClient), suites.Measured)}
	for _, o := range outages {
		c := suites.Cell(det, outageFault(o), protocol.SideClient)
		c.Samples = max(2, suites.Samples(3)-1)
		sw.outages = append(sw.outages, e.Add(c, suites.Measured))
	}
	return sw
}

// names are the sweep's entries, for a claim.
func (sw sweep) names() []string { return append([]string{sw.death}, sw.outages...) }

// frontierPoint is a configuration's tolerance (longest outage of the
// ladder survived by every sample, 0 when none) and its detection times.
type frontierPoint struct {
	tolerance         time.Duration
	detectP50, detMax time.Duration
	detected          int
}

// frontier computes a configuration's point from its sweep's results.
func frontier(sw sweep, rs map[string]*gate.Result) frontierPoint {
	var fp frontierPoint
	for i, o := range outages {
		samples := rs[sw.outages[i]].Record().Samples
		survived := len(samples) > 0
		for _, s := range samples {
			survived = survived && s.Error == "" && s.FalsePositives == 0
		}
		if !survived {
			break
		}
		fp.tolerance = o
	}
	var secs []float64
	for _, s := range rs[sw.death].Record().Samples {
		if s.Detected {
			secs = append(secs, *s.Seconds)
		}
	}
	sort.Float64s(secs)
	fp.detected = len(secs)
	if len(secs) > 0 {
		fp.detectP50 = time.Duration(report.NearestRank(secs, 0.5) * float64(time.Second))
		fp.detMax = time.Duration(secs[len(secs)-1] * float64(time.Second))
	}
	return fp
}

func entries() []gate.TableEntry {
	var e suites.Entries
	sweeps := map[string]sweep{}
	for _, d := range families {
		sweeps[d] = sweepOf(&e, d)
	}
	var claims []gate.TableEntry
	for _, d := range families {
		sw := sweeps[d]
		claims = append(claims, gate.Claim("cannot forgive a longer silence than it takes to detect one: "+d, sw.names(), func(rs map[string]*gate.Result) {
			fp := frontier(sw, rs)
			if fp.detected > 0 {
				// The frontier goes into the report and its HTML plot.
				gate.AddFrontier(report.FrontierPoint{
					Detector: rs[sw.death].Record().Detector, ToleratedS: fp.tolerance.Seconds(), DetectionS: fp.detectP50.Seconds(),
					Note: fmt.Sprintf("longest router-restart outage of %v survived with 0 false positives; median detection of a blackhole over %d samples (slowest %v)", outageLadder(), fp.detected, fp.detMax.Round(time.Millisecond)),
				})
			}
			Expect(fp.detected).To(BeNumerically(">", 0), "%s never detected a blackhole", d)
			GinkgoWriter.Printf("%s: tolerates %v, detects in %v (max %v), ratio %.2f\n", d, fp.tolerance, fp.detectP50, fp.detMax, fp.tolerance.Seconds()/fp.detectP50.Seconds())
			Expect(fp.tolerance).To(BeNumerically("<=", fp.detMax+report.PredictionTolerance),
				"%s survived a %v outage but detects a silent death within %v", d, fp.tolerance, fp.detMax)
		}))
	}
	pairs := [][2]string{
		{"keepalive-tuned:idle=1s,intvl=1s,cnt=2", "keepalive-tuned:idle=1s,intvl=1s,cnt=3"},
		{"user-timeout:timeout=1s,every=200ms", "user-timeout:timeout=2s,every=200ms"},
		{"heartbeat-inband:interval=200ms,misses=3", "heartbeat-inband:interval=200ms,misses=6"},
	}
	for _, p := range pairs {
		less, more := sweeps[p[0]], sweeps[p[1]]
		claims = append(claims, gate.Claim("tolerates more with more patience: "+p[1]+" against "+p[0], append(less.names(), more.names()...), func(rs map[string]*gate.Result) {
			a, b := frontier(less, rs), frontier(more, rs)
			Expect(b.detectP50).To(BeNumerically(">", a.detectP50), "%s should detect later than %s", p[1], p[0])
			Expect(b.tolerance).To(BeNumerically(">=", a.tolerance), "%s should forgive at least what %s forgives", p[1], p[0])
		}))
	}
	return append(e.List(), claims...)
}

var _ = Describe("tolerance against detection", Label("netns", "measurement", "sweep"), func() {
	gate.DescribeTable("each configuration's sweep", entries(), suites.MeasureTimeout)
})

func outageLadder() string {
	s := ""
	for i, o := range outages {
		if i > 0 {
			s += "/"
		}
		s += o.String()
	}
	return s
}
