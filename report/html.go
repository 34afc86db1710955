package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"time"
)

// HTML writes the report as one self-contained HTML page: inline CSS and
// inline SVG drawn here, no script, no web fonts, no network. It shows
// the environment, a strip plot per detection cell (detection times
// against the predicted band, censored samples as arrows past the budget),
// the tables of Markdown, the tolerance-vs-detection frontier and an
// overhead bar chart.
func HTML(w io.Writer, r *Report) error {
	return htmlPage.Execute(w, newHTMLData(r))
}

type htmlData struct {
	R        *Report
	Started  string
	Sysctls  [][2]string
	Calib    string
	Kinds    []htmlKind
	Strips   []htmlStrip
	Frontier template.HTML
	Overhead template.HTML
}

type htmlKind struct {
	Title   string
	QoS     bool
	Rows    [][]string
	Headers []string
}

type htmlStrip struct {
	Title string
	Sub   string
	SVG   template.HTML
}

func newHTMLData(r *Report) htmlData {
	d := htmlData{R: r, Calib: "not measured"}
	if !r.Started.IsZero() {
		d.Started = r.Started.Format(time.RFC3339)
	}
	for _, k := range sortedKeys(r.Environment.Sysctls) {
		d.Sysctls = append(d.Sysctls, [2]string{k, r.Environment.Sysctls[k]})
	}
	if q := r.Environment.CalibrationErrorMs; q != nil {
		d.Calib = quantilesText(*q)
	}
	headers := []string{"detector", "fault", "side", "predicted", "n", "p50", "p95", "max", "censored", "errors", "reasons", "false positives", "observed conn-s", "overhead", "note"}
	for _, kind := range cellKinds(r) {
		k := htmlKind{Title: kindTitles[kind], QoS: kind == KindDisturbance}
		if k.Title == "" {
			k.Title = string(kind)
		}
		k.Headers = headers
		if k.QoS {
			k.Headers = append(append(append([]string{}, headers[:len(headers)-1]...), "mistakes/conn-h", "T_MR", "T_M", "P_A"), "note")
		}
		for i := range r.Cells {
			c := &r.Cells[i]
			if c.Kind != kind {
				continue
			}
			cols := cellColumns(c)
			if k.QoS {
				note := cols[len(cols)-1]
				cols = append(append(cols[:len(cols)-1], qosColumns(c)...), note)
			}
			k.Rows = append(k.Rows, cols)
		}
		d.Kinds = append(d.Kinds, k)
	}
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Kind != KindDetection {
			continue
		}
		st := c.Stats()
		sub := fmt.Sprintf("predicted %s · n=%d · censored %d · errors %d", predictedText(c), st.N, st.Censored, st.Errors)
		d.Strips = append(d.Strips, htmlStrip{Title: c.Detector + " × " + c.Fault + " (" + c.Side + ")", Sub: sub, SVG: stripPlot(c)})
	}
	if len(r.Frontier) > 0 {
		d.Frontier = frontierPlot(r.Frontier)
	}
	d.Overhead = overheadPlot(r)
	return d
}

// stripPlot draws one detection cell: the predicted band shaded, the budget
// as a dashed line, each detected sample as a dot and each censored sample
// as an arrow pointing past the budget.
func stripPlot(c *Cell) template.HTML {
	const width, height = 640, 98
	const left, right, top, bottom = 12.0, 40.0, 10.0, 60.0
	vals := []float64{c.BudgetS}
	if c.PredictedS != nil {
		vals = append(vals, c.PredictedS[0], c.PredictedS[1])
	}
	for _, s := range c.Samples {
		if s.Detected && s.Seconds != nil {
			vals = append(vals, *s.Seconds)
		}
	}
	ax := newAxis(vals, left, width-right)
	s := newSVG(width, height, "detection times of "+c.Detector+" under "+c.Fault)
	s.rect(left, top, width-right-left, bottom-top, "frame", "")
	if p := c.PredictedS; p != nil {
		x0, x1 := ax.pos(p[0]), ax.pos(p[1])
		if x1-x0 < 2 {
			x0, x1 = x0-1, x1+1
		}
		s.rect(x0, top, x1-x0, bottom-top, "band", fmt.Sprintf("predicted %s", predictedText(c)))
	}
	for _, t := range ax.ticks() {
		x := ax.pos(t)
		s.line(x, bottom, x, bottom+4, "tick")
		s.text(x, bottom+16, "middle", "lbl", tickLabel(t))
	}
	mid := (top + bottom) / 2
	if c.BudgetS > 0 {
		bx := ax.pos(c.BudgetS)
		s.line(bx, top, bx, bottom, "budget")
		s.text(bx, bottom+28, "middle", "lbl budget-lbl", "budget "+tickLabel(c.BudgetS))
	}
	censored := 0
	for i, smp := range c.Samples {
		jitter := float64((i*7)%9-4) * 4
		switch {
		case smp.Error != "":
		case smp.Detected && smp.Seconds != nil:
			s.circle(ax.pos(*smp.Seconds), mid+jitter, 3.5, "dot", fmt.Sprintf("sample %d: %.3fs %s", i, *smp.Seconds, smp.Reason))
		default:
			bx := ax.pos(c.BudgetS)
			y := top + 6 + float64(censored%8)*5.5
			s.path(fmt.Sprintf("M%.1f %.1fH%.1fm-5 -3l5 3l-5 3", bx, y, bx+24), "arrow", fmt.Sprintf("sample %d: censored, no decision within %gs", i, c.BudgetS))
			censored++
		}
	}
	if ax.log {
		s.text(width-right, bottom+28, "end", "lbl", "log scale")
	}
	return s.html()
}

// frontierPlot draws tolerated outage against detection time, with the
// diagonal below which no detector can be.
func frontierPlot(pts []FrontierPoint) template.HTML {
	const width, height = 640, 400
	const left, right, top, bottom = 56.0, 24.0, 16.0, 350.0
	var vals []float64
	for _, p := range pts {
		vals = append(vals, p.ToleratedS, p.DetectionS)
	}
	ax := newAxis(vals, left, width-right)
	ay := newAxis(vals, bottom, top)
	s := newSVG(width, height, "tolerance versus detection")
	s.rect(left, top, width-right-left, bottom-top, "frame", "")
	// Points below the diagonal would detect death sooner than an outage
	// they tolerate, which is impossible.
	lo, hi := ax.lo, ax.hi
	if ax.log {
		lo = math.Max(lo, ay.lo)
	}
	s.path(fmt.Sprintf("M%.1f %.1fL%.1f %.1fL%.1f %.1fZ", ax.pos(lo), ay.pos(lo), ax.pos(hi), ay.pos(hi), ax.pos(hi), ay.pos(ay.lo)), "impossible", "impossible: detection sooner than the tolerated outage")
	s.line(ax.pos(lo), ay.pos(lo), ax.pos(hi), ay.pos(hi), "diag")
	for _, t := range ax.ticks() {
		x := ax.pos(t)
		s.line(x, bottom, x, bottom+4, "tick")
		s.text(x, bottom+16, "middle", "lbl", tickLabel(t))
	}
	for _, t := range ay.ticks() {
		y := ay.pos(t)
		s.line(left-4, y, left, y, "tick")
		s.text(left-6, y+4, "end", "lbl", tickLabel(t))
	}
	s.text((left+width-right)/2, bottom+36, "middle", "lbl", "longest outage tolerated")
	s.text(left+4, top+12, "start", "lbl", "time to detect death ↑")
	for i, p := range pts {
		x, y := ax.pos(p.ToleratedS), ay.pos(p.DetectionS)
		s.circle(x, y, 4.5, "pt", fmt.Sprintf("%s: tolerates %gs, detects in %gs (ratio %s)", p.Detector, p.ToleratedS, p.DetectionS, ratioText(p)))
		if x > (left+width-right)/2 {
			s.text(x-7, y-6-float64(i%3)*9, "end", "lbl pt-lbl", p.Detector)
		} else {
			s.text(x+7, y-6-float64(i%3)*9, "start", "lbl pt-lbl", p.Detector)
		}
	}
	return s.html()
}

// overheadPlot draws idle packets per connection-minute per detector,
// from the first cell of each detector that measured overhead.
func overheadPlot(r *Report) template.HTML {
	type bar struct {
		name string
		o    Overhead
	}
	var bars []bar
	seen := map[string]bool{}
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Overhead == nil || seen[c.Detector] {
			continue
		}
		seen[c.Detector] = true
		bars = append(bars, bar{c.Detector, *c.Overhead})
	}
	if len(bars) == 0 {
		return ""
	}
	const right, rowH = 190.0, 22.0
	longest := 0
	for _, b := range bars {
		longest = max(longest, len([]rune(b.name)))
	}
	left := math.Min(float64(longest)*6.3+16, 420)
	width := int(left + 260 + right)
	height := int(float64(len(bars))*rowH) + 34
	vals := []float64{0}
	for _, b := range bars {
		vals = append(vals, b.o.PacketsPerConnMin)
	}
	ax := newAxis(vals, left, float64(width)-right)
	ax.log = false
	ax.lo = 0
	s := newSVG(width, height, "idle overhead per detector")
	for i, b := range bars {
		y := 8 + float64(i)*rowH
		s.text(left-8, y+13, "end", "lbl", b.name)
		s.rect(left, y+2, ax.pos(b.o.PacketsPerConnMin)-left, rowH-6, "bar", fmt.Sprintf("%s: %s packets and %s bytes per connection-minute", b.name, numText(b.o.PacketsPerConnMin), numText(b.o.BytesPerConnMin)))
		s.text(ax.pos(b.o.PacketsPerConnMin)+6, y+13, "start", "lbl", fmt.Sprintf("%s pkt/min · %s B/min", numText(b.o.PacketsPerConnMin), numText(b.o.BytesPerConnMin)))
	}
	base := 8 + float64(len(bars))*rowH
	s.line(left, 4, left, base, "tick")
	s.text(left, base+16, "start", "lbl", "packets per connection-minute while idle")
	return s.html()
}

var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{"ratio": ratioText}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>halfopen report{{with .R.Profile}} · {{.}}{{end}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#1d1d1f;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px;margin:18px 0 2px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:12.5px}
th,td{border:1px solid #d8d8d8;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.warn{background:#fff4d6;border:1px solid #e8c15a;padding:8px 12px}
.sub{color:#555;font-size:12px;margin:0}
.plot{display:block;max-width:100%;height:auto}
.plot .frame{fill:#fafafa;stroke:#ccc}
.plot .band{fill:#9bd3a2;fill-opacity:.45;stroke:none}
.plot .tick{stroke:#888}
.plot .lbl{font:11px system-ui,sans-serif;fill:#444}
.plot .budget{stroke:#c0392b;stroke-dasharray:4 3;stroke-width:1.5}
.plot .budget-lbl{fill:#c0392b}
.plot .dot{fill:#1f5fa8;fill-opacity:.8}
.plot .arrow{stroke:#c0392b;stroke-width:1.6;fill:none}
.plot .diag{stroke:#555;stroke-dasharray:5 4}
.plot .impossible{fill:#eee;stroke:none}
.plot .pt{fill:#8e44ad}
.plot .pt-lbl{font-size:10px}
.plot .bar{fill:#2e86c1}
</style>
</head>
<body>
<h1>halfopen report</h1>
{{if not .R.Complete}}<p class="warn"><strong>Incomplete:</strong> this run was still writing, or was stopped, when this page was made; every sample it measured is here.</p>{{end}}
<h2>Environment</h2>
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
<tr><th>harness error</th><td>{{.Calib}}</td></tr>
</table>
{{with .R.Environment.Calibration}}<h3>Calibration</h3>
<table><tr><th>probe</th><th>method</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>n</th></tr>
{{range .}}<tr><td>{{.Name}}</td><td>{{.Method}}</td><td class="num">{{.ErrorMs.P50}}</td><td class="num">{{.ErrorMs.P99}}</td><td class="num">{{.ErrorMs.Max}}</td><td class="num">{{.ErrorMs.N}}</td></tr>
{{end}}</table>{{end}}
{{with .Sysctls}}<h3>Sysctls in the lab's namespaces</h3>
<table><tr><th>sysctl</th><th>value</th></tr>
{{range .}}<tr><td><code>{{index . 0}}</code></td><td><code>{{index . 1}}</code></td></tr>
{{end}}</table>{{end}}
{{with .Strips}}<h2>Detection times</h2>
<p class="sub">Dots: detected samples. Green: the predicted range. Dashed red: the budget; red arrows: censored samples, which did not decide within it.</p>
{{range .}}<h3>{{.Title}}</h3><p class="sub">{{.Sub}}</p>
{{.SVG}}
{{end}}{{end}}
{{range .Kinds}}<h2>{{.Title}}</h2>
<p class="sub">Times in seconds; p50, p95 and max are nearest-rank quantiles of the detected samples; censored samples are counted, never timed.</p>
<table><tr>{{range .Headers}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
{{end}}
{{with .Frontier}}<h2>Tolerance vs. detection</h2>
<p class="sub">No detector can detect death sooner than the longest outage it tolerates: the grey region is impossible, and the closer a point lies to the diagonal, the better its trade-off.</p>
{{.}}
<table><tr><th>detector</th><th>tolerated outage</th><th>detection</th><th>ratio</th><th>note</th></tr>
{{range $.R.Frontier}}<tr><td>{{.Detector}}</td><td class="num">{{.ToleratedS}}s</td><td class="num">{{.DetectionS}}s</td><td class="num">{{ratio .}}</td><td>{{.Note}}</td></tr>
{{end}}</table>{{end}}
{{with .Overhead}}<h2>Overhead while idle</h2>
{{.}}{{end}}
</body>
</html>
`))
