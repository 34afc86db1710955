package capture_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/halfopen/halfopen/capture"
	_ "github.com/halfopen/halfopen/detectors"
	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/internal/version"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// TestMain dispatches agent mode first: the lab re-executes this test
// binary as the watcher and the peer.
func TestMain(m *testing.M) {
	harness.MaybeRunAgent()
	os.Exit(m.Run())
}

// TestCaptureShowsKeepaliveProbes captures the router's two ports while a
// keepalive 1/1/3 watcher loses its peer to a blackhole, the reference
// text's case and the lab notes' measurement (ETIMEDOUT after 3.57–3.61 s):
//
//	[peer] ==veth== to-peer [router: nftables drop] to-watcher ==veth== [watcher]
//
// The timeline must show the watcher's probes arriving at the router on
// to-watcher, intvl apart, never forwarded to the peer, and nothing from
// the peer after the fault; the decision follows the last probe.
//
// With HALFOPEN_CAPTURE_TESTDATA=DIR it also writes DIR/report.json (a
// one-sample v1 report) and DIR/sample-0.pcapng, the report package's
// test data for its timeline.
func TestCaptureShowsKeepaliveProbes(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skip(err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := harness.NewRun()
	t.Cleanup(func() {
		if err := run.Close(); err != nil {
			t.Errorf("close run: %v", err)
		}
	})
	lab, err := run.NewLab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	const detector = "keepalive-tuned:idle=1s,intvl=1s,cnt=3"
	const limit = 1 << 20
	c, err := capture.Start(ctx, lab.Host(topo.Router), []string{topo.RouterPeerLink, topo.RouterWatchLink}, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	// A second capture of the same ports at once, with room for the file's
	// header and a few packets only: it must keep to its limit.
	const smallLimit = 700
	small, err := capture.Start(ctx, lab.Host(topo.Router), []string{topo.RouterPeerLink, topo.RouterWatchLink}, smallLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { small.Stop() })
	startNs := protocol.Now()
	conn, err := harness.Connect(ctx, lab, detector, protocol.SideClient, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := conn.Agents[topo.Watcher]
	flt, _, err := harness.NewFault("blackhole")
	if err != nil {
		t.Fatal(err)
	}
	_, at, err := flt.Inject(ctx, lab, conn)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	dead, err := w.WaitEvent(wctx, protocol.EventDead)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := small.Stop(); err != nil {
		t.Fatal(err)
	}
	stopNs := protocol.Now()
	dir := t.TempDir()
	if d := os.Getenv("HALFOPEN_CAPTURE_TESTDATA"); d != "" {
		dir = d
	}
	path := filepath.Join(dir, "sample-0.pcapng")
	if err := c.WritePcapng(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() > limit {
		t.Fatalf("pcapng %v, size over the %d-byte limit or missing: %v", fi, limit, err)
	}
	events, err := capture.ReadTimeline(path)
	if err != nil {
		t.Fatal(err)
	}
	smallPath := filepath.Join(t.TempDir(), "small.pcapng")
	if err := small.WritePcapng(smallPath); err != nil {
		t.Fatal(err)
	}
	kept, dropped := small.Packets()
	fi, err := os.Stat(smallPath)
	if err != nil || fi.Size() > smallLimit || kept == 0 || dropped == 0 {
		t.Errorf("limited capture: %d bytes (limit %d), %d packets kept, %d not (err %v); want some of each within the limit", fi.Size(), smallLimit, kept, dropped, err)
	}
	// Its readers keep the first packets each of them reads; the IP ones
	// (not ARP) come back.
	if first, err := capture.ReadTimeline(smallPath); err != nil || len(first) > kept {
		t.Errorf("limited capture reads back as %v (err %v), want at most its %d packets", first, err, kept)
	}
	defer func() {
		if t.Failed() {
			t.Logf("fault at %d, decision %s at %d", at, dead.Reason, dead.TNs)
			for _, e := range events {
				t.Log(e)
			}
		}
	}()

	watcher := topo.WatcherAddr.String()
	var probes []capture.Event
	var syns int
	for _, e := range events {
		// Every instant is CLOCK_MONOTONIC, inside the capture.
		if e.Ns < startNs || e.Ns > stopNs {
			t.Errorf("event at %d outside the capture [%d, %d]: %v", e.Ns, startNs, stopNs, e)
		}
		if e.Kind == capture.KindSYN {
			syns++
		}
		if e.Ns < at {
			continue
		}
		from := e.Src[:len(watcher)] == watcher
		switch {
		case e.Iface == topo.RouterPeerLink:
			t.Errorf("after the blackhole the router forwarded %v", e)
		case !from:
			t.Errorf("after the blackhole the peer's side sent %v", e)
		case e.Kind == capture.KindKeepalive:
			probes = append(probes, e)
		}
	}
	if syns < 2 {
		t.Errorf("%d SYN sightings, want the handshake on both ports", syns)
	}
	if len(probes) < 3 {
		t.Fatalf("%d keepalive probes after the fault, want cnt=3", len(probes))
	}
	for i := 1; i < len(probes); i++ {
		gap := time.Duration(probes[i].Ns - probes[i-1].Ns)
		if gap < 900*time.Millisecond || gap > 1300*time.Millisecond {
			t.Errorf("probes %d and %d are %v apart, want intvl=1s", i-1, i, gap)
		}
	}
	last := probes[len(probes)-1]
	if gap := time.Duration(dead.TNs - last.Ns); gap < 0 || gap > 1300*time.Millisecond {
		t.Errorf("decision %v after the last probe, want within one intvl", gap)
	}

	if os.Getenv("HALFOPEN_CAPTURE_TESTDATA") != "" {
		writeTestReport(t, dir, detector, at, dead)
	}
}

// writeTestReport writes the one-sample report of this measurement.
func writeTestReport(t *testing.T, dir, detector string, at int64, dead protocol.Event) {
	canon, err := harness.CanonicalDetector(detector)
	if err != nil {
		t.Fatal(err)
	}
	secs := protocol.Seconds(dead.TNs - at)
	r := &report.Report{
		Schema: report.SchemaV1, Profile: "capture-test", Started: time.Now().UTC().Truncate(time.Second), Seed: 1, Complete: true,
		Environment: report.Environment{Kernel: kernel(), Go: "go", Halfopen: version.Version},
		Cells: []report.Cell{{
			Detector: canon, Fault: "blackhole", Side: "client", Kind: report.KindDetection, Path: "direct",
			BudgetS: 10, PredictedS: &[2]float64{3, 4}, Expect: "detect", Reasons: []string{"ETIMEDOUT"},
			PredictedRule: "tcp_keepalive_timer(): first probe within idle of the last segment, then cnt probes intvl apart: [intvl·cnt, idle + intvl·cnt]",
			Samples: []report.Sample{{
				Detected: true, Seconds: &secs, Reason: dead.Reason, Seed: 1,
				InjectedNs: at, DecidedNs: dead.TNs, Pcap: "sample-0.pcapng",
			}},
		}},
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return string(b[:len(b)-1])
}
