package report

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// svg builds one inline SVG drawing. Every text it holds is escaped, so
// its output is safe to insert into the page as template.HTML.
type svg struct {
	b strings.Builder
}

func newSVG(width, height int, label string) *svg {
	s := &svg{}
	fmt.Fprintf(&s.b, `<svg class="plot" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, width, height, width, height, esc(label))
	return s
}

func esc(s string) string { return template.HTMLEscapeString(s) }

func (s *svg) rect(x, y, w, h float64, class, title string) {
	fmt.Fprintf(&s.b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f">%s</rect>`, class, x, y, math.Max(w, 0), math.Max(h, 0), titleElem(title))
}

func (s *svg) line(x1, y1, x2, y2 float64, class string) {
	fmt.Fprintf(&s.b, `<line class="%s" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, class, x1, y1, x2, y2)
}

func (s *svg) circle(x, y, r float64, class, title string) {
	fmt.Fprintf(&s.b, `<circle class="%s" cx="%.1f" cy="%.1f" r="%.1f">%s</circle>`, class, x, y, r, titleElem(title))
}

func (s *svg) path(d, class, title string) {
	fmt.Fprintf(&s.b, `<path class="%s" d="%s">%s</path>`, class, esc(d), titleElem(title))
}

// text draws a label; anchor is "start", "middle" or "end".
func (s *svg) text(x, y float64, anchor, class, text string) {
	fmt.Fprintf(&s.b, `<text class="%s" x="%.1f" y="%.1f" text-anchor="%s">%s</text>`, class, x, y, anchor, esc(text))
}

func (s *svg) html() template.HTML {
	return template.HTML(s.b.String() + "</svg>")
}

func titleElem(t string) string {
	if t == "" {
		return ""
	}
	return "<title>" + esc(t) + "</title>"
}

// axis maps values to pixels, linearly from 0 or logarithmically when the
// values span more than two decades.
type axis struct {
	log    bool
	lo, hi float64 // domain
	p0, p1 float64 // pixels
}

// newAxis returns an axis covering every positive value of vs (and 0 when
// linear) on pixels p0..p1.
func newAxis(vs []float64, p0, p1 float64) axis {
	minPos, maxV := math.Inf(1), 0.0
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if v > 0 && v < minPos {
			minPos = v
		}
		maxV = math.Max(maxV, v)
	}
	if maxV <= 0 {
		maxV = 1
	}
	if !math.IsInf(minPos, 1) && maxV/minPos > 100 {
		lo := math.Pow(10, math.Floor(math.Log10(minPos)))
		hi := math.Pow(10, math.Ceil(math.Log10(maxV*1.05)))
		return axis{log: true, lo: lo, hi: hi, p0: p0, p1: p1}
	}
	step := niceStep(maxV * 1.05)
	return axis{lo: 0, hi: math.Ceil(maxV*1.05/step) * step, p0: p0, p1: p1}
}

func (a axis) pos(v float64) float64 {
	var f float64
	if a.log {
		v = math.Max(v, a.lo)
		f = (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	} else {
		f = (v - a.lo) / (a.hi - a.lo)
	}
	f = math.Max(0, math.Min(1, f))
	return a.p0 + f*(a.p1-a.p0)
}

func (a axis) ticks() []float64 {
	var ts []float64
	if a.log {
		// Decades up to 10 s, then the minute and the hour, which read
		// better than 100 s or 1000 s.
		for v := a.lo; v <= a.hi*1.0001 && v < 60; v *= 10 {
			ts = append(ts, v)
		}
		for _, v := range []float64{60, 600, 3600, 36000, 360000} {
			if v >= a.lo && v <= a.hi*1.0001 {
				ts = append(ts, v)
			}
		}
		return ts
	}
	step := niceStep(a.hi)
	for v := a.lo; v <= a.hi+step/1000; v += step {
		ts = append(ts, math.Round(v/step)*step)
	}
	return ts
}

// niceStep returns a step of 1, 2 or 5 times a power of ten that cuts
// 0..max into about five parts.
func niceStep(max float64) float64 {
	if max <= 0 {
		return 1
	}
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

// tickLabel labels an axis tick in seconds.
func tickLabel(v float64) string { return FormatSeconds(v) }

// frontierPlot draws tolerated outage against detection time, with the
// diagonal below which no detector can be.
func frontierPlot(pts []FrontierPoint, lb *labeller) template.HTML {
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
		s.circle(x, y, 4.5, "pt", fmt.Sprintf("%s: tolerates %s, detects in %s (ratio %s)", p.Detector, FormatSeconds(p.ToleratedS), FormatSeconds(p.DetectionS), ratioText(p)))
		if x > (left+width-right)/2 {
			s.text(x-7, y-6-float64(i%3)*9, "end", "lbl pt-lbl", lb.of(p.Detector))
		} else {
			s.text(x+7, y-6-float64(i%3)*9, "start", "lbl pt-lbl", lb.of(p.Detector))
		}
	}
	return s.html()
}

// overheadPlot draws idle packets per connection-minute per detector,
// from the first cell of each detector that measured overhead.
func overheadPlot(r *Report, lb *labeller) template.HTML {
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
		bars = append(bars, bar{lb.of(c.Detector), *c.Overhead})
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
		s.rect(left, y+2, ax.pos(b.o.PacketsPerConnMin)-left, rowH-6, "bar", fmt.Sprintf("%s: %s packets and %s bytes per connection-minute", b.name, formatCount(b.o.PacketsPerConnMin), formatCount(b.o.BytesPerConnMin)))
		s.text(ax.pos(b.o.PacketsPerConnMin)+6, y+13, "start", "lbl", fmt.Sprintf("%s pkt/min · %s B/min", formatCount(b.o.PacketsPerConnMin), formatCount(b.o.BytesPerConnMin)))
	}
	base := 8 + float64(len(bars))*rowH
	s.line(left, 4, left, base, "tick")
	s.text(left, base+16, "start", "lbl", "packets per connection-minute while idle")
	return s.html()
}

// newLogAxis returns a logarithmic axis over whole decades that covers
// every positive value of vs, on pixels p0..p1.
func newLogAxis(vs []float64, p0, p1 float64) axis {
	minPos, maxV := math.Inf(1), 0.0
	for _, v := range vs {
		if v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			minPos = math.Min(minPos, v)
			maxV = math.Max(maxV, v)
		}
	}
	if math.IsInf(minPos, 1) {
		minPos, maxV = 0.01, 1
	}
	lo := math.Pow(10, math.Floor(math.Log10(minPos)))
	hi := math.Pow(10, math.Ceil(math.Log10(maxV*1.05)))
	if hi <= lo {
		hi = lo * 10
	}
	return axis{log: true, lo: lo, hi: hi, p0: p0, p1: p1}
}

// plotRow is one row of a samples plot: a cell's samples against its
// prediction and budget.
type plotRow struct {
	Label string // short, drawn at the left
	Href  string // where the label links to; "" for none
	Title string // the full name, shown on hover
	Cell  *Cell
}

// samplesPlot draws several cells' detection times on one logarithmic
// axis, one row each: the predicted range as a green band, the budget as a
// red tick, each detected sample as a dot (red when it lies outside the
// prediction), each censored sample as an arrow past the budget and each
// error as a purple cross at the left edge.
func samplesPlot(rows []plotRow, label string) template.HTML {
	if len(rows) == 0 {
		return ""
	}
	const width, right, rowH, top = 900, 56.0, 20.0, 6.0
	longest := 0
	for _, r := range rows {
		longest = max(longest, len([]rune(r.Label)))
	}
	left := math.Min(math.Max(float64(longest)*6.1+14, 80), 320)
	var vals []float64
	for _, r := range rows {
		c := r.Cell
		vals = append(vals, c.BudgetS)
		if p := c.PredictedS; p != nil {
			vals = append(vals, p[0], p[1])
		}
		for _, s := range c.Samples {
			if s.Detected && s.Seconds != nil {
				vals = append(vals, *s.Seconds)
			}
		}
	}
	ax := newLogAxis(vals, left, width-right)
	bottom := top + float64(len(rows))*rowH
	height := int(bottom + 34)
	s := newSVG(width, height, label)
	s.rect(left, top, width-right-left, bottom-top, "frame", "")
	for _, t := range ax.ticks() {
		x := ax.pos(t)
		s.line(x, top, x, bottom, "grid")
		s.line(x, bottom, x, bottom+4, "tick")
		s.text(x, bottom+16, "middle", "lbl", tickLabel(t))
	}
	s.text(width-right, bottom+30, "end", "lbl", "time from the fault to the decision (log scale)")
	tol := PredictionTolerance.Seconds()
	for i, r := range rows {
		c := r.Cell
		y0 := top + float64(i)*rowH
		mid := y0 + rowH/2
		if r.Href != "" {
			fmt.Fprintf(&s.b, `<a href="%s">`, esc(r.Href))
		}
		s.text(left-6, mid+4, "end", "lbl", r.Label)
		if r.Href != "" {
			s.b.WriteString("</a>")
		}
		if p := c.PredictedS; p != nil {
			x0, x1 := ax.pos(p[0]), ax.pos(p[1])
			if x1-x0 < 3 {
				x0, x1 = x0-1.5, x1+1.5
			}
			s.rect(x0, y0+3, x1-x0, rowH-6, "band", "predicted "+predictedRange(c))
		}
		bx := ax.pos(c.BudgetS)
		if c.BudgetS > 0 {
			s.line(bx, y0+2, bx, y0+rowH-2, "budget")
		}
		censored := 0
		for j, smp := range c.Samples {
			jitter := float64((j*5)%7-3) * 1.6
			switch {
			case smp.Error != "":
				x := left + 5 + float64(j)*3
				s.path(fmt.Sprintf("M%.1f %.1fl6 6m0 -6l-6 6", x-3, mid-3), "err", fmt.Sprintf("sample %d: error: %s", j, smp.Error))
			case smp.Detected && smp.Seconds != nil:
				v := *smp.Seconds
				class := "dot"
				if c.Kind == KindDetection && (c.Expect == ExpectNever || (c.PredictedS != nil && (v < c.PredictedS[0]-tol || v > c.PredictedS[1]+tol))) {
					class = "dot dot-out"
				}
				s.circle(ax.pos(v), mid+jitter, 3.2, class, fmt.Sprintf("sample %d: %s after %s", j, smp.Reason, FormatSeconds(v)))
			default:
				y := y0 + 4 + float64(censored%4)*4
				s.path(fmt.Sprintf("M%.1f %.1fH%.1fm-4 -2.5l4 2.5l-4 2.5", bx, y, bx+20), "arrow", fmt.Sprintf("sample %d: no decision within the budget %s", j, FormatSeconds(c.BudgetS)))
				censored++
			}
		}
	}
	return s.html()
}
