package report

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// PredictionTolerance is added on both sides of a predicted range when a
// detected sample is judged inside it: process wake-ups and scheduling on
// a busy machine, not the kernel's timers. The fault suites assert with
// the same margin.
const PredictionTolerance = 150 * time.Millisecond

// Outcome is what a cell's samples say against theory, at a glance.
type Outcome int

// Outcomes, from the ones a reader can skip to the ones a reader must look
// at; a matrix shows the worst of the cells it merges.
const (
	// OutcomeNone is a cell without samples.
	OutcomeNone Outcome = iota
	// OutcomeWithin is a detection cell whose every sample decided inside
	// its predicted range (± PredictionTolerance), with a predicted reason.
	OutcomeWithin
	// OutcomeMeasured is a detection cell whose every sample decided, where
	// theory gives no range to check it against.
	OutcomeMeasured
	// OutcomeNever is a detection cell in which, as theory says, no sample
	// decided within its budget.
	OutcomeNever
	// OutcomeSurvived is a disturbance the connection survived with no
	// false positive.
	OutcomeSurvived
	// OutcomeFalsePositive is a disturbance in which the detector decided
	// that a live peer was dead.
	OutcomeFalsePositive
	// OutcomeOutside is a detection cell that disagrees with theory: a
	// sample outside its predicted range or with an unpredicted reason, a
	// censored sample where theory says it detects, or a decision where
	// theory says never.
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
	OutcomeMeasured:      {"detected; theory gives no range (p50 shown)", "o-measured", "🔵"},
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

// Judge returns the cell's outcome against its theory.
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
	if c.Kind == KindDisturbance {
		if c.FalsePositives > 0 {
			return Verdict{OutcomeFalsePositive, fmt.Sprintf("✗%d", c.FalsePositives), fmt.Sprintf("%s in %s", plural(c.FalsePositives, "false positive", "false positives"), plural(st.N, "sample", "samples"))}
		}
		return Verdict{OutcomeSurvived, "ok", fmt.Sprintf("survived all %d samples", st.N)}
	}
	if c.Expect == ExpectNever {
		if st.Detected > 0 {
			return Verdict{OutcomeOutside, p50, fmt.Sprintf("theory says never, but %d of %d samples decided (p50 %s)", st.Detected, st.N, p50)}
		}
		return Verdict{OutcomeNever, "never", fmt.Sprintf("no decision within %s in %d samples, as theory says", FormatSeconds(c.BudgetS), st.N)}
	}
	if st.Censored > 0 {
		short := "> " + FormatSeconds(c.BudgetS)
		if st.Detected > 0 {
			short = p50 + "+"
		}
		return Verdict{OutcomeOutside, short, fmt.Sprintf("%d of %d samples did not decide within the budget %s", st.Censored, st.N, FormatSeconds(c.BudgetS))}
	}
	if c.PredictedS == nil {
		return Verdict{OutcomeMeasured, p50, fmt.Sprintf("all %d samples decided, p50 %s; theory gives no range", st.N, p50)}
	}
	for i, s := range c.Samples {
		if why := c.Surprise(s); why != "" {
			return Verdict{OutcomeOutside, p50, fmt.Sprintf("sample %d %s", i, why)}
		}
	}
	return Verdict{OutcomeWithin, p50, fmt.Sprintf("all %d samples inside the predicted %s, p50 %s", st.N, FormatRange(c.PredictedS[0], c.PredictedS[1]), p50)}
}

// Surprise says why one sample of the cell needs a reader's eyes, or ""
// when it agrees with theory: it could not be measured; in a disturbance,
// the detector decided that the live peer was dead; in a detection cell,
// it decided where theory says never, did not decide within the budget
// where theory says it does, or decided outside its predicted range
// (± PredictionTolerance) or with a reason theory does not allow. Judge
// applies it to every sample; a runner keeps the packet capture of a
// sample for which it says something.
func (c *Cell) Surprise(s Sample) string {
	decided := s.Detected && s.Seconds != nil
	switch {
	case s.Error != "":
		return "could not be measured: " + s.Error
	case c.Kind == KindDisturbance && c.Expect == ExpectFalsePositives:
		if s.FalsePositives == 0 && !s.Detected {
			return "survived, where theory says it cannot tell this disturbance from a death"
		}
		return ""
	case c.Kind == KindDisturbance:
		if s.FalsePositives > 0 || s.Detected {
			return fmt.Sprintf("decided the live peer dead (%s)", plural(max(s.FalsePositives, 1), "false positive", "false positives"))
		}
		return ""
	case c.Kind != KindDetection:
		return ""
	case c.Expect == ExpectNever:
		if decided {
			return fmt.Sprintf("decided %s after %s, where theory says never", s.Reason, FormatSeconds(*s.Seconds))
		}
		return ""
	case !decided:
		return "did not decide within the budget " + FormatSeconds(c.BudgetS)
	}
	if p := c.PredictedS; p != nil {
		tol := PredictionTolerance.Seconds()
		if v := *s.Seconds; v < p[0]-tol || v > p[1]+tol {
			return fmt.Sprintf("decided after %s, outside the predicted %s (± %s)", FormatSeconds(v), FormatRange(p[0], p[1]), FormatSeconds(tol))
		}
	}
	if len(c.Reasons) > 0 && !slices.Contains(c.Reasons, s.Reason) {
		return fmt.Sprintf("decided with %s; theory allows %s", s.Reason, strings.Join(c.Reasons, ", "))
	}
	return ""
}
