package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// ResidualGoal is how close a detected sample should come to its own
// forecast (issue 18): |measured − forecast| within it.
const ResidualGoal = 50 * time.Millisecond

// ResidualSummary is the distribution of one detector family's per-sample
// residuals (measured − Forecast.AtS) over a report.
type ResidualSummary struct {
	// Family is the detector's name without its parameters
	// ("keepalive-tuned").
	Family string
	// N counts the detected samples with a residual; Within those whose
	// |residual| is at most ResidualGoal.
	N, Within int
	// P50, P95 and Max are nearest-rank quantiles of |residual|, seconds.
	P50, P95, Max float64
	// Surprises counts censored samples whose forecast fell before the
	// budget's end: the rule said they would decide, and they did not.
	Surprises int
}

// Family is a detector spec's name without its parameters.
func Family(detector string) string {
	name, _, _ := strings.Cut(detector, ":")
	return name
}

// ForecastSurprise says, in one phrase, why a sample contradicts its own
// forecast, or "" when it does not (or has none): a decision farther than
// ResidualGoal from the forecast instant, or no decision within a budget
// that the forecast fell inside.
func (s Sample) ForecastSurprise(budgetS float64) string {
	f := s.Forecast
	if f == nil || s.Error != "" {
		return ""
	}
	switch {
	case s.Detected && s.ResidualS != nil:
		if math.Abs(*s.ResidualS) > ResidualGoal.Seconds() {
			return fmt.Sprintf("decided %s from its forecast %s (%s)", signedResidual(*s.ResidualS), FormatSeconds(f.AtS), f.Rule)
		}
	case !s.Detected && !f.Never && f.AtS < budgetS:
		return fmt.Sprintf("no decision within the budget %s, where its forecast was %s (%s)", FormatSeconds(budgetS), FormatSeconds(f.AtS), f.Rule)
	}
	return ""
}

// signedResidual formats a residual with its sign: "+0.12 s", "−3 ms".
func signedResidual(v float64) string {
	if v < 0 {
		return "−" + FormatSeconds(-v)
	}
	return "+" + FormatSeconds(v)
}

// Residuals summarises, per detector family (sorted by name), the
// residuals of the detected samples that have a forecast, and counts the
// censored samples that contradict theirs. Families without any forecast
// are left out.
func Residuals(r *Report) []ResidualSummary {
	abs := map[string][]float64{}
	surprises := map[string]int{}
	for i := range r.Cells {
		c := &r.Cells[i]
		fam := Family(c.Detector)
		for _, s := range c.Samples {
			if s.Forecast == nil || s.Error != "" {
				continue
			}
			if _, ok := abs[fam]; !ok {
				abs[fam] = nil
			}
			if s.Detected && s.ResidualS != nil {
				abs[fam] = append(abs[fam], math.Abs(*s.ResidualS))
			} else if !s.Detected && s.ForecastSurprise(c.BudgetS) != "" {
				surprises[fam]++
			}
		}
	}
	out := make([]ResidualSummary, 0, len(abs))
	for fam, xs := range abs {
		sortFloats(xs)
		rs := ResidualSummary{Family: fam, N: len(xs), Surprises: surprises[fam]}
		for _, x := range xs {
			if x <= ResidualGoal.Seconds() {
				rs.Within++
			}
		}
		if len(xs) > 0 {
			rs.P50, rs.P95, rs.Max = NearestRank(xs, 0.50), NearestRank(xs, 0.95), xs[len(xs)-1]
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b ResidualSummary) int { return cmp.Compare(a.Family, b.Family) })
	return out
}

// writeMarkdownResiduals writes the section on how close each sample came
// to its own forecast, when any sample has one.
func writeMarkdownResiduals(b *strings.Builder, r *Report) {
	rs := Residuals(r)
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(b, "## Residuals\n\nEach sample is forecast from the watched connection's state at the fault (TCP_INFO) and its detector's rule; the residual is the measured time minus that forecast. Quantiles are nearest-rank over |residual| of the detected samples; the goal is ± %s. A censored sample whose forecast fell inside its budget is counted as a surprise.\n\n", FormatSeconds(ResidualGoal.Seconds()))
	b.WriteString("| detector family | n | within ± goal | p50 | p95 | max | censored against forecast |\n|---|---|---|---|---|---|---|\n")
	for _, s := range rs {
		q := func(v float64) string {
			if s.N == 0 {
				return "–"
			}
			return FormatSeconds(v)
		}
		fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s | %d |\n", mdEscape(s.Family), s.N, s.Within, q(s.P50), q(s.P95), q(s.Max), s.Surprises)
	}
	b.WriteString("\n")
}
