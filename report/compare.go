package report

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// CompareOptions sets when a difference between two reports is a
// regression. Zero values take the defaults.
type CompareOptions struct {
	// Alpha is the significance level of the rank test; default 0.05.
	Alpha float64
	// MinEffect is the smallest median shift that counts; default 100ms.
	MinEffect time.Duration
	// MinEffectRatio is the smallest median shift that counts, as a
	// fraction of the old median; default 0.10. The larger of the two
	// thresholds applies.
	MinEffectRatio float64
}

func (o CompareOptions) withDefaults() CompareOptions {
	if o.Alpha <= 0 {
		o.Alpha = 0.05
	}
	if o.MinEffect <= 0 {
		o.MinEffect = 100 * time.Millisecond
	}
	if o.MinEffectRatio <= 0 {
		o.MinEffectRatio = 0.10
	}
	return o
}

// CellComparison is one cell key in the old and the new report.
type CellComparison struct {
	Key      CellKey
	Old, New *Stats // nil when the cell is missing from that report

	// OldMedianS and NewMedianS are censoring-aware nearest-rank medians in
	// seconds: +Inf when the median sample is censored, NaN without samples.
	OldMedianS, NewMedianS float64
	// ShiftS is NewMedianS − OldMedianS (+Inf when only the new median is
	// censored); NaN when it cannot be computed.
	ShiftS float64
	// ThresholdS is the smallest shift that counts for this cell.
	ThresholdS float64
	// P is the two-sided p-value of the Mann–Whitney U test, NaN when not
	// tested; Test says how it was computed ("exact" or "normal").
	P    float64
	Test string

	// OldFalsePositives and NewFalsePositives are the cells' counts, and
	// OldFPPerHour and NewFPPerHour their rates per connection-hour (NaN
	// without observed time).
	OldFalsePositives, NewFalsePositives int
	OldFPPerHour, NewFPPerHour           float64

	Regression  bool
	Improvement bool
	// Why says, one clause each, why the cell is a regression or an
	// improvement.
	Why []string

	// oldCell and newCell are the compared cells, for the renderers that
	// show their samples.
	oldCell, newCell *Cell
}

// Verdict returns a short word for the comparison.
func (c *CellComparison) Verdict() string {
	switch {
	case c.Old == nil:
		return "only in new"
	case c.New == nil:
		return "only in old"
	case c.Regression:
		return "REGRESSION"
	case c.Improvement:
		return "improvement"
	}
	return "no change"
}

// CompareResult is Compare's answer: every cell key of either report, in
// the old report's order followed by cells only in the new one.
type CompareResult struct {
	Options CompareOptions
	Cells   []CellComparison
}

// Regressions returns the cells that regressed.
func (r CompareResult) Regressions() []CellComparison {
	var out []CellComparison
	for _, c := range r.Cells {
		if c.Regression {
			out = append(out, c)
		}
	}
	return out
}

// Compare compares every cell of two reports by key. Per cell:
//
//   - detection and calibration cells: a Mann–Whitney U test on the samples
//     without errors, censored samples ranked slower than every detected one
//     and tied among themselves (so two budgets' censorings are equal). It is
//     exact (the permutation distribution of the rank sum with midranks) when
//     both reports hold at most 60 samples in all, and otherwise the normal
//     approximation with tie and continuity correction. A regression is
//     p < Alpha and a censoring-aware median shift of at least
//     max(MinEffect, MinEffectRatio × old median) towards slower; an
//     improvement is the same towards faster.
//   - detection cells that theory does not expect to be censored
//     (Expect != "never"): a larger fraction of censored samples in new is a
//     regression, whatever the test says, since it is a missed death.
//   - disturbance cells: false positives are compared as Poisson rates per
//     observed connection-hour with the exact conditional binomial test
//     (given k1+k2 mistakes, k2 ~ Binomial(k1+k2, t2/(t1+t2)) when the rates
//     are equal; equal exposures when either is unknown). A regression is a
//     one-sided p < Alpha and a rate at least 1+MinEffectRatio times the
//     old one; an improvement is the same the other way.
//
// Cells present in only one report are listed but are neither.
func Compare(old, new *Report, opt CompareOptions) CompareResult {
	opt = opt.withDefaults()
	res := CompareResult{Options: opt}
	newIdx := map[CellKey]int{}
	for i := range new.Cells {
		newIdx[new.Cells[i].Key()] = i
	}
	seen := map[CellKey]bool{}
	for i := range old.Cells {
		oc := &old.Cells[i]
		k := oc.Key()
		seen[k] = true
		var nc *Cell
		if j, ok := newIdx[k]; ok {
			nc = &new.Cells[j]
		}
		res.Cells = append(res.Cells, compareCell(k, oc, nc, opt))
	}
	for i := range new.Cells {
		if k := new.Cells[i].Key(); !seen[k] {
			res.Cells = append(res.Cells, compareCell(k, nil, &new.Cells[i], opt))
		}
	}
	return res
}

func compareCell(k CellKey, oc, nc *Cell, opt CompareOptions) CellComparison {
	cc := CellComparison{Key: k, OldMedianS: math.NaN(), NewMedianS: math.NaN(), ShiftS: math.NaN(), ThresholdS: math.NaN(), P: math.NaN(), OldFPPerHour: math.NaN(), NewFPPerHour: math.NaN(), oldCell: oc, newCell: nc}
	var ov, nv []float64
	if oc != nil {
		st := oc.Stats()
		cc.Old = &st
		ov = rankValues(oc)
		cc.OldMedianS = NearestRank(ov, 0.5)
		cc.OldFalsePositives = oc.FalsePositives
		if oc.ObservedConnS > 0 {
			cc.OldFPPerHour = MistakesPerConnHour(oc.ObservedConnS, oc.FalsePositives)
		}
	}
	if nc != nil {
		st := nc.Stats()
		cc.New = &st
		nv = rankValues(nc)
		cc.NewMedianS = NearestRank(nv, 0.5)
		cc.NewFalsePositives = nc.FalsePositives
		if nc.ObservedConnS > 0 {
			cc.NewFPPerHour = MistakesPerConnHour(nc.ObservedConnS, nc.FalsePositives)
		}
	}
	if oc == nil || nc == nil {
		return cc
	}
	if k.Kind == KindDisturbance {
		compareFalsePositives(&cc, oc, nc, opt)
		return cc
	}
	if len(ov) > 0 && len(nv) > 0 {
		cc.P, cc.Test = MannWhitney(ov, nv)
	}
	switch {
	case math.IsInf(cc.OldMedianS, 1) && math.IsInf(cc.NewMedianS, 1):
		cc.ShiftS = 0
	default:
		cc.ShiftS = cc.NewMedianS - cc.OldMedianS
	}
	cc.ThresholdS = opt.MinEffect.Seconds()
	if r := opt.MinEffectRatio * cc.OldMedianS; !math.IsInf(r, 0) && !math.IsNaN(r) && r > cc.ThresholdS {
		cc.ThresholdS = r
	}
	if cc.P < opt.Alpha && cc.ShiftS >= cc.ThresholdS {
		cc.Regression = true
		cc.Why = append(cc.Why, fmt.Sprintf("median %s → %s (p=%.3g)", medianText(cc.OldMedianS, oc.BudgetS), medianText(cc.NewMedianS, nc.BudgetS), cc.P))
	}
	if cc.P < opt.Alpha && cc.ShiftS <= -cc.ThresholdS {
		cc.Improvement = true
		cc.Why = append(cc.Why, fmt.Sprintf("median %s → %s (p=%.3g)", medianText(cc.OldMedianS, oc.BudgetS), medianText(cc.NewMedianS, nc.BudgetS), cc.P))
	}
	if k.Kind == KindDetection && nc.Expect != "never" {
		of, nf := censoredFraction(cc.Old), censoredFraction(cc.New)
		if nf > of {
			cc.Regression = true
			cc.Improvement = false
			cc.Why = append(cc.Why, fmt.Sprintf("censored rose from %d of %d to %d of %d", cc.Old.Censored, cc.Old.N-cc.Old.Errors, cc.New.Censored, cc.New.N-cc.New.Errors))
		}
	}
	return cc
}

func censoredFraction(s *Stats) float64 {
	n := s.N - s.Errors
	if n == 0 {
		return 0
	}
	return float64(s.Censored) / float64(n)
}

// rankValues returns the cell's samples without errors, sorted, with
// censored samples as +Inf.
func rankValues(c *Cell) []float64 {
	var xs []float64
	censored := 0
	for _, s := range c.Samples {
		switch {
		case s.Error != "":
		case s.Detected && s.Seconds != nil:
			xs = append(xs, *s.Seconds)
		default:
			censored++
		}
	}
	sort.Float64s(xs)
	return censoredValues(xs, censored)
}

// exactLimit is the largest total sample count for the exact U test.
const exactLimit = 60

// MannWhitney returns the two-sided p-value of the Mann–Whitney U test of
// x against y, and "exact" or "normal" for how it was computed. Values may
// be +Inf (censored); equal values share their mean rank. The exact test
// enumerates the rank-sum distribution of the observed midranks (so it is
// exact under ties too) when len(x)+len(y) ≤ 60; larger samples use the
// normal approximation with tie and continuity correction. It returns NaN
// and "" when either sample is empty.
func MannWhitney(x, y []float64) (p float64, method string) {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return math.NaN(), ""
	}
	n := n1 + n2
	type obs struct {
		v    float64
		ofX  bool
		rank float64
	}
	all := make([]obs, 0, n)
	for _, v := range x {
		all = append(all, obs{v: v, ofX: true})
	}
	for _, v := range y {
		all = append(all, obs{v: v})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].v < all[j].v })
	// Doubled midranks are integers: the first plus the last 1-based rank
	// of a tie block.
	doubled := make([]int, n)
	var tieTerm float64
	for i := 0; i < n; {
		j := i
		for j+1 < n && all[j+1].v == all[i].v {
			j++
		}
		t := float64(j - i + 1)
		tieTerm += t*t*t - t
		for k := i; k <= j; k++ {
			doubled[k] = (i + 1) + (j + 1)
		}
		i = j + 1
	}
	obsSum := 0
	for i, o := range all {
		if o.ofX {
			obsSum += doubled[i]
		}
	}
	meanSum := n1 * (n + 1) // doubled mean of x's rank sum
	dev := obsSum - meanSum
	if dev < 0 {
		dev = -dev
	}
	if n <= exactLimit {
		return exactU(doubled, n1, meanSum, dev), "exact"
	}
	r1 := float64(obsSum) / 2
	u := r1 - float64(n1*(n1+1))/2
	mu := float64(n1*n2) / 2
	nf := float64(n)
	sigma2 := float64(n1*n2) / 12 * ((nf + 1) - tieTerm/(nf*(nf-1)))
	if sigma2 <= 0 {
		return 1, "normal"
	}
	z := (math.Abs(u-mu) - 0.5) / math.Sqrt(sigma2)
	if z < 0 {
		z = 0
	}
	return math.Min(1, math.Erfc(z/math.Sqrt2)), "normal"
}

// exactU returns the probability, over every choice of n1 of the doubled
// ranks, that the chosen sum lies at least dev from meanSum.
func exactU(doubled []int, n1, meanSum, dev int) float64 {
	total := 0
	for _, d := range doubled {
		total += d
	}
	// ways[k][s]: number of k-subsets of the ranks seen so far summing to s.
	ways := make([][]float64, n1+1)
	for k := range ways {
		ways[k] = make([]float64, total+1)
	}
	ways[0][0] = 1
	seen := 0
	for i, d := range doubled {
		seen += d
		for k := min(i+1, n1); k >= 1; k-- {
			prev, cur := ways[k-1], ways[k]
			for s := seen; s >= d; s-- {
				cur[s] += prev[s-d]
			}
		}
	}
	var hit, all float64
	for s, w := range ways[n1] {
		if w == 0 {
			continue
		}
		all += w
		if diff := s - meanSum; diff >= dev || -diff >= dev {
			hit += w
		}
	}
	if all == 0 {
		return 1
	}
	return math.Min(1, hit/all)
}

// Markdown returns the comparison as a Markdown table.
func (r CompareResult) Markdown() string {
	var b strings.Builder
	b.WriteString(compareRule(r.Options) + "\n\n")
	b.WriteString("| detector | fault | side | kind | p50 old | p50 new | p95 old | p95 new | censored old | censored new | false positives | p | verdict |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Cells {
		row := compareRow(&c)
		for i := range row {
			row[i] = mdEscape(row[i])
		}
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	if regs := r.Regressions(); len(regs) > 0 {
		fmt.Fprintf(&b, "\n%d regression(s):\n\n", len(regs))
		for _, c := range regs {
			fmt.Fprintf(&b, "- %s: %s\n", mdEscape(c.Key.String()), mdEscape(strings.Join(c.Why, "; ")))
			if c.oldCell != nil && c.newCell != nil {
				fmt.Fprintf(&b, "  - old: %s\n  - new: %s\n", mdEscape(samplesText(c.oldCell)), mdEscape(samplesText(c.newCell)))
			}
		}
	}
	return b.String()
}

// Text returns the comparison as an aligned plain-text table.
func (r CompareResult) Text() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DETECTOR\tFAULT\tSIDE\tKIND\tP50 OLD\tP50 NEW\tP95 OLD\tP95 NEW\tCENS OLD\tCENS NEW\tFP\tP\tVERDICT")
	for _, c := range r.Cells {
		fmt.Fprintln(tw, strings.Join(compareRow(&c), "\t"))
	}
	tw.Flush()
	for _, c := range r.Regressions() {
		fmt.Fprintf(&b, "regression: %s: %s\n", c.Key, strings.Join(c.Why, "; "))
	}
	return b.String()
}

func compareRow(c *CellComparison) []string {
	q := func(s *Stats, p50 bool) string {
		if s == nil || c.Key.Kind == KindDisturbance {
			// A disturbance's samples survive: they have no times.
			return "–"
		}
		if p50 {
			return quantileText(s.CensoredP50)
		}
		return quantileText(s.CensoredP95)
	}
	cens := func(s *Stats) string {
		if s == nil {
			return "–"
		}
		return fmt.Sprintf("%d/%d", s.Censored, s.N-s.Errors)
	}
	fp := "–"
	if c.Old != nil && c.New != nil {
		fp = fmt.Sprintf("%d → %d", c.OldFalsePositives, c.NewFalsePositives)
	}
	p := "–"
	if !math.IsNaN(c.P) {
		p = fmt.Sprintf("%.3g", c.P)
	}
	return []string{c.Key.Detector, c.Key.Fault, c.Key.Side, string(c.Key.Kind),
		q(c.Old, true), q(c.New, true), q(c.Old, false), q(c.New, false),
		cens(c.Old), cens(c.New), fp, p, c.Verdict()}
}

// medianText formats a censoring-aware median, "> budget" when censored.
func medianText(v, budgetS float64) string {
	if math.IsInf(v, 1) {
		if budgetS > 0 {
			return "> " + FormatSeconds(budgetS)
		}
		return "> budget"
	}
	return FormatSeconds(v)
}

// quantileText formats a censoring-aware quantile in seconds.
func quantileText(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.IsInf(v, 1):
		return "censored"
	}
	return FormatSeconds(v)
}

// mdEscape makes s safe inside a Markdown table cell.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "\\", "\\\\")
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

// compareFalsePositives fills the false-positive verdict of a disturbance cell.
func compareFalsePositives(cc *CellComparison, oc, nc *Cell, opt CompareOptions) {
	t1, t2 := oc.ObservedConnS, nc.ObservedConnS
	if t1 <= 0 || t2 <= 0 {
		t1, t2 = 1, 1
	}
	k1, k2 := oc.FalsePositives, nc.FalsePositives
	r1, r2 := float64(k1)/t1, float64(k2)/t2
	up := RateIncreaseP(k1, t1, k2, t2)
	down := RateIncreaseP(k2, t2, k1, t1)
	cc.P = math.Min(up, down)
	cc.Test = "exact conditional binomial (Poisson rates)"
	switch {
	case up < opt.Alpha && r2 >= r1*(1+opt.MinEffectRatio):
		cc.Regression = true
		cc.P = up
		cc.Why = append(cc.Why, fmt.Sprintf("false positives rose from %d to %d (%.3g to %.3g per connection-hour, p=%.3g)", k1, k2, cc.OldFPPerHour, cc.NewFPPerHour, up))
	case down < opt.Alpha && r1 >= r2*(1+opt.MinEffectRatio):
		cc.Improvement = true
		cc.P = down
		cc.Why = append(cc.Why, fmt.Sprintf("false positives fell from %d to %d (p=%.3g)", k1, k2, down))
	}
}

// RateIncreaseP is the one-sided p-value that a second Poisson process (k2
// events over exposure t2) has a higher rate than a first (k1 over t1): given
// n = k1+k2 events, k2 is Binomial(n, t2/(t1+t2)) under equal rates, and p is
// P(X >= k2), summed exactly in log space.
func RateIncreaseP(k1 int, t1 float64, k2 int, t2 float64) float64 {
	n := k1 + k2
	if n == 0 || k2 == 0 {
		return 1
	}
	q := t2 / (t1 + t2)
	if q >= 1 {
		return 1
	}
	lq, l1q := math.Log(q), math.Log1p(-q)
	lgN, _ := math.Lgamma(float64(n + 1))
	p := 0.0
	for x := k2; x <= n; x++ {
		lx, _ := math.Lgamma(float64(x + 1))
		lnx, _ := math.Lgamma(float64(n - x + 1))
		p += math.Exp(lgN - lx - lnx + float64(x)*lq + float64(n-x)*l1q)
	}
	return math.Min(p, 1)
}
