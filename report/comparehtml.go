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
	if err := comparePage().Execute(w, d); err != nil {
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

// comparePage returns the comparison's page, page/compare.html.tmpl.
var comparePage = parsePage("compare.html.tmpl", nil)
