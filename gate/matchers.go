package gate

import (
	"fmt"
	"math"
	"slices"
	"sort"
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

// Match checks the result; a sample error always fails it.
func (m *resultMatcher) Match(actual any) (bool, error) {
	r, ok := actual.(*Result)
	if !ok || r == nil || r.Cell == nil {
		return false, fmt.Errorf("gate matchers take the *gate.Result of Measure, not %T", actual)
	}
	for i, s := range r.Record.Samples {
		if s.Error != "" {
			m.fail = fmt.Errorf("sample %d could not be measured: %s", i, s.Error)
			return false, nil
		}
	}
	if len(r.Record.Samples) == 0 {
		m.fail = fmt.Errorf("no sample was measured")
		return false, nil
	}
	m.fail = m.check(r)
	return m.fail == nil, nil
}

// FailureMessage names the cell, the broken expectation and every sample.
func (m *resultMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("%v\nwas expected to %s, but %v", actual, m.what, m.fail)
}

// NegatedFailureMessage is the message of a negated matcher.
func (m *resultMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("%v\nwas expected not to %s", actual, m.what)
}

// p95 ranks every sample, a censored one as slower than any (+Inf), by the
// report's one quantile rule.
func p95(rec report.Cell) float64 {
	var xs []float64
	for _, s := range rec.Samples {
		if s.Detected && s.Seconds != nil {
			xs = append(xs, *s.Seconds)
		} else {
			xs = append(xs, math.Inf(1))
		}
	}
	sort.Float64s(xs)
	return report.NearestRank(xs, 0.95)
}

// DetectWithin succeeds when the watcher gave up on its dead peer within d
// at the 95th percentile, a censored sample counting as slower than any
// budget, and no sample is an error.
func DetectWithin(d time.Duration) types.GomegaMatcher {
	return &resultMatcher{what: fmt.Sprintf("detect the fault within %v at p95", d), check: func(r *Result) error {
		if got := p95(r.Record); got > d.Seconds() {
			if math.IsInf(got, 1) {
				return fmt.Errorf("its p95 is past the budget: too many samples did not decide")
			}
			return fmt.Errorf("its p95 is %.3f s", got)
		}
		return nil
	}}
}

// NeverDetect succeeds when no sample decided within its budget: the
// library cannot see this fault (a proxy hides the peer, a default timer
// is hours long).
func NeverDetect() types.GomegaMatcher {
	return &resultMatcher{what: "never decide", check: func(r *Result) error {
		for i, s := range r.Record.Samples {
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
		if r.Record.Kind != report.KindDisturbance {
			return fmt.Errorf("%s is not a disturbance but a %s cell", r.Record.Fault, r.Record.Kind)
		}
		if r.Record.FalsePositives > 0 {
			return fmt.Errorf("it dropped the healthy connection %d times", r.Record.FalsePositives)
		}
		return nil
	}}
}

// GiveUpWith succeeds when every sample that decided gave one of reasons.
func GiveUpWith(reasons ...string) types.GomegaMatcher {
	return &resultMatcher{what: fmt.Sprintf("give up with one of %v", reasons), check: func(r *Result) error {
		for i, s := range r.Record.Samples {
			if s.Detected && !slices.Contains(reasons, s.Reason) {
				return fmt.Errorf("sample %d gave %q (reasons seen: %v)", i, s.Reason, sortedReasons(r.Record))
			}
		}
		return nil
	}}
}
