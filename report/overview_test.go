package report

import (
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	band := &[2]float64{3, 4}
	tests := []struct {
		name  string
		cell  Cell
		want  Outcome
		short string
	}{
		{"inside the band", Cell{Kind: KindDetection, Expect: "detect", PredictedS: band, Samples: times(3.1, 3.5, 3.9)}, OutcomeWithin, "3.5 s"},
		{"inside the tolerance", Cell{Kind: KindDetection, Expect: "detect", PredictedS: band, Samples: times(2.9, 4.1)}, OutcomeWithin, "2.9 s"},
		{"outside the band", Cell{Kind: KindDetection, Expect: "detect", PredictedS: band, Samples: times(3.1, 4.3)}, OutcomeOutside, "3.1 s"},
		{"unpredicted reason", Cell{Kind: KindDetection, Expect: "detect", PredictedS: band, Reasons: []string{"EOF"}, Samples: times(3.1)}, OutcomeOutside, "3.1 s"},
		{"censored where theory detects", Cell{Kind: KindDetection, Expect: "detect", PredictedS: band, BudgetS: 20, Samples: []Sample{detected(3.2), censored()}}, OutcomeOutside, "3.2 s+"},
		{"all censored where theory detects", Cell{Kind: KindDetection, Expect: "detect", PredictedS: band, BudgetS: 20, Samples: []Sample{censored()}}, OutcomeOutside, "> 20 s"},
		{"never, as theory says", Cell{Kind: KindDetection, Expect: "never", BudgetS: 3, Samples: []Sample{censored(), censored()}}, OutcomeNever, "never"},
		{"decided where theory says never", Cell{Kind: KindDetection, Expect: "never", BudgetS: 3, Samples: times(2.5)}, OutcomeOutside, "2.5 s"},
		{"no range", Cell{Kind: KindDetection, Samples: times(1.2)}, OutcomeMeasured, "1.2 s"},
		{"an error outranks", Cell{Kind: KindDetection, Expect: "detect", PredictedS: band, Samples: []Sample{detected(3.5), failed("peer never said connected")}}, OutcomeError, "err"},
		{"survived", Cell{Kind: KindDisturbance, Expect: "survive", Samples: []Sample{{Reason: "survived"}}}, OutcomeSurvived, "ok"},
		{"false positives", Cell{Kind: KindDisturbance, Expect: "survive", FalsePositives: 3, Samples: []Sample{{Reason: "survived"}}}, OutcomeFalsePositive, "✗3"},
		{"no samples", Cell{Kind: KindDetection}, OutcomeNone, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.cell.Judge()
			if v.Outcome != tt.want || v.Short != tt.short {
				t.Errorf("Judge() = %v %q (%s), want %v %q", v.Outcome, v.Short, v.Why, tt.want, tt.short)
			}
			if v.Why == "" {
				t.Error("no reason given")
			}
		})
	}
}

func TestLabeller(t *testing.T) {
	r := &Report{Cells: []Cell{
		{Detector: "keepalive-tuned:cnt=2,idle=1s,intvl=1s", Fault: "router-restart:carrier=false,outage=1s"},
		{Detector: "keepalive-tuned:cnt=3,idle=1s,intvl=1s", Fault: "router-restart:carrier=false,outage=300ms"},
		{Detector: "oob-probe:every=200ms,retries2=2", Fault: "blackhole"},
		{Detector: "external:cmd=/work/examples/c/bin/netcheck,privileged=false", Fault: "blackhole"},
		{Detector: "external:cmd=/work/examples/c/bin/select_recv,privileged=false", Fault: "blackhole"},
	}}
	lb := newLabeller(r)
	tests := map[string]string{
		// Parameters every spec of the name shares tell nothing apart.
		"keepalive-tuned:cnt=2,idle=1s,intvl=1s": "keepalive-tuned:cnt=2",
		"router-restart:carrier=false,outage=1s": "router-restart:outage=1s",
		// A name with one spec keeps its parameters.
		"oob-probe:every=200ms,retries2=2": "oob-probe:every=200ms,retries2=2",
		// Paths are cut to their base name.
		"external:cmd=/work/examples/c/bin/netcheck,privileged=false": "external:cmd=netcheck",
		"blackhole": "blackhole",
	}
	for spec, want := range tests {
		if got := lb.of(spec); got != want {
			t.Errorf("label of %s = %q, want %q", spec, got, want)
		}
	}
}

// findingText flattens a finding for assertions.
func findingText(f finding) string {
	var b strings.Builder
	b.WriteString(f.Title + ": ")
	for _, p := range f.Parts {
		b.WriteString(p.Text)
	}
	for _, l := range f.Lines {
		b.WriteString(" | ")
		for _, p := range l {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// TestFindingsFollowTheData swaps which detector notices a silent peer and
// checks that the findings swap with it: they are computed, not written.
func TestFindingsFollowTheData(t *testing.T) {
	silentCells := func(fast, blind string) []Cell {
		return []Cell{
			{Detector: fast, Fault: "blackhole", Side: "client", Kind: KindDetection, Expect: "detect", PredictedS: &[2]float64{0.4, 0.6}, Samples: times(0.5, 0.52, 0.55)},
			{Detector: blind, Fault: "blackhole", Side: "client", Kind: KindDetection, Expect: "never", BudgetS: 3, Samples: []Sample{censored(), censored()}},
			{Detector: fast, Fault: "router-restart:outage=1s", Side: "client", Kind: KindDisturbance, Expect: "survive", FalsePositives: 2, Samples: []Sample{{Reason: "survived"}, {Reason: "survived"}}},
			{Detector: blind, Fault: "router-restart:outage=1s", Side: "client", Kind: KindDisturbance, Expect: "survive", Samples: []Sample{{Reason: "survived"}}},
			{Detector: fast, Fault: "router-restart:outage=300ms", Side: "client", Kind: KindDisturbance, Expect: "survive", FalsePositives: 1, Samples: []Sample{{Reason: "survived"}}},
		}
	}
	tests := []struct {
		fast, blind string
	}{
		{"heartbeat-inband", "read-eof"},
		{"read-eof", "heartbeat-inband"},
	}
	for _, tt := range tests {
		t.Run(tt.fast, func(t *testing.T) {
			r := &Report{Cells: silentCells(tt.fast, tt.blind)}
			o := newOverview(r)
			var all []string
			for _, f := range o.findings {
				all = append(all, findingText(f))
			}
			text := strings.Join(all, "\n")
			for _, w := range []string{
				"Noticed it in every sample, fastest first (p50): " + tt.fast + " 520 ms",
				"Never, in any sample: " + tt.blind,
				"Under router-restart: 1 detector dropped a live connection; 1 other survived every variant. | " + tt.fast + ": 3 false positives in 3 samples, at outage=300ms, 1s",
				"Against theory: every one of the 2 detection cells matched its theory",
			} {
				if !strings.Contains(text, w) {
					t.Errorf("findings lack %q:\n%s", w, text)
				}
			}
		})
	}
}

func TestMatrixOrder(t *testing.T) {
	r := &Report{Cells: []Cell{
		{Detector: "a", Fault: "router-restart:outage=1s", Side: "server", Kind: KindDisturbance, Samples: []Sample{{}}},
		{Detector: "a", Fault: "blackhole", Side: "server", Kind: KindDetection, Samples: times(1)},
		{Detector: "b", Fault: "router-restart:outage=300ms", Side: "server", Kind: KindDisturbance, Samples: []Sample{{}}},
		{Detector: "b", Fault: "blackhole", Side: "client", Kind: KindDetection, Samples: times(1)},
	}}
	ms := buildMatrices(r, make([]Verdict, len(r.Cells)))
	if len(ms) != 2 || ms[0].Side != "client" || ms[1].Side != "server" {
		t.Fatalf("matrices %+v, want client then server", ms)
	}
	var faults []string
	for _, row := range ms[1].Rows {
		faults = append(faults, row.Fault)
	}
	if got := strings.Join(faults, " "); got != "blackhole router-restart:outage=300ms router-restart:outage=1s" {
		t.Errorf("server rows %s: detection first, then variants by duration", got)
	}
	if got := ms[1].Rows[1].Cells; got[0] != -1 || got[1] != 2 {
		t.Errorf("router-restart:outage=300ms cells %v, want [-1 2]", got)
	}
}

func TestSurprise(t *testing.T) {
	band := &[2]float64{3, 4}
	det := Cell{Kind: KindDetection, Expect: ExpectDetect, PredictedS: band, BudgetS: 20, Reasons: []string{"ETIMEDOUT"}}
	never := Cell{Kind: KindDetection, Expect: ExpectNever, BudgetS: 3}
	dist := Cell{Kind: KindDisturbance, Expect: ExpectSurvive}
	tests := []struct {
		name string
		cell Cell
		s    Sample
		want string // in the answer; "" for none
	}{
		{"inside", det, detected(3.5), ""},
		{"inside the tolerance", det, detected(4.1), ""},
		{"late", det, detected(4.3), "decided after 4.3 s, outside the predicted 3–4 s (± 150 ms)"},
		{"early", det, detected(2.5), "outside the predicted"},
		{"wrong reason", det, Sample{Detected: true, Seconds: f64(3.5), Reason: "EOF"}, "decided with EOF; theory allows ETIMEDOUT"},
		{"censored", det, censored(), "did not decide within the budget 20 s"},
		{"error", det, failed("peer never said connected"), "could not be measured: peer never said connected"},
		{"never, censored", never, censored(), ""},
		{"never, decided", never, detected(2.5), "decided ETIMEDOUT after 2.5 s, where theory says never"},
		{"survived", dist, Sample{Reason: "survived"}, ""},
		{"false positive", dist, Sample{Detected: true, Seconds: f64(1.2), Reason: "heartbeat", FalsePositives: 2}, "decided the live peer dead (2 false positives)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cell.Surprise(tt.s)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("Surprise = %q, want %q", got, tt.want)
			}
		})
	}
}
