package gate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onsi/gomega/types"

	"github.com/halfopen/halfopen/report"
)

// resultMatcher is a Gomega matcher on a *Result.
type resultMatcher struct {
	what  string
	check func(r *Result) error
	fail  error
}

// Match checks the result. A result that measured nothing, or has a
// sample the judge (report.Cell.JudgeSample) finds could not be measured,
// is an error, not a mismatch: Gomega fails on it whether the matcher is
// negated or not, so NotTo(Survive()) cannot pass on a cell that errored.
func (m *resultMatcher) Match(actual any) (bool, error) {
	r, ok := actual.(*Result)
	if !ok || r == nil || r.Describe == "" {
		return false, fmt.Errorf("gate matchers take the *gate.Result of Measure, not %T", actual)
	}
	if err := measured(r); err != nil {
		return false, err
	}
	m.fail = m.check(r)
	return m.fail == nil, nil
}

// measured says why a result cannot be judged: no sample, or a sample
// that could not be measured.
func measured(r *Result) error {
	if len(r.rec.Samples) == 0 {
		return fmt.Errorf("%s measured no sample, so no expectation on it can hold or fail", r.Describe)
	}
	for i, s := range r.rec.Samples {
		if v := r.rec.JudgeSample(s); v.Class == report.SampleError {
			return fmt.Errorf("%s: sample %d %s, so no expectation on it can hold or fail", r.Describe, i, v.Why)
		}
	}
	return nil
}

// FailureMessage names the cell, the broken expectation and every sample.
func (m *resultMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("%v\nwas expected to %s, but %v", actual, m.what, m.fail)
}

// NegatedFailureMessage is the message of a negated matcher.
func (m *resultMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("%v\nwas expected not to %s", actual, m.what)
}

// budget checks the result against a budget with report's one checker
// (the checker of budgets files and gate files), and returns the broken
// limits as one error.
func budget(r *Result, b report.Budget) error {
	var broken []string
	for _, v := range b.Check(&r.rec) {
		broken = append(broken, fmt.Sprintf("its %s is %s, allowed %s", v.Metric, v.Measured, v.Allowed))
	}
	if len(broken) == 0 {
		return nil
	}
	return errors.New(strings.Join(broken, "; "))
}

// DetectWithin succeeds when the watcher gave up on its dead peer within d
// at the 95th percentile, a censored sample counting as slower than any
// budget (report.Budget's rule), and no sample is an error.
func DetectWithin(d time.Duration) types.GomegaMatcher {
	return &resultMatcher{what: fmt.Sprintf("detect the fault within %v at p95", d), check: func(r *Result) error {
		return budget(r, report.Budget{P95: &d})
	}}
}

// NeverDetect succeeds when no sample decided within its budget: the
// library cannot see this fault (a proxy hides the peer, a default timer
// is hours long).
func NeverDetect() types.GomegaMatcher {
	return &resultMatcher{what: "never decide", check: func(r *Result) error {
		for i, s := range r.rec.Samples {
			if s.Detected {
				return fmt.Errorf("sample %d decided %q", i, s.Reason)
			}
		}
		return nil
	}}
}

// Survive succeeds when a disturbance (a router restart, a latency spike)
// left the healthy connection alone: no false positive in any sample.
func Survive() types.GomegaMatcher {
	return &resultMatcher{what: "survive the disturbance with no false positive", check: func(r *Result) error {
		if r.rec.Kind != report.KindDisturbance {
			return fmt.Errorf("%s is not a disturbance but a %s cell", r.rec.Fault, r.rec.Kind)
		}
		none := 0
		return budget(r, report.Budget{FalsePositives: &none})
	}}
}

// AgreeWithTheory succeeds when the judge (report.Cell.JudgeSample) finds
// every sample what its theory says: inside its prediction (its own
// forecast, or the cell's range, ± report.PredictionTolerance) with a
// declared reason, censored where theory says so, no false positive where
// theory says the connection survives.
func AgreeWithTheory() types.GomegaMatcher {
	return &resultMatcher{what: "agree with its theory", check: func(r *Result) error {
		for i, s := range r.rec.Samples {
			if v := r.rec.JudgeSample(s); !v.Agrees {
				return fmt.Errorf("sample %d %s", i, v.Why)
			}
		}
		return nil
	}}
}

// GiveUpWith succeeds when every sample that decided gave one of reasons.
func GiveUpWith(reasons ...string) types.GomegaMatcher {
	return &resultMatcher{what: fmt.Sprintf("give up with one of %v", reasons), check: func(r *Result) error {
		for i, s := range r.rec.Samples {
			if s.Detected && !slices.Contains(reasons, s.Reason) {
				return fmt.Errorf("sample %d gave %q (reasons seen: %v)", i, s.Reason, sortedReasons(r.rec))
			}
		}
		return nil
	}}
}
