package report

import (
	"bytes"
	"strings"
	"testing"
)

// The environment table shows the unloaded baseline and the loaded probe
// side by side with their n, and says in one sentence when the machine's
// own baseline leaves the absolute mark no room.
func TestProbeInTheEnvironmentTable(t *testing.T) {
	for _, tc := range []struct {
		name             string
		unloaded, loaded *Quantiles
		want, wantNot    []string
	}{
		{"not measured", nil, nil, nil, []string{"latency probe", "probe note"}},
		{"low baseline: the absolute mark holds, no note",
			&Quantiles{P50: 0.1, P99: 0.2, Max: 3, N: 1000}, &Quantiles{P50: 0.15, P99: 0.4, Max: 9, N: 5000},
			[]string{"unloaded p50 100 µs, p99 200 µs, max 3 ms (n=1000)", "loaded p50 150 µs, p99 400 µs, max 9 ms (n=5000)", "p99 increase 200 µs (limit 300 µs)"},
			[]string{"probe note"}},
		{"baseline above 1 ms: one sentence says so",
			&Quantiles{P50: 0.3, P99: 1.2, N: 1000}, &Quantiles{P50: 0.3, P99: 1.3, N: 800},
			[]string{"(n=1000)", "(n=800)", "probe note", "is itself above 1 ms"}, nil},
		{"baseline near 1 ms: one sentence says so",
			&Quantiles{P50: 0.3, P99: 0.95, N: 1000}, nil,
			[]string{"(n=1000)", "leaves less than 150 µs under 1 ms"}, []string{"p99 increase"}},
	} {
		r := &Report{Schema: SchemaV1, Environment: Environment{Kernel: "k", ProbeUnloadedMs: tc.unloaded, ProbeLoadedMs: tc.loaded}}
		var md, html bytes.Buffer
		if err := Markdown(&md, r); err != nil {
			t.Fatal(err)
		}
		if err := HTML(&html, r); err != nil {
			t.Fatal(err)
		}
		for what, out := range map[string]string{"markdown": md.String(), "html": html.String()} {
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s: %s lacks %q", tc.name, what, w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("%s: %s holds %q", tc.name, what, w)
				}
			}
		}
	}
}

// Merged parts keep the lowest baseline and bound the loaded probe from
// above, so that the increase of the merged report is not understated.
func TestMergeProbe(t *testing.T) {
	a := &Report{Schema: SchemaV1, Environment: Environment{ProbeUnloadedMs: &Quantiles{P50: 0.1, P99: 0.25, N: 1000}, ProbeLoadedMs: &Quantiles{P50: 0.2, P99: 0.4, N: 100}}}
	b := &Report{Schema: SchemaV1, Environment: Environment{ProbeUnloadedMs: &Quantiles{P50: 0.1, P99: 0.2, N: 1000}, ProbeLoadedMs: &Quantiles{P50: 0.1, P99: 0.6, N: 300}}}
	c := &Report{Schema: SchemaV1}
	m, err := Merge(a, c, b)
	if err != nil {
		t.Fatal(err)
	}
	e := m.Environment
	if e.ProbeUnloadedMs == nil || e.ProbeUnloadedMs.P99 != 0.2 {
		t.Errorf("merged baseline %+v, want the lower p99 0.2 ms", e.ProbeUnloadedMs)
	}
	if e.ProbeLoadedMs == nil || e.ProbeLoadedMs.P99 != 0.6 || e.ProbeLoadedMs.P50 != 0.2 || e.ProbeLoadedMs.N != 400 {
		t.Errorf("merged loaded probe %+v, want p50 0.2, p99 0.6, n 400", e.ProbeLoadedMs)
	}
	if inc, ok := e.ProbeIncreaseMs(); !ok || inc < 0.399 || inc > 0.401 {
		t.Errorf("merged increase %g ms (%v), want 0.4", inc, ok)
	}
	if a.Environment.ProbeUnloadedMs.P99 != 0.25 || a.Environment.ProbeLoadedMs.N != 100 {
		t.Error("Merge changed a part")
	}
}
