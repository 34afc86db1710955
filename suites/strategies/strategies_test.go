// Package strategies_test measures every detection strategy of the
// reference text on real packets in fresh labs:
//
//	[peer host] ==veth== [router host] ==veth== [watcher host]
//	echo peer or a      (forwarding, nftables,   the strategy's watcher:
//	foreign peer         conntrack)              halfopen's agent, a C
//	                                             example or a Python one
//
// Each strategy against a FIN (graceful-close) and a silent peer
// (blackhole) on both sides; the EINTR trap under a signal storm; dedicated
// against in-band heart-beats when a middlebox forgets the data flow; and
// the reference text's C snippets and a Python detector, speaking protocol
// v1, against their Go twins.
package strategies_test

import (
	"fmt"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/suites"
)

const (
	blackhole = "blackhole"
	fin       = "graceful-close"
	storm     = "signal-storm:rate=200,signal=SIGUSR1,for=2s"
	middlebox = "middlebox-state-loss:mode=firewall,scope=flow"
)

var sides = []protocol.Side{protocol.SideClient, protocol.SideServer}

// cell is one cell of this suite.
var cell = suites.Cell

// goDetectors are the reference text's strategies as halfopen detectors.
// The quick profile scales keepalive-default's sysctls by 1/3600 and lowers
// tcp_retries2 to 2 in the watcher's namespace (both recorded in the
// report); PROFILE=full measures the kernel's defaults (7875 s, 928.7 s).
func goDetectors() []string {
	keepaliveDefault, retries2 := "keepalive-default:scale=3600", 2
	if suites.Profile() == "full" {
		keepaliveDefault, retries2 = "keepalive-default", 15
	}
	return []string{
		"select-recv", "naive-recv", "rdhup", "tcp-info:every=100ms",
		keepaliveDefault,
		"keepalive-user-timeout",                  // timeout=3s cuts cnt=9 short: [2, 3] s
		"keepalive-user-timeout:cnt=2,timeout=4s", // and outlasts cnt=2: [3, 4] s
		fmt.Sprintf("write-probe:retries2=%d", retries2),
		fmt.Sprintf("oob-probe:retries2=%d", retries2),
		"heartbeat-dedicated", "phi-accrual",
	}
}

// eintrDetectors are watched under the signal storm; only naive-recv may
// take a signal for a dead peer.
var eintrDetectors = []string{"naive-recv", "select-recv", "read-eof", "rdhup"}

// twin pairs a C or Python implementation with halfopen's own detector.
type twin struct {
	ref, foreign string
	fault        string
	sysctls      map[string]string
	budget       time.Duration
	tolerance    time.Duration
}

func examples(rel string) string {
	p, err := filepath.Abs(filepath.Join("..", "..", "examples", rel))
	Expect(err).NotTo(HaveOccurred())
	return p
}

func twins() []twin {
	c := func(name string) string { return "external:cmd=" + examples("c/bin/"+name) }
	py := "external:cmd=" + examples("python/keepalive_watcher.py")
	r2 := map[string]string{"net.ipv4.tcp_retries2": "2"}
	return []twin{
		{ref: "select-recv", foreign: c("select_recv"), fault: fin, tolerance: 50 * time.Millisecond},
		{ref: "select-recv", foreign: c("select_recv"), fault: blackhole, budget: 3 * time.Second},
		{ref: "tcp-info:every=100ms", foreign: c("socket_connected") + ",every=100ms", fault: fin, tolerance: 100 * time.Millisecond},
		{ref: "tcp-info:every=100ms", foreign: c("socket_connected") + ",every=100ms", fault: blackhole, budget: 3 * time.Second},
		{ref: "keepalive-tuned:idle=1s,intvl=1s,cnt=3", foreign: c("set_keepalive") + ",idle=1s,intvl=1s,cnt=3", fault: blackhole, tolerance: 300 * time.Millisecond},
		// retries2 tells netcheck what the lab sets, so that its hello
		// declares the kernel's give-up range rather than null ("never").
		{ref: "oob-probe:retries2=2", foreign: c("netcheck") + ",every=200ms,retries2=2", fault: blackhole, sysctls: r2, budget: 6 * time.Second, tolerance: 300 * time.Millisecond},
		{ref: "oob-probe:retries2=2", foreign: c("netcheck") + ",every=200ms", fault: fin, tolerance: 50 * time.Millisecond},
		{ref: "keepalive-tuned:idle=1s,intvl=1s,cnt=2", foreign: py + ",idle=1s,intvl=1s,cnt=2", fault: blackhole, tolerance: 300 * time.Millisecond},
		{ref: "keepalive-tuned:idle=1s,intvl=1s,cnt=2", foreign: py + ",idle=1s,intvl=1s,cnt=2", fault: fin, tolerance: 50 * time.Millisecond},
		// The Python program on both sides: a FIN from the peer program's
		// kernel when the peer process is killed.
		{ref: "keepalive-tuned:idle=1s,intvl=1s,cnt=2", foreign: py + ",idle=1s,intvl=1s,cnt=2,peer=self", fault: blackhole, tolerance: 300 * time.Millisecond},
		{ref: "keepalive-tuned:idle=1s,intvl=1s,cnt=2", foreign: py + ",idle=1s,intvl=1s,cnt=2,peer=self", fault: "process-kill", tolerance: 50 * time.Millisecond},
	}
}

// inBand asserts that netcheck's urgent probes reach the peer in band. A
// sample whose fault came before netcheck's first probe (the idle range is
// swept from 0) has nothing to show; every probe that arrived must have
// arrived in band, and the cell must show some.
func inBand(r *gate.Result) {
	inBand := 0
	for _, s := range r.Record().Samples {
		var got, nul int
		_, err := fmt.Sscanf(s.PeerSaw, "received %d bytes, %d of them NUL", &got, &nul)
		Expect(err).NotTo(HaveOccurred(), "%s: the peer said %q", r.Describe, s.PeerSaw)
		if got > 0 {
			Expect(nul).To(BeNumerically(">", 0), "%s: %s: netcheck's bytes are urgent NULs, read in band", r.Describe, s.PeerSaw)
		}
		inBand += nul
	}
	Expect(inBand).To(BeNumerically(">", 0), "%s: no sample's peer read an urgent byte in band", r.Describe)
}

func entries() []gate.TableEntry {
	var e suites.Entries
	// Every strategy decides on real packets as theory says.
	for _, side := range sides {
		for _, det := range goDetectors() {
			e.Add(cell(det, blackhole, side), suites.ExpectTheory)
			e.Add(cell(det, fin, side), suites.ExpectTheory)
		}
	}
	// netcheck's urgent probes reach the peer in band.
	netcheck := goDetectors()[8]
	e.Add(cell(netcheck, fin, protocol.SideClient), inBand)
	e.Add(cell(netcheck, fin, protocol.SideServer), inBand)
	var claims []gate.TableEntry
	for _, side := range sides {
		// Only naive-recv, without the EINTR check, takes a signal for a
		// dead peer.
		e.Add(cell("naive-recv", storm, side), suites.ExpectFalsePositives)
		e.Add(cell("external:cmd="+examples("c/bin/select_recv"), storm, side), suites.ExpectSurvived)
		for _, det := range eintrDetectors[1:] {
			e.Add(cell(det, storm, side), suites.ExpectSurvived)
		}
		// In-band heart-beats detect a middlebox's lost data flow;
		// dedicated ones never do.
		e.Add(cell("heartbeat-inband", middlebox, side), suites.ExpectTheory)
		dedicated := cell("heartbeat-dedicated", middlebox, side)
		dedicated.Budget = 3 * time.Second
		e.Add(dedicated, gate.NeverDetect())
		// The C and Python programs measure as their Go twins. A twin's
		// reference is a strategy above where it is one, measured once.
		for _, tw := range twins() {
			ref, foreign := cell(tw.ref, tw.fault, side), cell(tw.foreign, tw.fault, side)
			ref.Budget, foreign.Budget, foreign.Sysctls = tw.budget, tw.budget, tw.sysctls
			refName, foreignName := e.Add(ref, suites.ExpectTheory), e.Add(foreign, suites.ExpectTheory)
			tolerance := tw.tolerance
			claims = append(claims, gate.Claim(fmt.Sprintf("measures %s as its Go twin %s: %s × %s", filepath.Base(tw.foreign), tw.ref, tw.fault, side),
				[]string{refName, foreignName}, func(rs map[string]*gate.Result) {
					suites.ExpectTwin(rs[refName], rs[foreignName], tolerance)
				}))
		}
	}
	return append(e.List(), claims...)
}

var _ = Describe("The reference text's detection strategies", Label("netns"), func() {
	gate.DescribeTable("decides on real packets as theory says, falls into the EINTR trap only without the EINTR check, and measures the C and Python programs as their Go twins", entries(), suites.MeasureTimeout)
})
