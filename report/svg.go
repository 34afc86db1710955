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
		for v := a.lo; v <= a.hi*1.0001; v *= 10 {
			ts = append(ts, v)
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

func tickLabel(v float64) string {
	return fmt.Sprintf("%gs", math.Round(v*1e6)/1e6)
}
