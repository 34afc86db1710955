package gate

import (
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/report"
)

// TestBudgetNote: a detection prints its budget; a disturbance prints
// what it watched (its window and tail, per sample), never "budget 0s".
func TestBudgetNote(t *testing.T) {
	tests := []struct {
		name    string
		budget  time.Duration
		rec     report.Cell
		want    string
		notWant string
	}{
		{"detection", 6750 * time.Millisecond, report.Cell{Kind: report.KindDetection, Samples: []report.Sample{{Reason: "budget"}}}, "(budget 6.75s)", ""},
		{"disturbance, one window", 0, report.Cell{Kind: report.KindDisturbance, Samples: []report.Sample{{WindowS: 5.5}, {WindowS: 5.5}}},
			"(a disturbance, watched 5.5s per sample: its window and the tail after it)", "budget"},
		{"disturbance, windows apart", 0, report.Cell{Kind: report.KindDisturbance, Samples: []report.Sample{{WindowS: 5.5}, {WindowS: 5.75}}},
			"watched 5.5s–5.75s per sample", "budget"},
		{"disturbance, nothing measured", 0, report.Cell{Kind: report.KindDisturbance}, "a disturbance, watched through its window and a tail after it", "budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromRecord(Cell{}, "role:name=w,peer=builtin × f × client", tt.budget, tt.rec).String()
			if !strings.Contains(got, tt.want) || tt.notWant != "" && strings.Contains(got, tt.notWant) {
				t.Errorf("String() = %q, want it to hold %q and not %q", got, tt.want, tt.notWant)
			}
		})
	}
}

// TestSlug: a suite's description as a report name.
func TestSlug(t *testing.T) {
	for in, want := range map[string]string{"go-redis gate": "go-redis-gate", "  nats.go gates! ": "nats-go-gates", "": ""} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}
