package report

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func detectionCell(samples ...Sample) Cell {
	return Cell{Detector: "keepalive-tuned:cnt=3,idle=1s,intvl=1s", Fault: "peer-cable-pull", Side: "client", Kind: KindDetection, BudgetS: 20, Samples: samples}
}

func reportOf(cells ...Cell) *Report { return &Report{Schema: SchemaV1, Cells: cells} }

func times(xs ...float64) []Sample {
	out := make([]Sample, len(xs))
	for i, x := range xs {
		out[i] = detected(x)
	}
	return out
}

func TestCompareTwoSecondsSlower(t *testing.T) {
	old := reportOf(detectionCell(times(3.0, 3.2, 3.4, 3.6, 3.8, 3.1)...))
	new := reportOf(detectionCell(times(5.0, 5.2, 5.4, 5.6, 5.8, 5.1)...))
	res := Compare(old, new, CompareOptions{})
	regs := res.Regressions()
	if len(regs) != 1 {
		t.Fatalf("%d regressions, want 1:\n%s", len(regs), res.Text())
	}
	c := regs[0]
	// Complete separation of 6 and 6: exact two-sided p = 2 / C(12, 6).
	if !near(c.P, 2.0/924) || c.Test != "exact" {
		t.Errorf("p = %v (%s), want %v exact", c.P, c.Test, 2.0/924)
	}
	if !near(c.ShiftS, 2) || c.Verdict() != "REGRESSION" {
		t.Errorf("shift %v verdict %s", c.ShiftS, c.Verdict())
	}
	// The other way round it is an improvement.
	back := Compare(new, old, CompareOptions{})
	if len(back.Regressions()) != 0 || !back.Cells[0].Improvement {
		t.Errorf("reverse comparison: %s", back.Text())
	}
}

func TestCompareSameDistribution(t *testing.T) {
	// Two interleaved draws of one distribution: no regression.
	old := reportOf(detectionCell(times(3.05, 3.25, 3.45, 3.65, 3.85, 3.15, 3.55)...))
	new := reportOf(detectionCell(times(3.1, 3.3, 3.5, 3.7, 3.9, 3.2, 3.6)...))
	res := Compare(old, new, CompareOptions{})
	if regs := res.Regressions(); len(regs) != 0 || res.Cells[0].P < 0.5 {
		t.Errorf("regression between samples of one distribution:\n%s", res.Text())
	}

	// Over many random pairs the test claims a slower regression no more
	// often than its level allows (at most alpha/2 one way, plus slack).
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(n int) []Sample {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = 3 + rng.Float64()
		}
		return times(xs...)
	}
	const trials = 1000
	falseRegs := 0
	for range trials {
		old := reportOf(detectionCell(draw(8)...))
		new := reportOf(detectionCell(draw(8)...))
		falseRegs += len(Compare(old, new, CompareOptions{}).Regressions())
	}
	if rate := float64(falseRegs) / trials; rate > 0.035 {
		t.Errorf("false regressions in %.1f%% of pairs from one distribution, want ≤ 3.5%%", rate*100)
	}
}

func TestCompareCases(t *testing.T) {
	dist := func(fp int, observed float64) Cell {
		return Cell{Detector: "heartbeat-inband:interval=200ms,misses=3", Fault: "router-restart:outage=300ms", Side: "client", Kind: KindDisturbance, FalsePositives: fp, ObservedConnS: observed}
	}
	tests := []struct {
		name        string
		old, new    Cell
		regression  bool
		improvement bool
		why         string
	}{
		{"more censored", detectionCell(times(3, 3.1, 3.2, 3.3, 3.4)...), detectionCell(append(times(3, 3.1, 3.2, 3.3), censored())...), true, false, "censored rose from 0 of 5 to 1 of 5"},
		{"censored expected", func() Cell { c := detectionCell(censored(), censored()); c.Expect = "never"; return c }(),
			func() Cell { c := detectionCell(censored(), censored(), censored()); c.Expect = "never"; return c }(), false, false, ""},
		{"significant but small", detectionCell(times(3.00, 3.01, 3.02, 3.03, 3.04, 3.05)...), detectionCell(times(3.10, 3.11, 3.12, 3.13, 3.14, 3.15)...), false, false, ""},
		{"all censored to detected", detectionCell(censored(), censored(), censored(), censored(), censored()), detectionCell(times(3, 3.1, 3.2, 3.3, 3.4)...), false, true, "median"},
		{"detected to all censored", detectionCell(times(3, 3.1, 3.2, 3.3, 3.4)...), detectionCell(censored(), censored(), censored(), censored(), censored()), true, false, "median 3.2 s → > 20 s"},
		{"errors are left out", detectionCell(append(times(3, 3.1, 3.2, 3.3, 3.4), failed("x"))...), detectionCell(append(times(3, 3.1, 3.2, 3.3, 3.4), failed("y"), failed("z"))...), false, false, ""},
		{"false positives rise", dist(0, 600), dist(8, 600), true, false, "false positives rose"},
		{"one new false positive is not significant", dist(0, 600), dist(1, 600), false, false, ""},
		{"false positive rate holds", dist(1, 600), dist(2, 1200), false, false, ""},
		{"a storm's noise is no regression", dist(1242, 9), dist(1259, 9), false, false, ""},
		{"false positives fall", dist(9, 600), dist(0, 600), false, true, "fell"},
		{"false positives without time", dist(0, 0), dist(6, 0), true, false, "from 0 to 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Compare(reportOf(tt.old), reportOf(tt.new), CompareOptions{})
			c := res.Cells[0]
			if c.Regression != tt.regression || c.Improvement != tt.improvement {
				t.Errorf("regression %v improvement %v, want %v %v (p=%v shift=%v why=%v)", c.Regression, c.Improvement, tt.regression, tt.improvement, c.P, c.ShiftS, c.Why)
			}
			if tt.why != "" && !strings.Contains(strings.Join(c.Why, "; "), tt.why) {
				t.Errorf("why %q lacks %q", c.Why, tt.why)
			}
		})
	}
}

func TestCompareMissingCells(t *testing.T) {
	r := testdataReport(t)
	old := cloneReport(r)
	old.Cells = old.Cells[:2]
	new := cloneReport(r)
	new.Cells = new.Cells[1:]
	new.Cells[0].Detector = "heartbeat-inband:misses=3,interval=0.2s" // the same cell
	res := Compare(old, new, CompareOptions{})
	var verdicts []string
	for _, c := range res.Cells {
		verdicts = append(verdicts, c.Verdict())
	}
	if got := strings.Join(verdicts, ","); got != "only in old,no change,only in new" {
		t.Errorf("verdicts %s", got)
	}
	md := res.Markdown()
	for _, w := range []string{"| detector |", "only in old", "p < 0.05", "max(100 ms, 10% of the old median)"} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
}

func TestCompareRenderers(t *testing.T) {
	old := reportOf(detectionCell(times(3.0, 3.2, 3.4, 3.6, 3.8)...))
	new := reportOf(detectionCell(times(5.0, 5.2, 5.4, 5.6, 5.8)...))
	res := Compare(old, new, CompareOptions{})
	text := res.Text()
	for _, w := range []string{"DETECTOR", "REGRESSION", "3.4 s", "5.4 s", "regression: keepalive-tuned"} {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q:\n%s", w, text)
		}
	}
	md := res.Markdown()
	for _, w := range []string{"1 regression(s)", "| REGRESSION |", "  - old: 3 s, 3.2 s, 3.4 s, 3.6 s, 3.8 s", "  - new: 5 s, 5.2 s, 5.4 s, 5.6 s, 5.8 s"} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
}

func TestCompareHTML(t *testing.T) {
	dist := func(fps int, mistakes ...Mistake) Cell {
		return Cell{Detector: "heartbeat-inband:interval=200ms,misses=3", Fault: "router-restart:outage=1s", Side: "client", Kind: KindDisturbance,
			Samples: []Sample{{Reason: "survived", WindowS: 3}, {Reason: "survived", WindowS: 3}}, FalsePositives: fps, ObservedConnS: 600, Mistakes: mistakes}
	}
	var many []Mistake
	for i := range 40 {
		many = append(many, Mistake{StartS: 0.5, EndS: 1.5, Sample: i % 2})
	}
	tests := []struct {
		name       string
		old, new   Cell
		plots      int
		wantInPage []string
	}{
		{"detection regression", detectionCell(times(3.0, 3.2, 3.4, 3.6, 3.8)...), detectionCell(times(5.0, 5.2, 5.4, 5.6, 5.8)...), 1,
			[]string{"Regressions (1)", "median 3.4 s → 5.4 s", `class="dot"`, "5 s, 5.2 s, 5.4 s, 5.6 s, 5.8 s"}},
		{"false positives regression", dist(0), dist(40, many...), 1,
			[]string{"Regressions (1)", "false positives rose from 0 to 40", `class="mistake"`}},
		{"no change", detectionCell(times(3.0, 3.2, 3.4)...), detectionCell(times(3.1, 3.3, 3.4)...), 0,
			[]string{"Regressions (0)", "No cell regressed.", "no change"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Compare(reportOf(tt.old), reportOf(tt.new), CompareOptions{})
			var b strings.Builder
			if err := CompareHTML(&b, res); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			svgs := svgBlock.FindAllString(page, -1)
			if len(svgs) != tt.plots {
				t.Errorf("%d plots, want %d", len(svgs), tt.plots)
			}
			for _, s := range svgs {
				if err := wellFormed(s); err != nil {
					t.Error(err)
				}
				// Old and new on one axis: both rows in the same drawing.
				if !strings.Contains(s, ">old<") || !strings.Contains(s, ">new<") {
					t.Error("a plot lacks the old or the new row")
				}
			}
			for _, w := range tt.wantInPage {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, banned := range []string{"<script", "http:", "https:"} {
				if strings.Contains(page, banned) {
					t.Errorf("page holds %q", banned)
				}
			}
		})
	}
}

// bruteForceU enumerates every split of the pooled sample to compute the
// two-sided exact p-value of the rank-sum test with midranks.
func bruteForceU(x, y []float64) float64 {
	all := append(append([]float64{}, x...), y...)
	n, n1 := len(all), len(x)
	rank := func(v float64) float64 {
		less, eq := 0, 0
		for _, w := range all {
			if w < v {
				less++
			} else if w == v {
				eq++
			}
		}
		return float64(less) + float64(eq+1)/2
	}
	sumOf := func(idx []int) float64 {
		s := 0.0
		for _, i := range idx {
			s += rank(all[i])
		}
		return s
	}
	var obsIdx []int
	for i := range n1 {
		obsIdx = append(obsIdx, i)
	}
	mean := float64(n1*(n+1)) / 2
	dev := math.Abs(sumOf(obsIdx) - mean)
	hit, total := 0, 0
	for mask := 0; mask < 1<<n; mask++ {
		var idx []int
		for i := range n {
			if mask&(1<<i) != 0 {
				idx = append(idx, i)
			}
		}
		if len(idx) != n1 {
			continue
		}
		total++
		if math.Abs(sumOf(idx)-mean) >= dev-1e-9 {
			hit++
		}
	}
	return float64(hit) / float64(total)
}

func TestMannWhitneyExactMatchesEnumeration(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct{ x, y []float64 }{
		{[]float64{1, 2, 3}, []float64{4, 5, 6}},
		{[]float64{1, 2, 2, 3}, []float64{2, 3, 4, inf}},
		{[]float64{inf, inf, 1}, []float64{inf, 2, 3, 4}},
		{[]float64{1, 1, 1}, []float64{1, 1, 1}},
		{[]float64{0.4, 0.5, 0.6, inf, inf}, []float64{0.45, 0.55, 0.7, 0.8, inf, 0.3}},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		var x, y []float64
		for range 1 + rng.IntN(6) {
			x = append(x, float64(rng.IntN(5)))
		}
		for range 1 + rng.IntN(6) {
			y = append(y, float64(rng.IntN(5)))
		}
		tests = append(tests, struct{ x, y []float64 }{x, y})
	}
	for _, tt := range tests {
		p, method := MannWhitney(tt.x, tt.y)
		if want := bruteForceU(tt.x, tt.y); method != "exact" || math.Abs(p-want) > 1e-9 {
			t.Errorf("MannWhitney(%v, %v) = %v (%s), enumeration %v", tt.x, tt.y, p, method, want)
		}
	}
}

func TestMannWhitneyNormal(t *testing.T) {
	var x, y []float64
	for i := range 40 {
		x = append(x, float64(i))
		y = append(y, float64(i)+0.5)
	}
	p, method := MannWhitney(x, y)
	if method != "normal" || p < 0.5 {
		t.Errorf("interleaved samples: p %v (%s), want large, normal", p, method)
	}
	for i := range y {
		y[i] += 100
	}
	if p, _ = MannWhitney(x, y); p > 1e-10 {
		t.Errorf("separated samples: p %v", p)
	}
	same := make([]float64, 40)
	if p, _ = MannWhitney(same, same); p != 1 {
		t.Errorf("all tied: p %v, want 1", p)
	}
	// The normal approximation agrees with the exact test near the limit.
	x, y = x[:30], nil
	for i := range 30 {
		y = append(y, float64(i)+7.5)
	}
	exact, _ := MannWhitney(x, y)
	pn := normalU(x, y)
	if math.Abs(exact-pn) > 0.01 {
		t.Errorf("exact %v, normal %v", exact, pn)
	}
	if p, m := MannWhitney(nil, y); !math.IsNaN(p) || m != "" {
		t.Errorf("empty sample: %v %q", p, m)
	}
}

// normalU is the normal approximation without ties, for comparison.
func normalU(x, y []float64) float64 {
	n1, n2 := float64(len(x)), float64(len(y))
	u := 0.0
	for _, a := range x {
		for _, b := range y {
			switch {
			case a > b:
				u++
			case a == b:
				u += 0.5
			}
		}
	}
	mu := n1 * n2 / 2
	sigma := math.Sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
	return math.Erfc((math.Abs(u-mu) - 0.5) / sigma / math.Sqrt2)
}

func TestRateIncreaseP(t *testing.T) {
	for _, tc := range []struct {
		k1     int
		t1     float64
		k2     int
		t2     float64
		lo, hi float64
	}{
		{0, 1, 0, 1, 1, 1},
		{0, 1, 1, 1, 0.5, 0.5},              // one event, fair coin
		{0, 1, 10, 1, 0.0009765, 0.0009766}, // 0.5^10
		{5, 1, 5, 1, 0.62, 0.63},            // P(X>=5 | n=10, q=.5) = 638/1024
		{10, 1, 10, 3, 0.0, 1},              // more exposure: not higher
		{1242, 9, 1259, 9, 0.3, 0.4},        // a storm's noise
		{100, 10, 200, 10, 0, 1e-8},         // doubled
	} {
		got := RateIncreaseP(tc.k1, tc.t1, tc.k2, tc.t2)
		if got < tc.lo || got > tc.hi {
			t.Errorf("RateIncreaseP(%d/%g, %d/%g) = %g, want in [%g, %g]", tc.k1, tc.t1, tc.k2, tc.t2, got, tc.lo, tc.hi)
		}
	}
}
