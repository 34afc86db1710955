package report

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// styleBlock is a page's inline stylesheet.
var styleBlock = regexp.MustCompile(`(?s)<style>\n(.*?)</style>`)

// classAttr is one class attribute, of HTML or of SVG.
var classAttr = regexp.MustCompile(` class="([^"]*)"`)

// hooks are the classes a page sets for structure only: no rule styles them.
var hooks = map[string]bool{"corner": true, "evrow": true, "legend-list": true}

// TestPagesShareOneStylesheet renders every kind of page (a report with
// disturbances and captures, a comparison of detection and of false
// positives) and checks that each inlines page/style.css unchanged and that
// every class it draws with has a rule there, so no page's look can drift
// from the others'.
func TestPagesShareOneStylesheet(t *testing.T) {
	css, err := os.ReadFile("page/style.css")
	if err != nil {
		t.Fatal(err)
	}
	dist := func(fps int, ms ...Mistake) Cell {
		return Cell{Detector: "heartbeat-inband:interval=200ms,misses=3", Fault: "router-restart:outage=1s", Side: "client", Kind: KindDisturbance,
			Samples: []Sample{{Reason: "survived", WindowS: 3}}, FalsePositives: fps, ObservedConnS: 600, Mistakes: ms}
	}
	timeline, err := Read("testdata/timeline/report.json")
	if err != nil {
		t.Fatal(err)
	}
	report := testdataReport(t)
	withSysctls(report)
	tests := []struct {
		name   string
		render func(*strings.Builder) error
	}{
		{"report", func(b *strings.Builder) error { return HTML(b, report) }},
		{"timeline", func(b *strings.Builder) error {
			return RenderHTML(b, timeline, HTMLOptions{ReportDir: "testdata/timeline", PageDir: "testdata/timeline"})
		}},
		{"compare detection", func(b *strings.Builder) error {
			return CompareHTML(b, Compare(reportOf(detectionCell(times(3, 3.2, 3.4)...)), reportOf(detectionCell(times(5, 5.2, 5.4)...)), CompareOptions{}))
		}},
		{"compare false positives", func(b *strings.Builder) error {
			return CompareHTML(b, Compare(reportOf(dist(0)), reportOf(dist(9, Mistake{StartS: 0.5, EndS: 1.5})), CompareOptions{}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := tt.render(&b); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			styles := styleBlock.FindAllStringSubmatch(page, -1)
			if len(styles) != 1 || styles[0][1] != string(css) {
				t.Fatalf("the page has %d style blocks; want one, page/style.css unchanged", len(styles))
			}
			unstyled := map[string]bool{}
			for _, m := range classAttr.FindAllStringSubmatch(page, -1) {
				for _, c := range strings.Fields(m[1]) {
					if !hooks[c] && !regexp.MustCompile(`\.`+regexp.QuoteMeta(c)+`\b`).Match(css) {
						unstyled[c] = true
					}
				}
			}
			if len(unstyled) > 0 {
				t.Errorf("classes without a rule in page/style.css: %v", sortedKeys(unstyled))
			}
		})
	}
}
