package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"regexp"
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	r := testdataReport(t)
	r.Summarise()
	var b bytes.Buffer
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, w := range []string{
		"| kernel | 6.8.0-45-generic |",
		"| harness error | p50 0.05 ms, p99 0.4 ms, max 0.71 ms (n=200) |",
		"| scheduled-decision |",
		"| `watcher/net.ipv4.tcp_retries2` | `15` |",
		"## Detection: the peer is dead",
		"## Disturbances: the peer is alive",
		"nearest-rank",
		// detector, fault, side, predicted, n, p50, p95, max, censored, errors, reasons, fp, observed, overhead
		"| keepalive-tuned:cnt=3,idle=1s,intvl=1s | peer-cable-pull | client | 3–4s ([intvl·cnt, idle + intvl·cnt]) | 6 | 3.318 | 3.981 | 3.981 | 0 | 0 | ETIMEDOUT×6 | 0 | 0 | 120 pkt/min, 7920 B/min, 0.01% CPU |",
		"| 6 | 0.451 | 0.598 | 0.598 | 1 (> 5s) | 1 | heartbeat-timeout×4 |",
		"| never | 4 |",
		"| 30 | 15s | 0.5s | 0.9958 |",
		"## Tolerance vs. detection",
		"| 2.9s | 3.4s | 0.85 |",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q", w)
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

var svgBlock = regexp.MustCompile(`(?s)<svg.*?</svg>`)

func TestHTML(t *testing.T) {
	r := testdataReport(t)
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
	// Two detection strips, the frontier and the overhead chart.
	if len(svgs) != 4 {
		t.Fatalf("%d SVG drawings, want 4", len(svgs))
	}
	for i, s := range svgs {
		if err := wellFormed(s); err != nil {
			t.Errorf("SVG %d is not well-formed XML: %v", i, err)
		}
	}
	// The second strip has one censored sample: one arrow, and its band.
	if n := strings.Count(svgs[1], `class="arrow"`); n != 1 {
		t.Errorf("%d arrows, want 1", n)
	}
	if n := strings.Count(svgs[1], `class="dot"`); n != 4 {
		t.Errorf("%d dots, want 4", n)
	}
	if !strings.Contains(svgs[1], `class="band"`) || !strings.Contains(svgs[1], "budget 5s") {
		t.Error("strip lacks the predicted band or the budget")
	}
	for _, w := range []string{"<style>", "Sysctls in the lab", "watcher/net.ipv4.tcp_retries2", "Tolerance vs. detection", "Overhead while idle", "mistakes/conn-h"} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func TestHTMLEmptyAndLogScale(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, &Report{Schema: SchemaV1}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<svg") {
		t.Error("an empty report drew a plot")
	}
	// keepalive-default's real prediction is 7875 s, measured with scaled
	// sysctls in seconds: the axis turns logarithmic.
	c := detectionCell(times(9.2, 9.8, 10.1)...)
	c.PredictedS = &[2]float64{7875, 7875}
	c.BudgetS = 30
	svg := string(stripPlot(&c))
	if !strings.Contains(svg, "log scale") {
		t.Error("a range of three decades was drawn on a linear axis")
	}
	if err := wellFormed(svg); err != nil {
		t.Error(err)
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
	g := Gate(r, b)
	tests := []struct {
		name     string
		gate     *GateResult
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
