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
	if err := htmlPage.Execute(w, d); err != nil {
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
			hr := htmlMatrixRow{Fault: row.Fault, Label: breakable(o.labels.of(row.Fault)), Href: "#" + groupAnchor(m.Side, row.Fault, row.Kind)}
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
					Title: o.labels.of(m.Detectors[j]) + " × " + o.labels.of(row.Fault) + ": " + v.Why,
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
		ID: groupAnchor(g.Side, g.Fault, g.Kind), Title: g.heading(o.labels), Fault: g.Fault,
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
		return "decided " + s.Reason + " after " + FormatSeconds(*s.Seconds)
	case c.Kind == KindDisturbance:
		if s.FalsePositives > 0 {
			return fmt.Sprintf("%s false positives", fmt.Sprint(s.FalsePositives))
		}
		return "survived"
	}
	return "no decision within " + FormatSeconds(c.BudgetS)
}

var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"ratio": ratioText, "secs": FormatSeconds, "ms": formatMillis, "inc": func(n int) int { return n + 1 },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>halfopen report{{with .R.Profile}} · {{.}}{{end}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px auto;max-width:1240px;padding:0 12px;color:#1d1d1f;background:#fff}
h1{font-size:21px;margin:0 0 4px}h2{font-size:18px;margin-top:30px;border-bottom:1px solid #ddd}h3{font-size:15px;margin:22px 0 2px}
a{color:#1f5fa8;text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse;margin:8px 0 16px;font-size:12.5px}
th,td{border:1px solid #d8d8d8;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;overflow-wrap:anywhere}
.warn{background:#fff4d6;border:1px solid #e8c15a;padding:8px 12px}
.sub{color:#555;font-size:12px;margin:0}
.run{color:#444;font-size:12.5px;margin:0 0 8px}
.scroll{max-width:100%;overflow-x:auto}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin:6px 0}
.legend span{white-space:nowrap}
.sw{display:inline-block;min-width:34px;text-align:center;border-radius:3px;padding:0 3px;margin-right:4px;font-size:11px}
.o-within{background:#c9ecd0;color:#14532d}.o-measured{background:#cfe3f7;color:#173d66}
.o-never{background:#ececec;color:#555}.o-survived{background:#e3f4e6;color:#2f6b3a}
.o-fp{background:#ffd9a8;color:#7a3b00}.o-outside{background:#f7b6b0;color:#7f1d1d;font-weight:600}
.o-error{background:#e8c7f0;color:#5b1a6b;font-weight:600}.o-none{background:#fff}
table.matrix{font-size:10.5px;margin:6px 0 14px}
table.matrix th,table.matrix td{padding:1px 2px}
table.matrix td{text-align:center;white-space:nowrap;min-width:28px}
table.matrix td a{display:block;color:inherit}
table.matrix th.vh{vertical-align:bottom;padding:4px 1px;font-weight:500}
table.matrix th.vh div{writing-mode:vertical-rl;transform:rotate(180deg);max-height:240px;line-height:1.1;text-align:left}
table.matrix th.rh{font-weight:500;min-width:150px;max-width:210px;white-space:normal}
table.matrix tr.kind th{background:#e9eef5;font-weight:600;text-align:left}
ul.findings{padding-left:20px}ul.findings li{margin:4px 0}
table.cells td.o{white-space:nowrap}
table.cells td.samples{max-width:260px}
.refs a{margin-right:4px;font-size:11px}
.ev{margin:4px 0 8px}
.plot{display:block;max-width:100%;height:auto}
.plot .frame{fill:#fafafa;stroke:#ccc}
.plot .band{fill:#9bd3a2;fill-opacity:.55;stroke:none}
.plot .tick{stroke:#888}.plot .grid{stroke:#e4e4e4}
.plot .lbl{font:11px system-ui,sans-serif;fill:#444}
.plot a .lbl{fill:#1f5fa8}
.plot .budget{stroke:#c0392b;stroke-width:1.2}
.plot .budget-lbl{fill:#c0392b}
.plot .dot{fill:#1f5fa8;fill-opacity:.85}.plot .dot-out{fill:#c0392b}
.plot .arrow{stroke:#c0392b;stroke-width:1.5;fill:none}
.plot .err{stroke:#8e44ad;stroke-width:2}
.plot .diag{stroke:#555;stroke-dasharray:5 4}
.plot .impossible{fill:#eee;stroke:none}
.plot .pt{fill:#8e44ad}.plot .pt-lbl{font-size:10px}
.plot .bar{fill:#2e86c1}
.plot .lane{paint-order:stroke;stroke:#fafafa;stroke-width:4px;stroke-linejoin:round}
.plot .fault{stroke:#c0392b;stroke-width:1.5;stroke-dasharray:4 3}.plot .decide{stroke:#1d6b2f;stroke-width:1.5}
.plot .ev-data{fill:#1f5fa8}.plot .ev-ack{fill:#9aa7b4}.plot .ev-keepalive{fill:#e67e22}.plot .ev-retransmission{fill:#c0392b}
.plot .ev-rst{fill:#6c1b8f}.plot .ev-fin{fill:#117a65}.plot .ev-syn{fill:#34495e}.plot .ev-icmp{fill:#d4ac0d}.plot .ev-urgent{fill:#af601a}.plot .ev-other{fill:#777}
</style>
</head>
<body>
<h1>halfopen report</h1>
<p class="run">{{with .R.Profile}}profile {{.}} · {{end}}{{with .Started}}{{.}} · {{end}}seed {{.R.Seed}}{{with .R.Shard}} · shard {{.}}{{end}} · {{.Cells}} cells{{with .R.Environment.Kernel}} · kernel {{.}}{{end}} · harness error {{.Calib}} · <a href="#environment">environment</a></p>
{{if not .R.Complete}}<p class="warn"><strong>Incomplete:</strong> this run was still writing, or was stopped, when this page was made; every sample it measured is here.</p>{{end}}
<h2 id="overview">Overview</h2>
<div class="legend">{{range .Outcomes}}<span><span class="sw {{.Class}}">{{.Sample}}</span>{{.Name}}</span>{{end}}</div>
{{range .Matrices}}<h3>Watcher is the {{.Side}}</h3>
<div class="scroll" id="matrix-{{.Side}}"><table class="matrix">
<tr><th class="corner">fault \ detector</th>{{range .Columns}}<th class="vh" title="{{.Spec}}"><div>{{.Label}}</div></th>{{end}}</tr>
{{range .Rows}}{{if .KindTitle}}<tr class="kind"><th colspan="{{len .Cells | inc}}">{{.KindTitle}}</th></tr>
{{end}}<tr><th class="rh" title="{{.Fault}}"><a href="{{.Href}}">{{.Label}}</a></th>{{range .Cells}}<td class="{{.Class}}">{{if .Href}}<a href="{{.Href}}" title="{{.Title}}">{{.Text}}</a>{{end}}</td>{{end}}</tr>
{{end}}</table></div>
{{end}}
{{with .Findings}}<h3 id="findings">Findings</h3>
<ul class="findings">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{with .Groups}}<h2 id="faults">Per fault</h2>
<p class="sub">Each fault's detectors on one logarithmic time axis: dots are samples (red when outside the prediction), the green band the predicted range, the red tick each cell's budget, arrows censored samples (no decision within the budget), purple crosses errors. R, N and S link to the rationale of the prediction, the cell's note and its kernel parameters.</p>
{{range .}}<section id="{{.ID}}"><h3>{{.Title}}</h3>
{{with .Fault}}<p class="sub"><code>{{.}}</code></p>{{end}}
{{.Plot}}
<div class="scroll"><table class="cells">
{{if .Disturbance}}<tr><th>detector</th><th>outcome</th><th>samples</th><th>false positives</th><th>mistakes/conn-h</th><th>T_MR</th><th>T_M</th><th>P_A</th><th>overhead while idle</th><th>more</th></tr>
{{range .Rows}}<tr id="{{.ID}}"><td title="{{.Spec}}">{{.Detector}}</td><td class="o {{.Class}}" title="{{.Why}}">{{.Short}}</td><td class="samples">{{.Samples}}</td><td class="num">{{.FP}}</td><td class="num">{{.QoS1}}</td><td class="num">{{.QoS2}}</td><td class="num">{{.QoS3}}</td><td class="num">{{.QoS4}}</td><td>{{.Overhead}}</td><td class="refs">{{range .Refs}}<a href="#{{.ID}}" title="{{.Title}}">{{.Text}}</a>{{end}}{{.Note}}</td></tr>
{{template "evidence" .}}{{end}}
{{else if .Scale}}<tr><th>detector</th><th>design</th><th>connections</th><th>outcome</th><th>predicted</th><th>freed</th><th>p50</th><th>p99</th><th>max</th><th>memory per connection</th><th>overhead while idle</th><th>more</th></tr>
{{range .Rows}}<tr id="{{.ID}}"><td title="{{.Spec}}">{{.Detector}}</td><td>{{index .Scale 0}}</td><td class="num">{{index .Scale 1}}</td><td class="o {{.Class}}" title="{{.Why}}">{{.Short}}</td><td class="num">{{.Predicted}}</td><td class="num">{{index .Scale 2}}</td><td class="num">{{index .Scale 3}}</td><td class="num">{{index .Scale 4}}</td><td class="num">{{index .Scale 5}}</td><td class="num">{{index .Scale 6}}</td><td>{{.Overhead}}</td><td class="refs">{{range .Refs}}<a href="#{{.ID}}" title="{{.Title}}">{{.Text}}</a>{{end}}{{.Note}}</td></tr>
{{end}}
{{else}}<tr><th>detector</th><th>outcome</th><th>predicted</th><th>samples</th><th>p50</th><th>p95</th><th>max</th><th>reasons</th><th>more</th></tr>
{{range .Rows}}<tr id="{{.ID}}"><td title="{{.Spec}}">{{.Detector}}</td><td class="o {{.Class}}" title="{{.Why}}">{{.Short}}</td><td class="num">{{.Predicted}}</td><td class="samples">{{.Samples}}</td><td class="num">{{.P50}}</td><td class="num">{{.P95}}</td><td class="num">{{.Max}}</td><td>{{.Reasons}}</td><td class="refs">{{range .Refs}}<a href="#{{.ID}}" title="{{.Title}}">{{.Text}}</a>{{end}}{{.Note}}</td></tr>
{{template "evidence" .}}{{end}}
{{end}}</table></div></section>
{{end}}{{end}}
{{with .Frontier}}<h2 id="frontier">Tolerance vs. detection</h2>
<p class="sub">No detector can detect death sooner than the longest outage it tolerates: the grey region is impossible, and the closer a point lies to the diagonal, the better its trade-off.</p>
{{.}}
<table><tr><th>detector</th><th>tolerated outage</th><th>detection</th><th>ratio</th><th>note</th></tr>
{{range $.R.Frontier}}<tr><td>{{.Detector}}</td><td class="num">{{secs .ToleratedS}}</td><td class="num">{{secs .DetectionS}}</td><td class="num">{{ratio .}}</td><td>{{.Note}}</td></tr>
{{end}}</table>{{end}}
{{with .Overhead}}<h2 id="overhead">Overhead while idle</h2>
{{.}}{{end}}
<h2 id="legends">Legends</h2>
{{with .Rules}}<details><summary>Why each prediction is what it is ({{len .}} rationales)</summary>
<ol class="legend-list">{{range .}}<li id="{{.ID}}"><strong>{{.ID}}</strong> {{.Text}} <span class="sub">({{.Cells}} cells)</span></li>{{end}}</ol></details>{{end}}
{{with .Notes}}<details><summary>Notes on the cells ({{len .}})</summary>
<ol class="legend-list">{{range .}}<li id="{{.ID}}"><strong>{{.ID}}</strong> {{.Text}} <span class="sub">({{.Cells}} cells)</span></li>{{end}}</ol></details>{{end}}
{{with .Sysctls}}<details><summary>Kernel parameters the cells ran with ({{len .}} distinct sets)</summary>
{{range .}}<div id="{{.ID}}"><h3>{{.ID}}</h3><table><tr><th>host</th><th>sysctl</th><th>value</th></tr>
{{range .Roles}}{{$role := .Role}}{{range .Values}}<tr><td>{{$role}}</td><td><code>{{index . 0}}</code></td><td><code>{{index . 1}}</code></td></tr>
{{end}}{{end}}</table>
<p class="sub">Used by {{len .Cells}} cells: {{range $i, $c := .Cells}}{{if $i}}, {{end}}<a href="#{{$c.ID}}">{{$c.Text}}</a>{{end}}</p></div>
{{end}}</details>{{end}}
<h2 id="environment">Environment</h2>
<table>
<tr><th>schema</th><td>{{.R.Schema}}</td></tr>
{{with .R.Profile}}<tr><th>profile</th><td>{{.}}</td></tr>{{end}}
{{with .Started}}<tr><th>started</th><td>{{.}}</td></tr>{{end}}
<tr><th>seed</th><td>{{.R.Seed}}</td></tr>
{{with .R.Shard}}<tr><th>shard</th><td>{{.}}</td></tr>{{end}}
{{with .R.Environment.Kernel}}<tr><th>kernel</th><td>{{.}}</td></tr>{{end}}
{{with .R.Environment.Go}}<tr><th>go</th><td>{{.}}</td></tr>{{end}}
{{with .R.Environment.Halfopen}}<tr><th>halfopen</th><td>{{.}}</td></tr>{{end}}
{{with .R.Environment.CPUs}}<tr><th>cpus</th><td>{{.}}</td></tr>{{end}}
{{with .R.Environment.Pool}}<tr><th>labs at once</th><td>{{.}}</td></tr>{{end}}
{{with .R.Environment.CPUIdle}}<tr><th>idle CPUs</th><td>{{.}}</td></tr>{{end}}
{{with .Throughput}}<tr><th>throughput</th><td>{{.}}</td></tr>{{end}}
<tr><th>harness error</th><td>{{.Calib}}</td></tr>
{{if .R.Environment.ProbeUnloadedMs}}<tr><th>latency probe</th><td>{{.R.Environment.ProbeText}}</td></tr>{{end}}
{{with .R.Environment.ProbeNote}}<tr><th>probe note</th><td>{{.}}</td></tr>{{end}}
</table>
{{with .R.Environment.Calibration}}<h3>Calibration</h3>
<table><tr><th>probe</th><th>method</th><th>p50</th><th>p99</th><th>max</th><th>n</th></tr>
{{range .}}<tr><td>{{.Name}}</td><td>{{.Method}}</td><td class="num">{{ms .ErrorMs.P50}}</td><td class="num">{{ms .ErrorMs.P99}}</td><td class="num">{{ms .ErrorMs.Max}}</td><td class="num">{{.ErrorMs.N}}</td></tr>
{{end}}</table>{{end}}
{{with .Legacy}}<h3>Sysctls of the whole run</h3>
<p class="sub">This report predates per-cell kernel parameters: it recorded one run-wide list, keyed by role, which cannot be attributed to single cells.</p>
<table><tr><th>sysctl</th><th>value</th></tr>
{{range .}}<tr><td><code>{{index . 0}}</code></td><td><code>{{index . 1}}</code></td></tr>
{{end}}</table>{{end}}
</body>
</html>
{{define "evidence"}}{{range .Evidence}}<tr class="evrow"><td colspan="10"><div class="ev"><p class="sub">{{.Title}}{{with .Href}} · <a href="{{.}}" download>pcapng</a>{{end}}{{with .Error}} · {{.}}{{end}}</p>{{.SVG}}</div></td></tr>
{{end}}{{end}}`))
