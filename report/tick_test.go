package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/tcprules"
)

// The environment table names the kernel tick the forecasts counted in,
// and whether it was read or assumed; a report written before the tick
// was recorded reads as before and says its forecasts counted in 250 Hz.
func TestTickInTheEnvironmentTable(t *testing.T) {
	old := testdataReport(t)
	if old.Environment.Tick != nil {
		t.Fatal("testdata/report.json records a tick: it no longer stands for the reports written before")
	}
	for _, tc := range []struct {
		name string
		r    *Report
		want string
	}{
		{"read", &Report{Schema: SchemaV1, Environment: Environment{Kernel: "k", Tick: &tcprules.Tick{HZ: 1000, Source: "/proc/config.gz"}}},
			"1000 Hz (1 ms jiffies), read from /proc/config.gz"},
		{"assumed", &Report{Schema: SchemaV1, Environment: Environment{Kernel: "k", Tick: &tcprules.Tick{HZ: 250, Source: "no kernel configuration readable", Assumed: true}}},
			"250 Hz (4 ms jiffies), assumed: no kernel configuration readable"},
		{"an older report", old, "250 Hz (4 ms jiffies), assumed: not recorded"},
	} {
		var md, html bytes.Buffer
		if err := Markdown(&md, tc.r); err != nil {
			t.Fatal(err)
		}
		if err := HTML(&html, tc.r); err != nil {
			t.Fatal(err)
		}
		for what, out := range map[string]string{"markdown": md.String(), "html": html.String()} {
			if !strings.Contains(out, "forecast tick") || !strings.Contains(out, tc.want) {
				t.Errorf("%s: %s lacks the forecast tick %q", tc.name, what, tc.want)
			}
		}
	}
}

// The tick survives the JSON round trip and the reader's checks, and a
// tick rate that is none is refused.
func TestTickRoundTrip(t *testing.T) {
	r := &Report{Schema: SchemaV1, Environment: Environment{Tick: &tcprules.Tick{HZ: 100, Source: "/boot/config-6.1"}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"tick":{"hz":100,"source":"/boot/config-6.1"}`) {
		t.Errorf("JSON %s", b)
	}
	got, err := Parse("r.json", b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Environment.ForecastTick() != *r.Environment.Tick {
		t.Errorf("read back %+v", got.Environment.Tick)
	}
	bad := strings.Replace(string(b), `"hz":100`, `"hz":0`, 1)
	if _, err := Parse("r.json", []byte(bad)); err == nil || !strings.Contains(err.Error(), "environment.tick.hz") {
		t.Errorf("a 0 Hz tick: %v", err)
	}
}

// Shards whose forecasts counted in one tick merge, the tick taken from
// the first that recorded one; shards of different ticks are refused.
func TestMergeTick(t *testing.T) {
	hz := func(n int) *tcprules.Tick { return &tcprules.Tick{HZ: n, Source: "/proc/config.gz"} }
	for _, tc := range []struct {
		name  string
		parts []*tcprules.Tick
		want  *tcprules.Tick // nil with refused
		err   bool
	}{
		{"none recorded", []*tcprules.Tick{nil, nil}, nil, false},
		{"the same", []*tcprules.Tick{hz(1000), hz(1000)}, hz(1000), false},
		{"an older part, 250 Hz", []*tcprules.Tick{nil, hz(250)}, hz(250), false},
		{"different", []*tcprules.Tick{hz(250), hz(1000)}, nil, true},
		{"an older part against 1000 Hz", []*tcprules.Tick{nil, hz(1000)}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var parts []*Report
			for _, p := range tc.parts {
				parts = append(parts, &Report{Schema: SchemaV1, Environment: Environment{Tick: p}})
			}
			m, err := Merge(parts...)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), "Hz") {
					t.Errorf("merged %+v, want an error naming the ticks", m.Environment.Tick)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (m.Environment.Tick == nil) != (tc.want == nil) || (tc.want != nil && *m.Environment.Tick != *tc.want) {
				t.Errorf("merged tick %+v, want %+v", m.Environment.Tick, tc.want)
			}
			if m.Environment.Tick != nil && (m.Environment.Tick == parts[0].Environment.Tick || m.Environment.Tick == parts[1].Environment.Tick) {
				t.Error("the merged report shares a part's tick")
			}
		})
	}
}
