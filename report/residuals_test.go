package report

import (
	"strings"
	"testing"

	"github.com/halfopen/halfopen/tcprules"
)

func forecastSample(secs, forecast float64) Sample {
	r := secs - forecast
	return Sample{Detected: true, Seconds: &secs, Reason: "ETIMEDOUT", Forecast: &tcprules.Forecast{AtS: forecast, Rule: "rule"}, ResidualS: &r}
}

// TestResiduals: per family, quantiles of |residual| over detected
// samples, the count within ±50 ms, and censored samples whose forecast
// fell inside the budget counted as surprises (one beyond it is not).
func TestResiduals(t *testing.T) {
	r := &Report{Cells: []Cell{
		{Detector: "keepalive-tuned:idle=1s", Fault: "blackhole", BudgetS: 10, Samples: []Sample{
			forecastSample(3.01, 3.0), forecastSample(3.9, 4.0), forecastSample(2.98, 3.0),
			{Reason: "budget", Forecast: &tcprules.Forecast{AtS: 4, Rule: "keepalive"}},
			{Reason: "budget", Forecast: &tcprules.Forecast{AtS: 924, Rule: "retries2"}},
		}},
		{Detector: "keepalive-tuned:idle=2s", Fault: "host-crash", Phase: "in-flight", BudgetS: 10, Samples: []Sample{forecastSample(5.2, 5.0)}},
		{Detector: "read-eof", Fault: "graceful-close", Samples: []Sample{{Detected: true, Reason: "EOF"}}},
	}}
	got := Residuals(r)
	if len(got) != 1 {
		t.Fatalf("families %+v, want keepalive-tuned only (read-eof has no forecast)", got)
	}
	k := got[0]
	if k.Family != "keepalive-tuned" || k.N != 4 || k.Within != 2 || k.Surprises != 1 {
		t.Errorf("summary %+v, want n 4, 2 within ±50 ms, 1 censored against its forecast", k)
	}
	if !close9(k.P50, 0.02) || !close9(k.P95, 0.2) || !close9(k.Max, 0.2) {
		t.Errorf("p50 %v p95 %v max %v, want 0.02, 0.2, 0.2", k.P50, k.P95, k.Max)
	}
	var b strings.Builder
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "## Residuals") || !strings.Contains(b.String(), "| keepalive-tuned | 4 | 2 |") {
		t.Errorf("the Markdown report has no residual table for keepalive-tuned:\n%s", b.String())
	}
}

func close9(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// TestPhaseKey: an in-flight cell is a cell of its own; an idle one keeps
// the key it had before phases existed.
func TestPhaseKey(t *testing.T) {
	r := &Report{}
	idle := r.CellInPhase("keepalive-tuned:idle=1s", "blackhole", "client", KindDetection, "idle")
	idle.BudgetS = 1
	r.CellInPhase("keepalive-tuned:idle=1s", "blackhole", "client", KindDetection, "in-flight").BudgetS = 2
	if len(r.Cells) != 2 {
		t.Fatalf("%d cells, want the idle and the in-flight one", len(r.Cells))
	}
	old := KeyOf("keepalive-tuned:idle=1s", "blackhole", "client", KindDetection)
	if r.Cells[0].Key() != old || r.Cells[0].Phase != "" {
		t.Errorf("idle cell key %+v, want the phase-less %+v", r.Cells[0].Key(), old)
	}
	if k := r.Cells[1].Key(); k.Phase != "in-flight" || k == old || !strings.Contains(k.String(), "in-flight") {
		t.Errorf("in-flight cell key %+v (%s)", k, k)
	}
	if c := r.CellInPhase("keepalive-tuned:idle=1s", "blackhole", "client", KindDetection, "in-flight"); c.BudgetS != 2 {
		t.Errorf("the in-flight cell was not found again: %+v", c)
	}
}
