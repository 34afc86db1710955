package report

import (
	"testing"
	"time"
)

// shards splits the testdata report into two shards of one run.
func shards(t *testing.T) (*Report, *Report) {
	r := testdataReport(t)
	a, b := cloneReport(r), cloneReport(r)
	a.Shard, b.Shard = "1/2", "2/2"
	b.Started = r.Started.Add(-time.Minute)
	b.Complete = false
	// a: cell 0 and the first half of cell 2; b: cell 1 and the second half.
	a.Cells = []Cell{cloneCell(&r.Cells[0]), cloneCell(&r.Cells[2])}
	a.Cells[1].Samples = a.Cells[1].Samples[:2]
	a.Cells[1].Samples[0].WindowS, a.Cells[1].Samples[0].FalsePositives = 60, 1
	a.Cells[1].Samples[1].WindowS, a.Cells[1].Samples[1].FalsePositives = 60, 1
	a.Cells[1].Derive()
	b.Cells = []Cell{cloneCell(&r.Cells[1]), cloneCell(&r.Cells[2])}
	b.Cells[1].Samples = b.Cells[1].Samples[2:]
	b.Cells[1].Samples[0].WindowS, b.Cells[1].Samples[0].FalsePositives = 60, 0
	b.Cells[1].Samples[1].WindowS, b.Cells[1].Samples[1].FalsePositives = 60, 1
	b.Cells[1].Mistakes = []Mistake{{StartS: 3, EndS: 4, Sample: 1}}
	b.Cells[1].Derive()
	b.Cells[1].Fault = "router-restart:outage=0.3s" // same cell, spelt differently
	b.Frontier = nil
	b.Environment.Sysctls = map[string]string{"peer/net.ipv4.tcp_retries2": "5", "watcher/net.ipv4.tcp_retries2": "15"}
	a.Environment.PoolTicks = map[string]int{"grew": 3, "held: probe": 5}
	b.Environment.PoolTicks = map[string]int{"held: probe": 2, "shrank: CPU": 1}
	return a, b
}

func TestMerge(t *testing.T) {
	a, b := shards(t)
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Cells) != 3 {
		t.Fatalf("%d cells, want 3", len(m.Cells))
	}
	d := m.Cells[1]
	if d.Kind != KindDisturbance || len(d.Samples) != 4 || d.FalsePositives != 3 || d.ObservedConnS != 240 {
		t.Errorf("merged disturbance: kind %s, %d samples, %d false positives, %g s", d.Kind, len(d.Samples), d.FalsePositives, d.ObservedConnS)
	}
	if len(d.Mistakes) != 3 || d.Mistakes[2].Sample != 3 {
		t.Errorf("merged mistakes %+v: the second shard's sample 1 is now sample 3", d.Mistakes)
	}
	if d.QoS == nil || !near(d.QoS.MistakesPerHour, 45) {
		t.Errorf("merged QoS %+v, want 45 mistakes per connection-hour", d.QoS)
	}
	if m.Shard != "" || m.Complete || !m.Started.Equal(b.Started) {
		t.Errorf("shard %q complete %v started %v", m.Shard, m.Complete, m.Started)
	}
	if m.Environment.Sysctls["peer/net.ipv4.tcp_retries2"] != "5" || len(m.Environment.Sysctls) != 4 {
		t.Errorf("sysctls %v", m.Environment.Sysctls)
	}
	if got := m.Environment.PoolDecisions(); got != "held: probe 7 · grew 3 · shrank: CPU 1" {
		t.Errorf("merged pool decisions %q, want the shards' counts added", got)
	}
	if a.Environment.PoolTicks["held: probe"] != 5 {
		t.Error("Merge changed its input's pool decisions")
	}
	if len(m.Frontier) != 2 {
		t.Errorf("%d frontier points", len(m.Frontier))
	}
	if len(a.Cells[1].Samples) != 2 {
		t.Error("Merge changed its input")
	}
	if _, msg := validate(m); msg != "" {
		t.Errorf("merged report is invalid: %s", msg)
	}
}

func TestMergeRefuses(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(a, b *Report)
		wants []string
	}{
		{"schema", func(a, b *Report) { b.Schema = "halfopen.report/v2" }, []string{"report 2", "halfopen.report/v2"}},
		{"sysctl conflict", func(a, b *Report) { b.Environment.Sysctls["watcher/net.ipv4.tcp_retries2"] = "8" }, []string{"watcher/net.ipv4.tcp_retries2", `"15"`, `"8"`, "reports 1 and 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := shards(t)
			tt.edit(a, b)
			_, err := Merge(a, b)
			wantInputError(t, err, tt.wants...)
		})
	}
	_, err := Merge()
	wantInputError(t, err, "at least one")
}

func TestMergeOverhead(t *testing.T) {
	got := mergeOverhead(&Overhead{PacketsPerConnMin: 10, BytesPerConnMin: 100, WindowS: 30}, &Overhead{PacketsPerConnMin: 40, BytesPerConnMin: 400, WindowS: 60})
	if !near(got.PacketsPerConnMin, 30) || !near(got.BytesPerConnMin, 300) || got.WindowS != 90 {
		t.Errorf("%+v", got)
	}
	if mergeOverhead(nil, nil) != nil {
		t.Error("nil + nil")
	}
}
