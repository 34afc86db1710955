package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// CompareHTML writes a comparison as one self-contained HTML page (inline
// CSS and SVG, no script, no network): the rule, every regressed cell with
// its old and new samples side by side on one axis (detection times on a
// logarithmic axis against the prediction and budget; for a disturbance,
// each false positive as an interval of its observation window), then the
// table of every cell with its verdict.
func CompareHTML(w io.Writer, res CompareResult) error {
	d := compareData{Rule: compareRule(res.Options)}
	var cells []Cell
	for _, c := range res.Cells {
		for _, x := range []*Cell{c.oldCell, c.newCell} {
			if x != nil {
				cells = append(cells, *x)
			}
		}
	}
	lb := newLabeller(&Report{Cells: cells})
	for i := range res.Cells {
		c := &res.Cells[i]
		row := compareRow(c)
		// Short labels keep the table on the page; the full specs are in
		// the titles.
		d.Rows = append(d.Rows, compareHTMLRow{Cols: row[2:], Detector: lb.of(row[0]), Fault: lb.of(row[1]), DetectorSpec: row[0], FaultSpec: row[1], Class: verdictClass(c)})
		if !c.Regression {
			continue
		}
		k := c.Key
		oc, nc := c.oldCell, c.newCell
		if oc == nil || nc == nil {
			continue
		}
		reg := compareRegression{
			Title: lb.of(k.Detector) + " × " + lb.of(k.Fault) + " (" + k.Side + ", " + string(k.Kind) + ")",
			Key:   k.String(),
			Why:   strings.Join(c.Why, "; "),
		}
		label := "old and new samples of " + k.String()
		if k.Kind == KindDisturbance {
			reg.Plot = mistakesPlot([]plotRow{{Label: "old", Title: "old", Cell: oc}, {Label: "new", Title: "new", Cell: nc}}, label)
		} else {
			reg.Plot = samplesPlot([]plotRow{{Label: "old", Title: "old", Cell: oc}, {Label: "new", Title: "new", Cell: nc}}, label)
		}
		reg.Old, reg.New = samplesText(oc), samplesText(nc)
		d.Regressions = append(d.Regressions, reg)
	}
	if err := comparePage.Execute(w, d); err != nil {
		return fmt.Errorf("render comparison: %w", err)
	}
	return nil
}

type compareData struct {
	Rule        string
	Regressions []compareRegression
	Rows        []compareHTMLRow
}

type compareRegression struct {
	Title, Key, Why string
	Old, New        string
	Plot            template.HTML
}

type compareHTMLRow struct {
	Detector, Fault         string
	DetectorSpec, FaultSpec string
	Cols                    []string // from side on
	Class                   string
}

func verdictClass(c *CellComparison) string {
	switch {
	case c.Regression:
		return "o-outside"
	case c.Improvement:
		return "o-within"
	case c.Old == nil || c.New == nil:
		return "o-never"
	}
	return ""
}

// compareRule says when a cell is a regression, in one paragraph.
func compareRule(o CompareOptions) string {
	return fmt.Sprintf("Regression: p < %g (two-sided Mann–Whitney U, censored samples slowest) and a median shift of at least max(%s, %g%% of the old median) towards slower; or more censored; or more false positives per connection-hour in a disturbance.",
		o.Alpha, FormatSeconds(o.MinEffect.Seconds()), o.MinEffectRatio*100)
}

// mistakesPlot draws disturbance cells' false positives, one row per cell:
// each mistake as a red interval from its suspicion to its recovery, in
// seconds from the start of its sample's observation window.
func mistakesPlot(rows []plotRow, label string) template.HTML {
	const width, left, right, rowH, top = 900, 80.0, 30.0, 22.0, 6.0
	vals := []float64{1}
	for _, r := range rows {
		for _, s := range r.Cell.Samples {
			vals = append(vals, s.WindowS)
		}
		for _, m := range r.Cell.Mistakes {
			vals = append(vals, m.EndS)
		}
	}
	ax := newAxis(vals, left, width-right)
	ax.log, ax.lo = false, 0
	bottom := top + float64(len(rows))*rowH
	s := newSVG(width, int(bottom+34), label)
	s.rect(left, top, width-right-left, bottom-top, "frame", "")
	for _, t := range ax.ticks() {
		x := ax.pos(t)
		s.line(x, top, x, bottom, "grid")
		s.text(x, bottom+16, "middle", "lbl", tickLabel(t))
	}
	s.text(width-right, bottom+30, "end", "lbl", "seconds into the observation window")
	for i, r := range rows {
		y0 := top + float64(i)*rowH
		s.text(left-6, y0+rowH/2+4, "end", "lbl", r.Label)
		n := max(len(r.Cell.Samples), 1)
		for j, m := range r.Cell.Mistakes {
			// Each sample has its own time line: its own thin lane.
			y := y0 + 3 + float64(m.Sample%n)*(rowH-6)/float64(n)
			x0, x1 := ax.pos(m.StartS), ax.pos(m.EndS)
			s.rect(x0, y, math.Max(x1-x0, 2), math.Max((rowH-6)/float64(n)-1, 2), "mistake", fmt.Sprintf("false positive %d (sample %d): suspected at %s, trusted again at %s", j, m.Sample, FormatSeconds(m.StartS), FormatSeconds(m.EndS)))
		}
	}
	return s.html()
}

var comparePage = template.Must(template.New("compare").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>halfopen compare</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px auto;max-width:1240px;padding:0 12px;color:#1d1d1f;background:#fff}
h1{font-size:21px}h2{font-size:18px;margin-top:30px;border-bottom:1px solid #ddd}h3{font-size:15px;margin:20px 0 2px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:12px}
th,td{border:1px solid #d8d8d8;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f3f3f3}
.sub{color:#555;font-size:12px;margin:0}
.scroll{max-width:100%;overflow-x:auto}
.o-within{background:#c9ecd0}.o-outside{background:#f7b6b0}.o-never{background:#ececec}
.plot{display:block;max-width:100%;height:auto}
.plot .frame{fill:#fafafa;stroke:#ccc}.plot .grid{stroke:#e4e4e4}.plot .tick{stroke:#888}
.plot .band{fill:#9bd3a2;fill-opacity:.55;stroke:none}
.plot .lbl{font:11px system-ui,sans-serif;fill:#444}
.plot .budget{stroke:#c0392b;stroke-width:1.2}
.plot .dot{fill:#1f5fa8;fill-opacity:.85}.plot .dot-out{fill:#c0392b}
.plot .arrow{stroke:#c0392b;stroke-width:1.5;fill:none}.plot .err{stroke:#8e44ad;stroke-width:2}
.plot .mistake{fill:#e67e22}
</style>
</head>
<body>
<h1>halfopen compare</h1>
<p class="sub">{{.Rule}}</p>
<h2>Regressions ({{len .Regressions}})</h2>
{{range .Regressions}}<h3>{{.Title}}</h3>
<p class="sub"><code>{{.Key}}</code> · {{.Why}}</p>
{{.Plot}}
<table><tr><th>old</th><td>{{.Old}}</td></tr><tr><th>new</th><td>{{.New}}</td></tr></table>
{{else}}<p>No cell regressed.</p>
{{end}}
<h2>Every cell</h2>
<div class="scroll"><table>
<tr><th>detector</th><th>fault</th><th>side</th><th>kind</th><th>p50 old</th><th>p50 new</th><th>p95 old</th><th>p95 new</th><th>censored old</th><th>censored new</th><th>false positives</th><th>p</th><th>verdict</th></tr>
{{range .Rows}}<tr class="{{.Class}}"><td title="{{.DetectorSpec}}">{{.Detector}}</td><td title="{{.FaultSpec}}">{{.Fault}}</td>{{range .Cols}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table></div>
</body>
</html>
`))
