package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/capture"
)

// withSysctls gives the test report's cells per-cell sysctls: the first
// two share one set, the third has its own.
func withSysctls(r *Report) {
	shared := map[string]map[string]string{
		"watcher": {"net.ipv4.tcp_retries2": "15", "net.ipv4.tcp_keepalive_time": "7200"},
		"peer":    {"net.ipv4.tcp_retries2": "15", "net.ipv4.tcp_keepalive_time": "7200"},
	}
	for i := range r.Cells {
		r.Cells[i].Sysctls = shared
	}
	r.Cells[len(r.Cells)-1].Sysctls = map[string]map[string]string{"watcher": {"net.ipv4.tcp_retries2": "5"}, "router": {"net.netfilter.nf_conntrack_tcp_loose": "0"}}
}

// floatNoise matches a number printed with more digits than anyone reads.
var floatNoise = regexp.MustCompile(`\d\.\d{5,}`)

func TestMarkdown(t *testing.T) {
	r := testdataReport(t)
	withSysctls(r)
	r.Summarise()
	var b bytes.Buffer
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, w := range []string{
		"profile quick",
		"harness error p50 50 µs, p99 400 µs, max 710 µs (n=200)",
		"## Overview",
		"### Watcher is the client",
		"### Watcher is the server",
		"| fault \\ detector | D1 | D2 |",
		// The keepalive cell: every sample inside 3–4 s, p50 3.32 s.
		"[🟢 3.32 s](#c0)",
		// One censored and one errored sample: an error outranks.
		"[❌ err](#c1)",
		"[🟠 ✗2](#c2)",
		"D1 `keepalive-tuned:cnt=3,idle=1s,intvl=1s`",
		"### Findings",
		"- **Under router-restart:** 1 detector dropped a live connection.",
		"  - [heartbeat-inband:interval=200ms,misses=3](#c2): 2 false positives in 4 samples, at outage=300ms",
		"- **Against theory:** 1 cell had samples the harness could not measure.",
		"## Per fault",
		"### <a id=\"f-client-det-peer-cable-pull\"></a>peer-cable-pull · watcher is the client · Detection: the peer is dead",
		"| <a id=\"c0\"></a>keepalive-tuned:cnt=3,idle=1s,intvl=1s | 🟢 3.32 s | 3–4 s | 3 s, 3.51 s, 3.98 s, 3.21 s, 3.77 s, 3.32 s | 3.32 s | 3.98 s | 3.98 s | ETIMEDOUT×6 |",
		"1 of 6 samples could not be measured (sample 5: peer never said connected)",
		"- <a id=\"S1\"></a>**S1** (2 cells): peer, watcher: `net.ipv4.tcp_keepalive_time=7200` `net.ipv4.tcp_retries2=15`;",
		"- <a id=\"S2\"></a>**S2** (1 cell): router: `net.netfilter.nf_conntrack_tcp_loose=0`; watcher: `net.ipv4.tcp_retries2=5`;",
		"### Sysctls of the whole run",
		"| `watcher/net.ipv4.tcp_retries2` | `15` |",
		"## Tolerance vs. detection",
		"| 2.9 s | 3.4 s | 0.85 |",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q", w)
		}
	}
	if m := floatNoise.FindString(md); m != "" {
		t.Errorf("markdown prints float noise: %q", m)
	}
	// A rationale is printed once, in the legend, however many cells
	// share it.
	for _, c := range r.Cells {
		if c.PredictedRule != "" && strings.Count(md, c.PredictedRule) != 1 {
			t.Errorf("rationale %q printed %d times", c.PredictedRule, strings.Count(md, c.PredictedRule))
		}
	}
	if strings.Contains(md, "Incomplete") {
		t.Error("a complete report is marked incomplete")
	}
	if t.Failed() {
		t.Log(md)
	}

	r.Complete = false
	r.Cells[0].Note = "a | b"
	b.Reset()
	Markdown(&b, r)
	if !strings.Contains(b.String(), "Incomplete") || !strings.Contains(b.String(), `a \| b`) {
		t.Error("incomplete report not marked, or a pipe not escaped")
	}
}

func TestMarkdownBaseline(t *testing.T) {
	r, err := Read("../ci/baseline.json")
	if err != nil {
		t.Fatal(err)
	}
	r.Summarise()
	var b bytes.Buffer
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	if m := floatNoise.FindString(md); m != "" {
		t.Errorf("markdown prints float noise: %q", m)
	}
	// The overview comes before any per-fault table.
	if o, f := strings.Index(md, "## Overview"), strings.Index(md, "## Per fault"); o < 0 || f < o {
		t.Errorf("overview at %d, per-fault details at %d", o, f)
	}
	// Every link to a cell or a fault lands on an anchor of the page.
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`<a id="([^"]+)"></a>`).FindAllStringSubmatch(md, -1) {
		anchors[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(md, -1) {
		if !anchors[m[1]] {
			t.Errorf("link to #%s has no anchor", m[1])
			break
		}
	}
	const limit = 150 << 10
	if b.Len() > limit {
		t.Errorf("markdown of the baseline is %d bytes, over %d", b.Len(), limit)
	}
}

var svgBlock = regexp.MustCompile(`(?s)<svg.*?</svg>`)

func TestHTML(t *testing.T) {
	r := testdataReport(t)
	withSysctls(r)
	r.Cells[0].Note = `<script>alert("x")</script> & more`
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, banned := range []string{"<script", "http:", "https:", "@import", "url(", "<link", "@font-face", "<img", "<iframe"} {
		if strings.Contains(page, banned) {
			t.Errorf("page holds %q: it must be self-contained and script-free", banned)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;") {
		t.Error("a note was not escaped")
	}
	svgs := svgBlock.FindAllString(page, -1)
	// Two per-fault plots (a detection fault per side), the frontier and
	// the overhead chart.
	if len(svgs) != 4 {
		t.Fatalf("%d SVG drawings, want 4", len(svgs))
	}
	for i, s := range svgs {
		if err := wellFormed(s); err != nil {
			t.Errorf("SVG %d is not well-formed XML: %v", i, err)
		}
	}
	// The server's host-crash plot: four dots, one censored arrow, one
	// error cross, and the predicted band.
	for class, want := range map[string]int{`class="dot"`: 4, `class="arrow"`: 1, `class="err"`: 1, `class="band"`: 1} {
		if n := strings.Count(svgs[1], class); n != want {
			t.Errorf("host-crash plot: %d of %s, want %d", n, class, want)
		}
	}
	if o, f := strings.Index(page, `id="overview"`), strings.Index(page, `id="faults"`); o < 0 || f < o {
		t.Error("the overview does not come first")
	}
	for _, w := range []string{
		"<style>", `class="matrix"`, `<td class="o-within"><a href="#c0"`, `class="o-error"`, `class="o-fp"`,
		`id="findings"`, `id="R1"`, `id="S1"`, `id="S2"`, "Sysctls of the whole run",
		"watcher/net.ipv4.tcp_retries2", "Tolerance vs. detection", "Overhead while idle", "mistakes/conn-h",
	} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if m := floatNoise.FindString(page); m != "" {
		t.Errorf("page prints float noise: %q", m)
	}
	// Every in-page link lands on an id.
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(` id="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		ids[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`href="#([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if !ids[m[1]] {
			t.Errorf("link to #%s has no target", m[1])
		}
	}
}

// TestEveryCellHasDetails adds a calibration cell, which no matrix shows,
// and checks that both renderers still give every cell its details.
func TestEveryCellHasDetails(t *testing.T) {
	r := testdataReport(t)
	r.Cells = append(r.Cells, Cell{Detector: "scheduled-decision", Kind: KindCalibration, Samples: times(0.0001, 0.0002)})
	var md, page bytes.Buffer
	if err := Markdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&page, r); err != nil {
		t.Fatal(err)
	}
	for i := range r.Cells {
		if !strings.Contains(md.String(), fmt.Sprintf(`<a id="c%d"></a>`, i)) {
			t.Errorf("markdown has no details for cell %d", i)
		}
		if !strings.Contains(page.String(), fmt.Sprintf(`<tr id="c%d">`, i)) {
			t.Errorf("page has no details for cell %d", i)
		}
	}
	if !strings.Contains(md.String(), "### <a id=\"f--cal-\"></a>Calibration\n") {
		t.Error("the calibration group has no heading of its own")
	}
}

func TestHTMLEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, &Report{Schema: SchemaV1}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<svg") {
		t.Error("an empty report drew a plot")
	}
}

func TestSamplesPlotLogAxis(t *testing.T) {
	// keepalive-default's real prediction is 7875 s, measured with scaled
	// sysctls in seconds, beside a heart-beat deciding in half a second.
	slow := detectionCell(times(9.2, 9.8, 10.1)...)
	slow.PredictedS = &[2]float64{7875, 7875}
	slow.BudgetS = 30
	fast := detectionCell(times(0.45, 0.52)...)
	fast.PredictedS = &[2]float64{0.4, 0.6}
	svg := string(samplesPlot([]plotRow{{Label: "slow", Cell: &slow}, {Label: "fast", Href: "#c1", Cell: &fast}}, "test"))
	if err := wellFormed(svg); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"log scale", ">100 ms<", ">1 s<", ">1 min<", ">1 h<", `href="#c1"`} {
		if !strings.Contains(svg, w) {
			t.Errorf("plot lacks %q", w)
		}
	}
	// 9.2–10.1 s are far outside 7875 s: red dots.
	if n := strings.Count(svg, "dot dot-out"); n != 3 {
		t.Errorf("%d dots outside the prediction, want 3", n)
	}
}

func TestAxis(t *testing.T) {
	a := newAxis([]float64{0.4, 3.9, 20}, 0, 100)
	if a.log || a.lo != 0 || a.hi < 20 || a.pos(0) != 0 || a.pos(a.hi) != 100 {
		t.Errorf("linear axis %+v", a)
	}
	ticks := a.ticks()
	if ticks[0] != 0 || ticks[len(ticks)-1] != a.hi {
		t.Errorf("ticks %v", ticks)
	}
	l := newAxis([]float64{0.5, 7875}, 0, 100)
	if !l.log || l.lo != 0.1 || l.hi != 10000 || l.pos(0) != 0 || l.pos(1e6) != 100 {
		t.Errorf("log axis %+v", l)
	}
	if got := l.ticks(); len(got) != 6 || got[0] != 0.1 || got[3] != 60 || got[5] != 3600 {
		t.Errorf("log ticks %v, want 0.1 1 10 60 600 3600", got)
	}
	for _, tt := range []struct{ max, step float64 }{{10, 2}, {1, 0.2}, {26, 10}, {0, 1}, {7, 2}} {
		if got := niceStep(tt.max); !near(got, tt.step) {
			t.Errorf("niceStep(%v) = %v, want %v", tt.max, got, tt.step)
		}
	}
}

func wellFormed(s string) error {
	dec := xml.NewDecoder(strings.NewReader(s))
	for {
		if _, err := dec.Token(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// junitDoc is the part of JUnit XML the tests read back.
type junitDoc struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Cases    []struct {
			Classname string `xml:"classname,attr"`
			Name      string `xml:"name,attr"`
			Failure   *struct {
				Type    string `xml:"type,attr"`
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestJUnit(t *testing.T) {
	r := testdataReport(t)
	b, err := ReadBudgets("testdata/budgets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := CheckBudgets(r, b)
	tests := []struct {
		name     string
		gate     *BudgetResult
		tests    int
		failures int
		failed   map[string]string // testcase name → failure type
	}{
		{"without budgets", nil, 3, 1, map[string]string{"host-crash (server)": "sample-error"}},
		{"with budgets", &g, 4, 3, map[string]string{
			"host-crash (server)":                  "budget,sample-error",
			"router-restart:outage=300ms (client)": "budget",
			"keepalive-default × host-crash":       "budget",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := JUnit(&out, r, tt.gate); err != nil {
				t.Fatal(err)
			}
			var doc junitDoc
			if err := xml.Unmarshal(out.Bytes(), &doc); err != nil {
				t.Fatalf("not XML: %v\n%s", err, out.String())
			}
			if doc.Tests != tt.tests || doc.Failures != tt.failures {
				t.Errorf("tests %d failures %d, want %d %d", doc.Tests, doc.Failures, tt.tests, tt.failures)
			}
			failed := map[string]string{}
			for _, s := range doc.Suites {
				for _, c := range s.Cases {
					if c.Classname == "" || c.Name == "" {
						t.Errorf("testcase without classname or name in %s", s.Name)
					}
					if c.Failure != nil {
						failed[c.Name] = c.Failure.Type
					}
				}
			}
			if len(failed) != len(tt.failed) {
				t.Errorf("failed %v, want %v", failed, tt.failed)
			}
			for name, typ := range tt.failed {
				if failed[name] != typ {
					t.Errorf("testcase %q failure type %q, want %q", name, failed[name], typ)
				}
			}
			if !strings.Contains(out.String(), `classname="keepalive-tuned:cnt=3,idle=1s,intvl=1s" name="peer-cable-pull (client)"`) {
				t.Error("classname is not the detector, or name not fault and side")
			}
			if !strings.Contains(out.String(), "sample 5: peer never said connected") {
				t.Error("the sample error is not in the failure")
			}
		})
	}
}

func TestThinEvents(t *testing.T) {
	var evs []capture.Event
	for i := range 5000 {
		k := capture.KindData
		if i%1000 == 0 {
			k = capture.KindKeepalive
		}
		evs = append(evs, capture.Event{Ns: int64(i), Kind: k})
	}
	tests := []struct {
		limit, want, notable int
	}{
		{10000, 5000, 5},
		{1500, 1500, 5},
		{3, 6, 5}, // every notable event stays, and one routine one
	}
	for _, tt := range tests {
		got := thinEvents(evs, tt.limit)
		notable := 0
		for _, e := range got {
			if e.Kind == capture.KindKeepalive {
				notable++
			}
		}
		if len(got) > tt.want || notable != tt.notable {
			t.Errorf("limit %d: %d events (%d notable), want at most %d with %d notable", tt.limit, len(got), notable, tt.want, tt.notable)
		}
	}
}

func TestHTMLTimeline(t *testing.T) {
	r, err := Read("testdata/timeline/report.json")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := RenderHTML(&b, r, HTMLOptions{ReportDir: "testdata/timeline", PageDir: "testdata/timeline"}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	// The measured capture: three keepalive probes after the fault, the
	// fault and decision lines, and a link to the pcapng beside the page.
	for _, w := range []string{`href="sample-0.pcapng"`, "3 keepalive", `class="fault"`, `class="decide"`, "decided ETIMEDOUT at +4.1 s"} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if n := strings.Count(page, `class="ev-keepalive"`); n != 4 { // three probes and the legend's swatch
		t.Errorf("%d keepalive marks, want 3 and a legend", n)
	}
	// A capture that is missing is said, not linked.
	r.Cells[0].Samples[0].Pcap = "gone.pcapng"
	b.Reset()
	if err := RenderHTML(&b, r, HTMLOptions{ReportDir: "testdata/timeline"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "capture gone.pcapng is missing") || strings.Contains(b.String(), `href="testdata/timeline/gone.pcapng"`) {
		t.Error("a missing capture is linked or not reported")
	}
}
