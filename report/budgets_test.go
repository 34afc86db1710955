package report

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseBudgetsTestdata(t *testing.T) {
	data := testdataBytes(t, "budgets.yaml")
	b, err := ReadBudgets("testdata/budgets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Budgets) != 4 {
		t.Fatalf("%d budgets, want 4", len(b.Budgets))
	}
	first := b.Budgets[0]
	if first.Name != "keepalive notices a pulled cable" || first.Detector != "keepalive-tuned:cnt=3,idle=1s,intvl=1s" ||
		*first.P95 != 5*time.Second || *first.Max != 4500*time.Millisecond || *first.Censored != 0 || first.P50 != nil || first.Errors != nil {
		t.Errorf("first budget %+v", first)
	}
	if first.Line != lineContaining(t, data, "- name: keepalive") {
		t.Errorf("first budget on line %d", first.Line)
	}
	if b.Budgets[1].Name != "heartbeat-inband:interval=200ms,misses=3 × host-crash (server)" {
		t.Errorf("default name %q", b.Budgets[1].Name)
	}
	if b.Budgets[2].Kind != KindDisturbance || *b.Budgets[2].FalsePositives != 0 {
		t.Errorf("third budget %+v", b.Budgets[2])
	}
}

func TestParseBudgetsRejects(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		line  int
		wants []string
	}{
		{"empty", "", 0, []string{"is empty"}},
		{"comments only", "# nothing\n", 0, []string{"no YAML document"}},
		{"no budgets", "budgets: []\n", 1, []string{"lists no budget"}},
		{"unknown top key", "budget:\n  - detector: read-eof\n", 1, []string{`unknown key "budget"`}},
		{"unknown key", "budgets:\n  - detector: read-eof\n    fault: graceful-close\n    p99: 1s\n", 4, []string{`unknown key "p99"`, "p95"}},
		{"bad duration", "budgets:\n  - detector: read-eof\n    fault: graceful-close\n    p95: 5\n", 4, []string{`budget 1 p95 is "5", which is not a Go duration`}},
		{"negative duration", "budgets:\n  - detector: read-eof\n    fault: graceful-close\n    max: -1s\n", 4, []string{"not a Go duration"}},
		{"bad count", "budgets:\n  - detector: read-eof\n    fault: graceful-close\n    censored: many\n", 4, []string{`budget 1 censored is "many", which is not a whole number`}},
		{"negative count", "budgets:\n  - detector: read-eof\n    fault: graceful-close\n    errors: -1\n", 4, []string{"not a whole number of 0 or more"}},
		{"no detector", "budgets:\n  - fault: graceful-close\n", 2, []string{"budget 1 has no detector"}},
		{"no fault", "budgets:\n  - detector: read-eof\n  - detector: rdhup\n    fault: x\n", 2, []string{"budget 1 has no fault"}},
		{"bad spec", "budgets:\n  - detector: read-eof\n    fault: x\n  - detector: keepalive-tuned:idle\n    fault: x\n", 4, []string{"budget 2 has a bad detector"}},
		{"bad side", "budgets:\n  - detector: read-eof\n    fault: x\n    side: both\n", 2, []string{`side "both"`}},
		{"bad kind", "budgets:\n  - detector: read-eof\n    fault: x\n    kind: soak\n", 2, []string{`kind "soak"`}},
		{"not a list", "budgets: 5\n", 1, []string{"budgets is \"5\", where a list belongs"}},
		{"syntax", "budgets:\n  - detector: read-eof\n    fault: x\n  y\n", 4, []string{"not valid YAML"}},
		{"two documents", "budgets:\n  - detector: read-eof\n    fault: x\n---\nbudgets: []\n", 4, []string{"second YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBudgets("ci/budgets.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			ie := wantInputError(t, err, append(tt.wants, "ci/budgets.yaml")...)
			if tt.line > 0 && ie.Line != tt.line {
				t.Errorf("line %d, want %d: %v", ie.Line, tt.line, err)
			}
		})
	}
	_, err := ReadBudgets(filepath.Join(t.TempDir(), "missing.yaml"))
	wantInputError(t, err, "missing.yaml", "cannot be read")
}

func TestCheckBudgetsTestdata(t *testing.T) {
	r := testdataReport(t)
	b, err := ReadBudgets("testdata/budgets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := CheckBudgets(r, b)
	type broken struct{ budget, metric string }
	var got []broken
	for _, v := range g.Broken {
		got = append(got, broken{v.Budget, v.Metric})
	}
	hb := "heartbeat-inband:interval=200ms,misses=3 × host-crash (server)"
	want := []broken{
		{hb, "p95"}, // the censored sample ranks as +Inf
		{hb, "censored"},
		{hb, "errors"}, // errors default to 0
		{"heartbeat-inband:interval=200ms,misses=3 × router-restart:outage=300ms (disturbance)", "false_positives"},
		{"keepalive-default × host-crash", "match"},
	}
	if len(got) != len(want) {
		t.Fatalf("broken %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("broken[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if g.OK() || g.Checked != 3 {
		t.Errorf("OK %v checked %d", g.OK(), g.Checked)
	}
	if s := g.Broken[0].String(); !strings.Contains(s, "p95 is > 5s (censored), allowed 1s") {
		t.Errorf("violation text %q", s)
	}
	if s := g.Broken[4].String(); !strings.Contains(s, "matched no cell") {
		t.Errorf("unmatched text %q", s)
	}
	text := g.Text()
	for _, w := range []string{"5 broken", "keepalive-default × host-crash", "(no cell matched)"} {
		if !strings.Contains(text, w) {
			t.Errorf("gate text lacks %q:\n%s", w, text)
		}
	}
}

func TestCheckBudgetsLimits(t *testing.T) {
	cell := Cell{Detector: "user-timeout:timeout=2s,every=200ms", Fault: "blackhole", Side: "client", Kind: KindDetection, BudgetS: 10,
		Samples: []Sample{detected(2.1), detected(2.2), detected(2.3), detected(2.4), detected(2.5)}}
	r := &Report{Schema: SchemaV1, Cells: []Cell{cell}}
	d := func(s string) *time.Duration { v, _ := time.ParseDuration(s); return &v }
	n := func(v int) *int { return &v }
	tests := []struct {
		name    string
		budget  Budget
		samples []Sample
		metrics []string
	}{
		{"holds", Budget{P50: d("2.3s"), P95: d("2.5s"), Max: d("2.5s"), Censored: n(0)}, nil, nil},
		{"p50", Budget{P50: d("2.29s")}, nil, []string{"p50"}},
		{"p95 and max", Budget{P95: d("2s"), Max: d("2s")}, nil, []string{"p95", "max"}},
		{"censored breaks max", Budget{Max: d("9s"), Censored: n(1)}, []Sample{censored()}, []string{"max"}},
		{"censored count", Budget{Censored: n(0)}, []Sample{censored()}, []string{"censored"}},
		{"errors allowed", Budget{Errors: n(1)}, []Sample{failed("peer crashed")}, nil},
		{"errors default", Budget{}, []Sample{failed("peer crashed")}, []string{"errors"}},
		{"side mismatch", Budget{Side: "server"}, nil, []string{"match"}},
		{"kind mismatch", Budget{Kind: KindDisturbance}, nil, []string{"match"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := cloneReport(r)
			rr.Cells[0].Samples = append(rr.Cells[0].Samples, tt.samples...)
			b := tt.budget
			b.Name, b.Detector, b.Fault = tt.name, "user-timeout:every=200ms,timeout=2000ms", "blackhole"
			g := CheckBudgets(rr, &Budgets{Budgets: []Budget{b}})
			var got []string
			for _, v := range g.Broken {
				got = append(got, v.Metric)
			}
			if strings.Join(got, ",") != strings.Join(tt.metrics, ",") {
				t.Errorf("broken %v, want %v", got, tt.metrics)
			}
		})
	}
}

func TestBudgetsValidate(t *testing.T) {
	b, err := ReadBudgets("testdata/budgets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	known := func(names ...string) func(string) bool {
		return func(n string) bool {
			for _, k := range names {
				if k == n {
					return true
				}
			}
			return false
		}
	}
	faults := known("peer-cable-pull", "host-crash", "router-restart")
	if err := b.Validate(known("keepalive-tuned", "heartbeat-inband", "keepalive-default"), faults); err != nil {
		t.Errorf("Validate: %v", err)
	}
	err = b.Validate(known("keepalive-tuned", "heartbeat-inband"), faults)
	ie := wantInputError(t, err, "testdata/budgets.yaml", `unknown detector "keepalive-default"`)
	if ie.Line != b.Budgets[3].Line {
		t.Errorf("line %d, want %d", ie.Line, b.Budgets[3].Line)
	}
	err = b.Validate(known("keepalive-tuned", "heartbeat-inband", "keepalive-default"), known("peer-cable-pull"))
	wantInputError(t, err, `unknown fault "host-crash"`)
}

// TestHarnessBudget: a budgets file's harness section holds the harness's
// error at p99 and the probe's increase over the machine's own baseline;
// where the baseline leaves no room under the p99 mark, only the increase
// is held; a report that measured neither breaks it.
func TestHarnessBudget(t *testing.T) {
	b, err := ParseBudgets("b.yaml", []byte("budgets:\n  - detector: read-eof\n    fault: graceful-close\nharness:\n  p99: 1ms\n  increase_p99: 300us\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Harness == nil || b.Harness.Line != 5 {
		t.Fatalf("harness section %+v, want one at line 5", b.Harness)
	}
	q := func(p99 float64) *Quantiles { return &Quantiles{P50: p99 / 2, P99: p99, N: 1000} }
	tests := []struct {
		name string
		env  Environment
		want []string // metrics broken
	}{
		{"held", Environment{CalibrationErrorMs: q(0.4), ProbeUnloadedMs: q(0.2), ProbeLoadedMs: q(0.35)}, nil},
		{"the error over its mark", Environment{CalibrationErrorMs: q(1.2), ProbeUnloadedMs: q(0.2), ProbeLoadedMs: q(0.35)}, []string{"harness p99"}},
		{"a 1 ms machine holds only the increase", Environment{CalibrationErrorMs: q(1.2), ProbeUnloadedMs: q(1.0), ProbeLoadedMs: q(1.2)}, nil},
		{"the increase over its limit", Environment{CalibrationErrorMs: q(0.9), ProbeUnloadedMs: q(0.2), ProbeLoadedMs: q(0.6)}, []string{"probe p99 increase over the unloaded baseline"}},
		{"nothing measured", Environment{}, []string{"harness p99", "probe p99 increase over the unloaded baseline"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, v := range b.Harness.Check(&tt.env) {
				got = append(got, v.Metric)
				if !strings.Contains(v.String(), "the harness's timing error") {
					t.Errorf("violation %q does not name the harness", v.String())
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("broken %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := ParseBudgets("b.yaml", []byte("budgets:\n  - detector: read-eof\n    fault: graceful-close\nharness: {}\n")); err == nil || !strings.Contains(err.Error(), "sets no limit") {
		t.Errorf("an empty harness section: %v, want one sentence saying it sets no limit", err)
	}
}
