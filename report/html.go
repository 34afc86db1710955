package report

import (
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/halfopen/halfopen/capture"
)

// HTML writes the report as one self-contained HTML page (see RenderHTML),
// reading packet captures relative to the current directory.
func HTML(w io.Writer, r *Report) error {
	return RenderHTML(w, r, HTMLOptions{})
}

// HTMLOptions says where a page's packet captures are: Sample.Pcap is
// relative to the report, and a link in the page is relative to the page.
type HTMLOptions struct {
	// ReportDir is the directory of the report file; "" is the current one.
	ReportDir string
	// PageDir is the directory the page is written to; "" is the current one.
	PageDir string
}

// RenderHTML writes the report as one self-contained HTML page: inline
// CSS and inline SVG, no script, no web fonts, no network. It opens with
// the overview (the detector × fault matrix of each side, each cell
// coloured by its Outcome and linked to its details, then findings drawn
// from the measurements); then, per fault, every detector's samples on one
// logarithmic time axis with their predicted bands and a table of the
// cells; a packet timeline for each sample with a capture; the
// tolerance-vs-detection frontier, the idle overhead, the legends of
// rationales, notes and sysctl sets, and the environment.
func RenderHTML(w io.Writer, r *Report, opt HTMLOptions) error {
	d := newHTMLData(r, opt)
	if err := htmlPage().Execute(w, d); err != nil {
		return fmt.Errorf("render HTML: %w", err)
	}
	return nil
}

type htmlData struct {
	R       *Report
	Started string
	Calib   string
	// Throughput is Report.Throughput's line, "" without samples.
	Throughput string
	Outcomes   []htmlOutcome
	Matrices   []htmlMatrix
	Findings   []template.HTML
	Groups     []htmlGroup
	Frontier   template.HTML
	Overhead   template.HTML
	Rules      []htmlLegend
	Notes      []htmlLegend
	Sysctls    []htmlSysctlSet
	Legacy     [][2]string
	Cells      int
}

type htmlOutcome struct {
	Name, Class, Sample string
}

type htmlMatrix struct {
	Side    string
	Columns []htmlColumn
	Rows    []htmlMatrixRow
}

type htmlColumn struct {
	Label template.HTML // with break opportunities after commas
	Spec  string
}

type htmlMatrixRow struct {
	KindTitle string // set on the first row of a kind
	Fault     string
	Label     template.HTML
	Href      string
	Cells     []htmlMatrixCell
}

type htmlMatrixCell struct {
	Class, Text, Href, Title string
}

type htmlGroup struct {
	ID, Title, Fault, Side, Kind string
	Plot                         template.HTML
	Disturbance, Scale           bool
	Rows                         []htmlCellRow
}

type htmlCellRow struct {
	ID, Detector, Spec         string
	Class, Short, Why          string
	Predicted                  string
	Samples                    string
	P50, P95, Max, Reasons     string
	FP, QoS1, QoS2, QoS3, QoS4 string
	Overhead                   string
	Scale                      [7]string // scaleColumns, for a scale cell
	Refs                       []htmlRef
	Note                       string // shown inline when no other cell shares it
	Evidence                   []htmlEvidence
}

type htmlRef struct {
	ID, Text, Title string
}

type htmlEvidence struct {
	Title string
	Href  string
	SVG   template.HTML
	Error string
}

type htmlLegend struct {
	ID, Text string
	Cells    int
}

type htmlSysctlSet struct {
	ID    string
	Roles []sysctlRole
	Cells []htmlRef
}

func newHTMLData(r *Report, opt HTMLOptions) htmlData {
	o := newOverview(r)
	d := htmlData{R: r, Calib: "not measured", Cells: len(r.Cells)}
	if !r.Started.IsZero() {
		d.Started = r.Started.Format(time.RFC3339)
	}
	if q := r.Environment.CalibrationErrorMs; q != nil {
		d.Calib = quantilesText(*q)
	}
	if t := r.Throughput(); t.Samples > 0 {
		d.Throughput = t.String()
	}
	for _, oc := range []Outcome{OutcomeWithin, OutcomeMeasured, OutcomeNever, OutcomeSurvived, OutcomeFalsePositive, OutcomeOutside, OutcomeError} {
		info := outcomeInfo[oc]
		d.Outcomes = append(d.Outcomes, htmlOutcome{Name: info.name, Class: info.class, Sample: outcomeSample[oc]})
	}
	for _, m := range o.matrices {
		hm := htmlMatrix{Side: m.Side}
		for _, det := range m.Detectors {
			hm.Columns = append(hm.Columns, htmlColumn{Label: breakable(o.labels.of(det)), Spec: det})
		}
		var lastKind Kind
		for _, row := range m.Rows {
			hr := htmlMatrixRow{Fault: row.Fault, Label: breakable(faultTitle(o.labels, row.Fault, row.Phase)), Href: "#" + groupAnchor(m.Side, row.Fault, row.Phase, row.Kind)}
			if row.Kind != lastKind {
				hr.KindTitle = kindTitle(row.Kind)
				lastKind = row.Kind
			}
			for j, ci := range row.Cells {
				if ci < 0 {
					hr.Cells = append(hr.Cells, htmlMatrixCell{Class: "o-none"})
					continue
				}
				v := o.verdicts[ci]
				hr.Cells = append(hr.Cells, htmlMatrixCell{
					Class: outcomeInfo[v.Outcome].class, Text: v.Short, Href: "#" + cellAnchor(ci),
					Title: o.labels.of(m.Detectors[j]) + " × " + faultTitle(o.labels, row.Fault, row.Phase) + ": " + v.Why,
				})
			}
			hm.Rows = append(hm.Rows, hr)
		}
		d.Matrices = append(d.Matrices, hm)
	}
	for _, f := range o.findings {
		d.Findings = append(d.Findings, findingHTML(f))
	}
	for _, g := range faultGroups(r, o.matrices) {
		d.Groups = append(d.Groups, newHTMLGroup(r, o, g, opt))
	}
	if len(r.Frontier) > 0 {
		d.Frontier = frontierPlot(r.Frontier, o.labels)
	}
	d.Overhead = overheadPlot(r, o.labels)
	for i, e := range o.legends.Rules {
		d.Rules = append(d.Rules, htmlLegend{ID: fmt.Sprintf("R%d", i+1), Text: e.Text, Cells: e.Cells})
	}
	for i, e := range o.legends.Notes {
		d.Notes = append(d.Notes, htmlLegend{ID: fmt.Sprintf("N%d", i+1), Text: e.Text, Cells: e.Cells})
	}
	for i, s := range o.legends.Sysctls {
		hs := htmlSysctlSet{ID: fmt.Sprintf("S%d", i+1), Roles: s.Roles}
		for _, ci := range s.Cells {
			c := &r.Cells[ci]
			hs.Cells = append(hs.Cells, htmlRef{ID: cellAnchor(ci), Text: o.labels.of(c.Detector) + " × " + o.labels.of(c.Fault) + " (" + c.Side + ")"})
		}
		d.Sysctls = append(d.Sysctls, hs)
	}
	for _, k := range sortedKeys(r.Environment.Sysctls) {
		d.Legacy = append(d.Legacy, [2]string{k, r.Environment.Sysctls[k]})
	}
	return d
}

// outcomeSample is what the legend shows inside each outcome's swatch.
var outcomeSample = map[Outcome]string{
	OutcomeWithin: "3.6 s", OutcomeMeasured: "1.2 s", OutcomeNever: "never", OutcomeSurvived: "ok",
	OutcomeFalsePositive: "✗2", OutcomeOutside: "!", OutcomeError: "err",
}

func kindTitle(kind Kind) string {
	if t := kindTitles[kind]; t != "" {
		return t
	}
	return string(kind)
}

// breakable escapes a spec and lets the browser break it after its
// separators, so long specs wrap instead of widening the page.
func breakable(s string) template.HTML {
	e := esc(s)
	e = strings.ReplaceAll(e, ",", ",<wbr>")
	e = strings.ReplaceAll(e, ":", ":<wbr>")
	return template.HTML(e)
}

func findingHTML(f finding) template.HTML {
	var b strings.Builder
	parts := func(ps []findingPart) {
		for _, p := range ps {
			if p.Cell >= 0 {
				fmt.Fprintf(&b, `<a href="#%s">%s</a>`, cellAnchor(p.Cell), esc(p.Text))
			} else {
				b.WriteString(esc(p.Text))
			}
		}
	}
	b.WriteString("<strong>" + esc(f.Title) + ":</strong> ")
	parts(f.Parts)
	if len(f.Lines) > 0 {
		b.WriteString("<ul>")
		for _, l := range f.Lines {
			b.WriteString("<li>")
			parts(l)
			b.WriteString("</li>")
		}
		b.WriteString("</ul>")
	}
	return template.HTML(b.String())
}

func newHTMLGroup(r *Report, o *overview, g faultGroup, opt HTMLOptions) htmlGroup {
	hg := htmlGroup{
		ID: groupAnchor(g.Side, g.Fault, g.Phase, g.Kind), Title: g.heading(o.labels), Fault: g.Fault,
		Side: g.Side, Kind: kindTitle(g.Kind), Disturbance: g.Kind == KindDisturbance,
		Scale: g.Kind == KindScale,
	}
	var rows []plotRow
	for _, ci := range g.Cells {
		c := &r.Cells[ci]
		v := o.verdicts[ci]
		st := c.Stats()
		row := htmlCellRow{
			ID: cellAnchor(ci), Detector: o.labels.of(c.Detector), Spec: c.Detector,
			Class: outcomeInfo[v.Outcome].class, Short: v.Short, Why: v.Why,
			Predicted: predictedRange(c), Samples: samplesText(c),
			P50: secondsPtr(st.P50), P95: secondsPtr(st.P95), Max: secondsPtr(st.Max),
			Reasons: reasonsText(st.Reasons), FP: fmt.Sprint(c.FalsePositives),
			Overhead: overheadText(c.Overhead),
		}
		if row.Short == "" {
			row.Short = "·"
		}
		if hg.Disturbance {
			q := qosColumns(c)
			row.QoS1, row.QoS2, row.QoS3, row.QoS4 = q[0], q[1], q[2], q[3]
		}
		if hg.Scale {
			row.Scale = scaleColumns(c)
		}
		if id := o.legends.ruleRef(c); id != "" {
			row.Refs = append(row.Refs, htmlRef{ID: id, Text: id, Title: "why predicted: " + c.PredictedRule})
		}
		if id := o.legends.noteRef(c); id != "" {
			if o.legends.Notes[o.legends.note[c.Note]].Cells == 1 {
				row.Note = c.Note
			} else {
				row.Refs = append(row.Refs, htmlRef{ID: id, Text: id, Title: "note: " + c.Note})
			}
		}
		if id := o.legends.sysctlRef(c); id != "" {
			row.Refs = append(row.Refs, htmlRef{ID: id, Text: id, Title: "the kernel parameters this cell ran with"})
		}
		for si, s := range c.Samples {
			if s.Pcap == "" {
				continue
			}
			row.Evidence = append(row.Evidence, sampleEvidence(c, si, s, opt))
		}
		hg.Rows = append(hg.Rows, row)
		rows = append(rows, plotRow{Label: o.labels.of(c.Detector), Href: "#" + cellAnchor(ci), Title: c.Detector, Cell: c})
	}
	if g.Kind == KindDetection {
		hg.Plot = samplesPlot(rows, "times under "+hg.Title)
	}
	return hg
}

// sampleEvidence reads a sample's capture and draws its timeline.
func sampleEvidence(c *Cell, i int, s Sample, opt HTMLOptions) htmlEvidence {
	ev := htmlEvidence{Title: fmt.Sprintf("sample %d: %s", i, sampleWords(c, s))}
	file := s.Pcap
	if !filepath.IsAbs(file) {
		file = filepath.Join(opt.ReportDir, file)
	}
	if rel, err := relativeLink(opt.PageDir, file); err == nil {
		ev.Href = rel
	} else {
		ev.Href = filepath.ToSlash(file)
	}
	if _, err := os.Stat(file); err != nil {
		ev.Error = fmt.Sprintf("capture %s is missing: %v", s.Pcap, err)
		ev.Href = ""
		return ev
	}
	events, err := capture.ReadTimeline(file)
	if err != nil {
		ev.Error = err.Error()
		return ev
	}
	ev.Title += " · " + capture.Summary(events)
	ev.SVG = timelinePlot(events, s, "packets of sample "+fmt.Sprint(i)+" of "+c.Detector+" under "+c.Fault)
	return ev
}

// relativeLink returns file as a link from a page in pageDir.
func relativeLink(pageDir, file string) (string, error) {
	base, err := filepath.Abs(pageDir)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(base, abs)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

// sampleWords says what a sample did, for titles.
func sampleWords(c *Cell, s Sample) string {
	switch {
	case s.Error != "":
		return "error: " + s.Error
	case s.Detected && s.Seconds != nil:
		return "decided " + s.Reason + " after " + FormatSeconds(*s.Seconds) + marksWords(s)
	case c.Kind == KindDisturbance:
		if s.FalsePositives > 0 {
			return fmt.Sprintf("%s false positives", fmt.Sprint(s.FalsePositives)) + marksWords(s)
		}
		return "survived" + marksWords(s)
	}
	return "no decision within " + FormatSeconds(c.BudgetS) + marksWords(s)
}

// marksWords names a sample's marks: "; marked redial at +45 s".
func marksWords(s Sample) string {
	if len(s.Marks) == 0 {
		return ""
	}
	parts := make([]string, len(s.Marks))
	for i, m := range s.Marks {
		parts[i] = m.Name + " at " + signedSeconds(m.S)
	}
	return "; marked " + strings.Join(parts, ", ")
}

// htmlPage returns the report's page, page/overview.html.tmpl.
var htmlPage = parsePage("overview.html.tmpl", template.FuncMap{
	"ratio": ratioText, "secs": FormatSeconds, "ms": formatMillis, "inc": func(n int) int { return n + 1 },
})
