package report

import (
	"fmt"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/tcprules"
)

func forecastSample(secs, forecast float64) Sample {
	r := secs - forecast
	return Sample{Detected: true, Seconds: &secs, Reason: "ETIMEDOUT", Forecast: &tcprules.Forecast{AtS: forecast, LoS: forecast, HiS: forecast, Rule: "rule"}, ResidualS: &r}
}

// TestResiduals: per family, quantiles of |residual| over detected
// samples, the count within ±50 ms, and censored samples the judge finds
// against their forecast counted (one whose forecast is past the budget is
// not); the overview names every sample that missed its forecast.
func TestResiduals(t *testing.T) {
	r := &Report{Cells: []Cell{
		{Detector: "keepalive-tuned:idle=1s", Fault: "blackhole", Kind: KindDetection, Expect: ExpectDetect, BudgetS: 10, Samples: []Sample{
			forecastSample(3.01, 3.0), forecastSample(3.9, 4.0), forecastSample(2.98, 3.0),
			{Reason: "budget", Forecast: &tcprules.Forecast{AtS: 4, LoS: 4, HiS: 4, Rule: "keepalive"}},
			{Reason: "budget", Forecast: &tcprules.Forecast{AtS: 924, LoS: 924, HiS: 939, Rule: "retries2"}},
		}},
		{Detector: "keepalive-tuned:idle=2s", Fault: "host-crash", Kind: KindDetection, Expect: ExpectDetect, Phase: "in-flight", BudgetS: 10, Samples: []Sample{forecastSample(5.2, 5.0)}},
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
	for _, want := range []string{"2 of 4 detected samples with a forecast decided within ± 50 ms", "3 samples missed it", "decided −100 ms from its forecast 4 s", "did not decide within the budget 10 s, where its forecast says 4 s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the overview's forecast finding does not say %q:\n%s", want, b.String())
		}
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

// TestInFlightCellsHaveTheirOwnRow: the overview does not merge an idle
// and an in-flight cell of one detector × fault into one matrix place (it
// would show only the worse); each has its row and its per-fault group.
func TestInFlightCellsHaveTheirOwnRow(t *testing.T) {
	ok := func(v float64) *float64 { return &v }
	r := &Report{Cells: []Cell{
		{Detector: "keepalive-tuned:idle=1s", Fault: "blackhole", Side: "client", Kind: KindDetection, Expect: ExpectDetect, BudgetS: 10, PredictedS: &[2]float64{1, 2},
			Samples: []Sample{{Detected: true, Seconds: ok(1.5), Reason: "ETIMEDOUT"}}},
		{Detector: "keepalive-tuned:idle=1s", Fault: "blackhole", Side: "client", Kind: KindDetection, Expect: ExpectNever, Phase: "in-flight", BudgetS: 10,
			Samples: []Sample{{Reason: "budget"}}},
	}}
	ms := buildMatrices(r, []Verdict{r.Cells[0].Judge(), r.Cells[1].Judge()})
	if len(ms) != 1 || len(ms[0].Rows) != 2 {
		t.Fatalf("matrices %+v, want one side with two rows (idle, in-flight)", ms)
	}
	var b strings.Builder
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "blackhole · in-flight") {
		t.Errorf("the report names no in-flight row:\n%s", b.String())
	}
}

// TestEnvironmentShowsPrivilege: a run's privilege mode and what it went
// without are in both human formats.
func TestEnvironmentShowsPrivilege(t *testing.T) {
	r := &Report{Environment: Environment{Privilege: &Privilege{Mode: "user namespace (uid 1000)", Degraded: []string{"real-time priority is refused"}}}}
	var md, html strings.Builder
	if err := Markdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"Markdown": md.String(), "HTML": html.String()} {
		if !strings.Contains(out, "user namespace (uid 1000); without: real-time priority is refused") {
			t.Errorf("the %s report does not show the privilege", name)
		}
	}
}

// TestEveryForecastMissIsNamed: past the first forecastMissesShown, the
// overview still names every sample that missed, one line per cell with
// each sample's residual.
func TestEveryForecastMissIsNamed(t *testing.T) {
	r := &Report{}
	for i := range 8 {
		c := Cell{Detector: fmt.Sprintf("keepalive-tuned:idle=%ds", i+1), Fault: "blackhole", Side: "client", Kind: KindDetection, Expect: ExpectDetect, BudgetS: 100}
		for range 3 {
			c.Samples = append(c.Samples, forecastSample(float64(i)+1.5, float64(i)+1))
		}
		r.Cells = append(r.Cells, c)
	}
	var b strings.Builder
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "24 samples missed it") || !strings.Contains(out, "and 4 more, by cell") {
		t.Fatalf("the finding does not count the 24 misses and the 4 past the first 20:\n%s", out)
	}
	// Cell 7 (idle=7s) has its samples 2 and cell 8 all three past the 20th.
	for _, want := range []string{"idle=7s", "sample 2 (+500 ms)", "idle=8s", "samples 0 (+500 ms), 1 (+500 ms), 2 (+500 ms)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the overview does not name %q", want)
		}
	}
}
