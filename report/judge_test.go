package report

import (
	"strings"
	"testing"

	"github.com/halfopen/halfopen/tcprules"
)

// TestJudgeSample covers every class the judge gives a sample: by the
// cell's range, by the sample's own forecast, and where theory makes no
// claim (the Python keepalive twin behind a proxy that answers its probes).
func TestJudgeSample(t *testing.T) {
	band := &[2]float64{3, 4}
	det := Cell{Kind: KindDetection, Expect: ExpectDetect, PredictedS: band, BudgetS: 20, Reasons: []string{"ETIMEDOUT"}}
	unknown := Cell{Kind: KindDetection, Expect: ExpectUnknown, PredictedS: &[2]float64{3, 4.5}, BudgetS: 6}
	fp := Cell{Kind: KindDisturbance, Expect: ExpectFalsePositives}
	open := Cell{Kind: KindDisturbance}
	inFlight := &tcprules.Forecast{AtS: 924.6, LoS: 924.6, HiS: 939.7, Rule: "retries2 15, data in flight"}
	idle := &tcprules.Forecast{AtS: 3.2, LoS: 3.2, HiS: 3.25, Rule: "keepalive L+T+N·I"}
	never := &tcprules.Forecast{Never: true, Rule: "the proxy answers the probes"}
	with := func(s Sample, f *tcprules.Forecast) Sample { s.Forecast = f; return s }
	tests := []struct {
		name   string
		cell   Cell
		s      Sample
		class  SampleClass
		agrees bool
		why    string
	}{
		{"range: inside", det, detected(3.5), SampleWithin, true, "inside the predicted 3–4 s"},
		{"range: inside the tolerance", det, detected(4.149), SampleWithin, true, "inside"},
		{"range: late", det, detected(4.2), SampleOutside, false, "outside the predicted 3–4 s (± 150 ms)"},
		{"range: censored", det, censored(), SampleOutside, false, "did not decide within the budget 20 s"},
		{"range: reason not declared", det, Sample{Detected: true, Seconds: f64(3.5), Reason: "i/o timeout"}, SampleOutside, false, "theory allows ETIMEDOUT"},
		{"range: a role's own words, declared", Cell{Kind: KindDetection, Expect: ExpectDetect, PredictedS: band, Reasons: []string{"ETIMEDOUT", "i/o timeout"}}, Sample{Detected: true, Seconds: f64(3.5), Reason: "i/o timeout"}, SampleWithin, true, "decided i/o timeout after 3.5 s"},
		{"forecast: inside its window", det, with(detected(3.3), idle), SampleWithin, true, "inside its forecast"},
		{"forecast wins over the range", det, with(detected(3.3), &tcprules.Forecast{AtS: 1, LoS: 1, HiS: 1.1}), SampleOutside, false, "outside its forecast"},
		{"forecast: in flight, censored past the budget", det, with(censored(), inFlight), SampleCensored, true, "reaches past"},
		{"forecast: censored though due", det, with(censored(), idle), SampleOutside, false, "where its forecast says"},
		{"forecast: never, censored", det, with(censored(), never), SampleCensored, true, "as its forecast says"},
		{"forecast: never, decided", det, with(detected(2), never), SampleOutside, false, "where its forecast says never"},
		{"no claim: censored", unknown, censored(), SampleMeasured, true, "theory makes no claim"},
		{"no claim: decided anywhere", unknown, detected(0.2), SampleMeasured, true, "theory makes no claim"},
		{"error", det, failed("peer never said connected"), SampleError, false, "could not be measured"},
		{"false positives expected", fp, Sample{Detected: true, FalsePositives: 2}, SampleFalsePositive, true, "2 false positives"},
		{"survived where false positives are expected", fp, Sample{Reason: "survived"}, SampleOutside, false, "cannot tell"},
		{"false positive, no claim", open, Sample{FalsePositives: 1}, SampleFalsePositive, true, "1 false positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.cell.JudgeSample(tt.s)
			if v.Class != tt.class || v.Agrees != tt.agrees || !strings.Contains(v.Why, tt.why) {
				t.Errorf("JudgeSample = %v agrees=%v %q, want %v agrees=%v containing %q", v.Class, v.Agrees, v.Why, tt.class, tt.agrees, tt.why)
			}
		})
	}
}

// TestJudgeCellFromSamples checks that a cell's outcome is its samples'
// verdicts summed up: a cell with no claim is never red, and samples
// censored as their forecasts say keep a cell green.
func TestJudgeCellFromSamples(t *testing.T) {
	band := &[2]float64{4, 5.6}
	idle := &tcprules.Forecast{AtS: 4.1, LoS: 4.05, HiS: 4.2}
	inFlight := &tcprules.Forecast{AtS: 928.9, LoS: 928.9, HiS: 940}
	s := func(x Sample, f *tcprules.Forecast) Sample { x.Forecast = f; return x }
	tests := []struct {
		name string
		cell Cell
		want Outcome
		why  string
	}{
		{"python twin behind a proxy: censored, no claim", Cell{Kind: KindDetection, PredictedS: &[2]float64{3, 4.5}, BudgetS: 6, Samples: []Sample{censored(), censored(), censored()}}, OutcomeMeasured, "theory makes no claim"},
		{"one sample in flight, censored as forecast", Cell{Kind: KindDetection, Expect: ExpectDetect, PredictedS: band, BudgetS: 8.4, Samples: []Sample{s(censored(), inFlight), s(detected(4.1), idle)}}, OutcomeWithin, "1 sample censored, as its forecast says"},
		{"all in flight", Cell{Kind: KindDetection, Expect: ExpectDetect, PredictedS: band, BudgetS: 8.4, Samples: []Sample{s(censored(), inFlight)}}, OutcomeNever, "as theory says"},
		{"forecast missed", Cell{Kind: KindDetection, Expect: ExpectDetect, PredictedS: band, BudgetS: 8.4, Samples: []Sample{s(detected(4.9), idle)}}, OutcomeOutside, "outside its forecast"},
		{"survived where false positives are due", Cell{Kind: KindDisturbance, Expect: ExpectFalsePositives, Samples: []Sample{{Reason: "survived"}}}, OutcomeOutside, "cannot tell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.cell.Judge()
			if v.Outcome != tt.want || !strings.Contains(v.Why, tt.why) {
				t.Errorf("Judge() = %v (%s), want %v containing %q", v.Outcome, v.Why, tt.want, tt.why)
			}
		})
	}
}

// TestToleranceRecorded checks that a written report records the judge's
// tolerance, so that a reader knows the margin its verdicts used.
func TestToleranceRecorded(t *testing.T) {
	w := Memory(&Report{})
	r := w.Snapshot()
	if got := r.Environment.ToleranceS; got != PredictionTolerance.Seconds() {
		t.Errorf("ToleranceS = %v, want %v", got, PredictionTolerance.Seconds())
	}
	for name, render := range map[string]func(*strings.Builder) error{
		"markdown": func(b *strings.Builder) error { return Markdown(b, r) },
		"html":     func(b *strings.Builder) error { return HTML(b, r) },
	} {
		var b strings.Builder
		if err := render(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "judge tolerance") {
			t.Errorf("the %s report does not show the judge's tolerance", name)
		}
	}
}

// TestCensoredPastTheBudget: a cell whose predicted range reaches past its
// budget (a library's own timer of minutes, gated within 30 s) expects a
// sample censored at the budget; one whose range ends well inside it does
// not.
func TestCensoredPastTheBudget(t *testing.T) {
	censored := Sample{Reason: "budget"}
	for _, tt := range []struct {
		predicted [2]float64
		agrees    bool
	}{
		{[2]float64{240, 360}, true},
		{[2]float64{20, 31}, true},
		{[2]float64{4, 6}, false},
	} {
		c := Cell{Kind: KindDetection, Expect: ExpectDetect, BudgetS: 30, PredictedS: &tt.predicted}
		if v := c.JudgeSample(censored); v.Agrees != tt.agrees {
			t.Errorf("predicted %v, budget 30 s: censored sample %+v, want agrees %v", tt.predicted, v, tt.agrees)
		}
	}
}
