package gate

import (
	"fmt"
	"strings"

	"github.com/onsi/gomega/types"

	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/tcprules"
)

// sampleMatcher is a Gomega matcher that judges a *Result sample by
// sample. A sample that errored, or a result with no sample, is an error
// of Match: it fails the assertion whether or not it is negated.
type sampleMatcher struct {
	what  string
	check func(r *Result) error
	fail  error
}

// Match checks every sample of the result.
func (m *sampleMatcher) Match(actual any) (bool, error) {
	r, ok := actual.(*Result)
	if !ok || r == nil || r.Describe == "" {
		return false, fmt.Errorf("gate matchers take the *gate.Result of Measure, not %T", actual)
	}
	if len(r.rec.Samples) == 0 {
		return false, fmt.Errorf("%v\nmeasured no sample, so it cannot %s", r, m.what)
	}
	for i, s := range r.rec.Samples {
		if s.Error != "" {
			return false, fmt.Errorf("%v\ncannot %s: sample %d could not be measured: %s", r, m.what, i, s.Error)
		}
	}
	m.fail = m.check(r)
	return m.fail == nil, nil
}

// FailureMessage names the cell, the broken expectation and every sample.
func (m *sampleMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("%v\nwas expected to %s, but %v", actual, m.what, m.fail)
}

// NegatedFailureMessage is the message of a negated matcher.
func (m *sampleMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("%v\nwas expected not to %s", actual, m.what)
}

// FollowForecast succeeds when every sample has its own forecast (the
// kernel's rule for the state the fault met, harness.SamplePredictor) and
// the one judge (report.Cell.JudgeSample) finds it agrees with it: a
// decision inside the forecast's window, widened by
// report.PredictionTolerance, with a declared reason; a censoring where
// the forecast says never or reaches past the budget. Each sample is held
// to the phase it met, so a sample of an in-flight cell whose fault came
// after the request was acknowledged is held to the idle rule.
func FollowForecast() types.GomegaMatcher {
	return &sampleMatcher{what: fmt.Sprintf("follow each sample's own forecast (± %v)", report.PredictionTolerance), check: func(r *Result) error {
		var bad []string
		for i, s := range r.rec.Samples {
			if s.Forecast == nil {
				bad = append(bad, fmt.Sprintf("sample %d has no forecast (its state at the fault: %s)", i, stateNote(s.State)))
				continue
			}
			if v := r.rec.JudgeSample(s); !v.Agrees {
				bad = append(bad, fmt.Sprintf("sample %d %s", i, v.Why))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("%s", strings.Join(bad, "; "))
		}
		return nil
	}}
}

// NeverDetectInPhase succeeds when at least one sample met the connection
// in phase (its state at the fault, not the cell's aim) and none of those
// decided within the budget: a finding such as "keepalive alone never
// notices a dead server while a request is in flight". Pair it with
// FollowForecast, which holds the other samples to their own rule.
func NeverDetectInPhase(phase tcprules.Phase) types.GomegaMatcher {
	return &sampleMatcher{what: fmt.Sprintf("never decide on a sample that met the connection %s", phase), check: func(r *Result) error {
		met := 0
		for i, s := range r.rec.Samples {
			if s.Phase != phase {
				continue
			}
			met++
			if s.Detected {
				return fmt.Errorf("sample %d met it %s and decided %q", i, phase, s.Reason)
			}
		}
		if met == 0 {
			return fmt.Errorf("no sample met the connection %s", phase)
		}
		return nil
	}}
}

func stateNote(st *tcprules.ConnState) string {
	if st == nil {
		return "not read"
	}
	if st.Note != "" {
		return st.Note
	}
	return string(st.Phase())
}
