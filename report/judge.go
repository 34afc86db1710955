package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/halfopen/halfopen/tcprules"
)

// PredictionTolerance is the judge's one tolerance: it is added on both
// sides of a predicted range (a cell's, or a sample's own forecast) when a
// detected sample is judged inside it, for process wake-ups and scheduling
// on a busy machine, not the kernel's timers. Every verdict (the overview,
// the suites, the gate matchers, halfopen check) is JudgeSample's, with
// this margin; a report records it (Environment.ToleranceS).
const PredictionTolerance = 150 * time.Millisecond

// Outcome is what a cell's samples say against theory, at a glance.
type Outcome int

// Outcomes, from the ones a reader can skip to the ones a reader must look
// at; a matrix shows the worst of the cells it merges.
const (
	// OutcomeNone is a cell without samples.
	OutcomeNone Outcome = iota
	// OutcomeWithin is a detection cell whose every sample decided inside
	// its prediction (its own forecast, or the cell's range, ±
	// PredictionTolerance) with a predicted reason, or was censored where
	// its own forecast reaches past the budget.
	OutcomeWithin
	// OutcomeMeasured is a detection cell measured, not judged: its
	// samples decided where theory gives no range to check them against,
	// or theory makes no claim (Expect ""), decided or not.
	OutcomeMeasured
	// OutcomeNever is a detection cell in which, as theory (or each
	// sample's forecast) says, no sample decided within its budget.
	OutcomeNever
	// OutcomeSurvived is a disturbance the connection survived with no
	// false positive.
	OutcomeSurvived
	// OutcomeFalsePositive is a disturbance in which the detector decided
	// that a live peer was dead.
	OutcomeFalsePositive
	// OutcomeOutside is a cell that disagrees with theory (JudgeSample): a
	// sample outside its prediction or with an undeclared reason, a
	// censored sample where theory says it detects in time, a decision
	// where theory says never, or a disturbance survived where theory says
	// it makes false positives.
	OutcomeOutside
	// OutcomeError is a cell with a sample the harness could not measure.
	OutcomeError
)

// outcomeInfo is how an outcome is named and drawn.
var outcomeInfo = map[Outcome]struct {
	name  string // the legend's words
	class string // CSS class in the HTML
	emoji string // Markdown glyph
}{
	OutcomeNone:          {"no samples", "o-none", "▫️"},
	OutcomeWithin:        {"detected within its prediction (p50 shown)", "o-within", "🟢"},
	OutcomeMeasured:      {"measured where theory gives no range or makes no claim (p50 shown)", "o-measured", "🔵"},
	OutcomeNever:         {"never detected, as theory says", "o-never", "⚪"},
	OutcomeSurvived:      {"survived the disturbance, as it should", "o-survived", "✅"},
	OutcomeFalsePositive: {"false positives: dropped a live peer (count shown)", "o-fp", "🟠"},
	OutcomeOutside:       {"outside its prediction: look at it", "o-outside", "🔴"},
	OutcomeError:         {"a sample could not be measured", "o-error", "❌"},
}

// String returns the outcome's words, as in the legend.
func (o Outcome) String() string { return outcomeInfo[o].name }

// Verdict is a cell's outcome with the few words that explain it.
type Verdict struct {
	Outcome Outcome
	// Short is what fits in a matrix cell: the p50, the false-positive
	// count, "never", "ok" or "err".
	Short string
	// Why is one sentence on how the outcome was reached.
	Why string
}

// SampleClass is what the judge makes of one sample against its theory.
type SampleClass int

// Sample classes.
const (
	// SampleWithin decided inside its prediction (its own forecast when
	// it has one, else the cell's range), widened by PredictionTolerance,
	// with a reason theory allows.
	SampleWithin SampleClass = iota
	// SampleMeasured decided, or not, where theory makes no claim or gives
	// no range: measured, not judged.
	SampleMeasured
	// SampleCensored did not decide within its budget, as theory (or the
	// sample's own forecast) says.
	SampleCensored
	// SampleSurvived is a disturbance sample without a false positive.
	SampleSurvived
	// SampleFalsePositive is a disturbance sample in which the detector
	// decided that a live peer was dead.
	SampleFalsePositive
	// SampleOutside disagrees with theory: decided outside its prediction,
	// with a reason theory does not allow, where theory says never, or not
	// at all where theory says it decides in time.
	SampleOutside
	// SampleError could not be measured.
	SampleError
)

var sampleClassNames = [...]string{"within", "measured", "censored", "survived", "false-positives", "outside", "error"}

// String names the class.
func (k SampleClass) String() string {
	if int(k) < len(sampleClassNames) {
		return sampleClassNames[k]
	}
	return fmt.Sprintf("class-%d", int(k))
}

// SampleVerdict is the judge's word on one sample.
type SampleVerdict struct {
	Class SampleClass
	// Agrees is true when the sample is what theory says: every class but
	// SampleOutside and SampleError, and SampleFalsePositive only where
	// theory says the detector cannot tell the disturbance from a death
	// or makes no claim.
	Agrees bool
	// Why is one sentence on how the verdict was reached.
	Why string
}

// JudgeSample is the one judge of a sample against its cell's theory.
// Suites, gate matchers, the overview and halfopen check all ask it.
//
// A detection sample with a Forecast (its own prediction, from the
// connection's state at the fault) is judged by it: detected inside
// [LoS, HiS] widened by PredictionTolerance on each side is within;
// Forecast.Never, or a window that reaches past the budget (HiS +
// PredictionTolerance beyond BudgetS), makes a censored sample expected.
// Without a forecast the cell's PredictedS and Expect decide the same way
// (a censored sample agrees when the predicted range reaches past the
// budget).
// Expect "" (theory makes no claim) is measured, never judged. A decided
// sample must also give one of Cell.Reasons when the cell lists any: the
// reasons theory (or a role, in its own words) declared, nothing else.
func (c *Cell) JudgeSample(s Sample) SampleVerdict {
	if s.Error != "" {
		return SampleVerdict{SampleError, false, "could not be measured: " + s.Error}
	}
	switch c.Kind {
	case KindDisturbance:
		return c.judgeDisturbance(s)
	case KindDetection:
		return c.judgeDetection(s)
	}
	return SampleVerdict{SampleMeasured, true, "a " + string(c.Kind) + " sample is measured, not judged"}
}

func (c *Cell) judgeDisturbance(s Sample) SampleVerdict {
	dropped := s.FalsePositives > 0 || s.Detected
	switch {
	case !dropped && c.Expect == ExpectFalsePositives:
		return SampleVerdict{SampleOutside, false, "survived, where theory says it cannot tell this disturbance from a death"}
	case !dropped:
		return SampleVerdict{SampleSurvived, true, "survived the disturbance"}
	}
	why := fmt.Sprintf("decided the live peer dead (%s)", plural(max(s.FalsePositives, 1), "false positive", "false positives"))
	if c.Expect == ExpectSurvive {
		return SampleVerdict{SampleFalsePositive, false, why}
	}
	return SampleVerdict{SampleFalsePositive, true, why}
}

func (c *Cell) judgeDetection(s Sample) SampleVerdict {
	decided := s.Detected && s.Seconds != nil
	tol := PredictionTolerance.Seconds()
	if c.Expect == ExpectUnknown {
		if decided {
			return SampleVerdict{SampleMeasured, true, fmt.Sprintf("decided %s after %s; theory makes no claim", s.Reason, FormatSeconds(*s.Seconds))}
		}
		return SampleVerdict{SampleMeasured, true, "did not decide within the budget " + FormatSeconds(c.BudgetS) + "; theory makes no claim"}
	}
	if f := s.Forecast; f != nil {
		return c.judgeForecast(s, *f)
	}
	if c.Expect == ExpectNever {
		if decided {
			return SampleVerdict{SampleOutside, false, fmt.Sprintf("decided %s after %s, where theory says never", s.Reason, FormatSeconds(*s.Seconds))}
		}
		return SampleVerdict{SampleCensored, true, "did not decide within the budget " + FormatSeconds(c.BudgetS) + ", as theory says"}
	}
	p := c.PredictedS
	if !decided {
		if p != nil && p[1]+tol > c.BudgetS {
			// The prediction reaches past the budget: a sample that had
			// not decided by then is what it allows.
			return SampleVerdict{SampleCensored, true, fmt.Sprintf("did not decide within the budget %s, which the predicted %s reaches past", FormatSeconds(c.BudgetS), FormatRange(p[0], p[1]))}
		}
		return SampleVerdict{SampleOutside, false, "did not decide within the budget " + FormatSeconds(c.BudgetS)}
	}
	v := *s.Seconds
	if p != nil && (v < p[0]-tol || v > p[1]+tol) {
		return SampleVerdict{SampleOutside, false, fmt.Sprintf("decided after %s, outside the predicted %s (± %s)", FormatSeconds(v), FormatRange(p[0], p[1]), FormatSeconds(tol))}
	}
	if why := c.reasonDisallowed(s); why != "" {
		return SampleVerdict{SampleOutside, false, why}
	}
	if p == nil {
		return SampleVerdict{SampleMeasured, true, fmt.Sprintf("decided %s after %s; theory gives no range", s.Reason, FormatSeconds(v))}
	}
	return SampleVerdict{SampleWithin, true, fmt.Sprintf("decided %s after %s, inside the predicted %s (± %s)", s.Reason, FormatSeconds(v), FormatRange(p[0], p[1]), FormatSeconds(tol))}
}

// judgeForecast judges a detection sample by its own forecast.
func (c *Cell) judgeForecast(s Sample, f tcprules.Forecast) SampleVerdict {
	decided := s.Detected && s.Seconds != nil
	tol := PredictionTolerance.Seconds()
	rule := ""
	if f.Rule != "" {
		rule = " (" + f.Rule + ")"
	}
	window := FormatRange(f.LoS, f.HiS)
	switch {
	case f.Never && decided:
		return SampleVerdict{SampleOutside, false, fmt.Sprintf("decided %s after %s, where its forecast says never%s", s.Reason, FormatSeconds(*s.Seconds), rule)}
	case f.Never:
		return SampleVerdict{SampleCensored, true, "did not decide, as its forecast says" + rule}
	case !decided && f.HiS+tol > c.BudgetS:
		return SampleVerdict{SampleCensored, true, fmt.Sprintf("did not decide within the budget %s, which its forecast %s reaches past%s", FormatSeconds(c.BudgetS), window, rule)}
	case !decided:
		return SampleVerdict{SampleOutside, false, fmt.Sprintf("did not decide within the budget %s, where its forecast says %s%s", FormatSeconds(c.BudgetS), window, rule)}
	}
	v := *s.Seconds
	if v < f.LoS-tol || v > f.HiS+tol {
		return SampleVerdict{SampleOutside, false, fmt.Sprintf("decided after %s, outside its forecast %s (± %s)%s", FormatSeconds(v), window, FormatSeconds(tol), rule)}
	}
	if why := c.reasonDisallowed(s); why != "" {
		return SampleVerdict{SampleOutside, false, why}
	}
	return SampleVerdict{SampleWithin, true, fmt.Sprintf("decided %s after %s, inside its forecast %s (± %s)", s.Reason, FormatSeconds(v), window, FormatSeconds(tol))}
}

// reasonDisallowed says why a decided sample's reason is not one of the
// cell's, or "" when the cell lists none or allows it.
func (c *Cell) reasonDisallowed(s Sample) string {
	if len(c.Reasons) > 0 && !slices.Contains(c.Reasons, s.Reason) {
		return fmt.Sprintf("decided with %s; theory allows %s", s.Reason, strings.Join(c.Reasons, ", "))
	}
	return ""
}

// Surprise says why one sample of the cell needs a reader's eyes, or ""
// when it agrees with theory (JudgeSample) and made no false positive the
// theory did not call for. A runner keeps the packet capture of a sample
// for which it says something.
func (c *Cell) Surprise(s Sample) string {
	v := c.JudgeSample(s)
	if !v.Agrees || v.Class == SampleFalsePositive && c.Expect != ExpectFalsePositives {
		return v.Why
	}
	return ""
}

// Judge returns the cell's outcome against its theory: the samples'
// verdicts (JudgeSample) summed up.
func (c *Cell) Judge() Verdict {
	if c.Kind == KindScale && c.Scale != nil {
		return c.judgeScale()
	}
	st := c.Stats()
	if st.N == 0 {
		return Verdict{OutcomeNone, "", "no samples"}
	}
	if st.Errors > 0 {
		first := ""
		for i, s := range c.Samples {
			if s.Error != "" {
				first = fmt.Sprintf("sample %d: %s", i, s.Error)
				break
			}
		}
		return Verdict{OutcomeError, "err", fmt.Sprintf("%d of %d samples could not be measured (%s)", st.Errors, st.N, first)}
	}
	p50 := ""
	if st.P50 != nil {
		p50 = FormatSeconds(*st.P50)
	}
	count := map[SampleClass]int{}
	for i, s := range c.Samples {
		v := c.JudgeSample(s)
		count[v.Class]++
		if v.Agrees {
			continue
		}
		short := p50
		switch {
		case c.Kind == KindDisturbance && v.Class == SampleFalsePositive:
			short = fmt.Sprintf("✗%d", c.FalsePositives)
		case c.Kind == KindDisturbance:
			short = "ok"
		case st.Censored > 0 && st.Detected > 0:
			short = p50 + "+"
		case st.Censored > 0:
			short = "> " + FormatSeconds(c.BudgetS)
		}
		if c.Kind == KindDisturbance && v.Class == SampleFalsePositive {
			return Verdict{OutcomeFalsePositive, short, fmt.Sprintf("%s in %s, where theory says it survives (sample %d %s)", plural(c.FalsePositives, "false positive", "false positives"), plural(st.N, "sample", "samples"), i, v.Why)}
		}
		return Verdict{OutcomeOutside, short, fmt.Sprintf("sample %d %s", i, v.Why)}
	}
	if c.Kind == KindDisturbance {
		if c.FalsePositives > 0 {
			return Verdict{OutcomeFalsePositive, fmt.Sprintf("✗%d", c.FalsePositives), fmt.Sprintf("%s in %s", plural(c.FalsePositives, "false positive", "false positives"), plural(st.N, "sample", "samples"))}
		}
		return Verdict{OutcomeSurvived, "ok", fmt.Sprintf("survived all %d samples", st.N)}
	}
	censored := ""
	if n := count[SampleCensored]; n > 0 && n < st.N {
		how := "their forecasts say"
		if n == 1 {
			how = "its forecast says"
		}
		censored = fmt.Sprintf("; %s censored, as %s", plural(n, "sample", "samples"), how)
	}
	switch {
	case count[SampleMeasured] > 0 && st.Detected == 0:
		return Verdict{OutcomeMeasured, "> " + FormatSeconds(c.BudgetS), fmt.Sprintf("no sample of %d decided within %s; theory makes no claim", st.N, FormatSeconds(c.BudgetS))}
	case count[SampleMeasured] > 0:
		return Verdict{OutcomeMeasured, p50, fmt.Sprintf("%d of %d samples decided, p50 %s; theory gives no range", st.Detected, st.N, p50)}
	case count[SampleCensored] == st.N:
		return Verdict{OutcomeNever, "never", fmt.Sprintf("no decision within %s in %d samples, as theory says", FormatSeconds(c.BudgetS), st.N)}
	case c.PredictedS != nil && count[SampleCensored] == 0 && !anyForecast(c.Samples):
		return Verdict{OutcomeWithin, p50, fmt.Sprintf("all %d samples inside the predicted %s, p50 %s", st.N, FormatRange(c.PredictedS[0], c.PredictedS[1]), p50)}
	}
	return Verdict{OutcomeWithin, p50, fmt.Sprintf("%d of %d samples inside their own forecasts (± %s), p50 %s%s", count[SampleWithin], st.N, FormatSeconds(PredictionTolerance.Seconds()), p50, censored)}
}

// anyForecast reports whether a sample carries its own forecast.
func anyForecast(ss []Sample) bool {
	for _, s := range ss {
		if s.Forecast != nil {
			return true
		}
	}
	return false
}

// Unmeasured names, one sentence each, the detection and disturbance
// cells in which the judge finds nothing to judge: no sample, or a sample
// that could not be measured. A gate over such a report cannot pass
// (halfopen check and halfopen gate fail on it).
func (r *Report) Unmeasured() []string {
	var out []string
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Kind != KindDetection && c.Kind != KindDisturbance {
			continue
		}
		if v := c.Judge(); v.Outcome == OutcomeNone || v.Outcome == OutcomeError {
			out = append(out, fmt.Sprintf("%s: %s", c.Key(), v.Why))
		}
	}
	return out
}

// Disagreements names, one sentence each, the cells the judge finds
// outside their theory: the findings a reader must look at.
func (r *Report) Disagreements() []string {
	var out []string
	for i := range r.Cells {
		c := &r.Cells[i]
		if v := c.Judge(); v.Outcome == OutcomeOutside {
			out = append(out, fmt.Sprintf("%s: %s", c.Key(), v.Why))
		}
	}
	return out
}
