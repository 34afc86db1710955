package roles

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

func watchNothing(context.Context, *protocol.Session) (string, error) { return "", nil }

// The roles of these tests, registered once: a blocked reader, a poller
// whose period comes from its config, a role that never reads, and one
// that declares nothing but its range.
func init() {
	Register("test-reader", protocol.Watcher{
		Predicted: &protocol.Range{Lo: 4 * time.Second, Hi: 5 * time.Second},
		Reasons:   []string{"EOF", "stale connection"}, Watch: watchNothing,
	})
	Register("test-poller", protocol.Watcher{
		Predicted: &protocol.Range{Lo: time.Second, Hi: 2 * time.Second},
		Reasons:   []string{"i/o timeout", "ECONNRESET"}, Watch: watchNothing,
		Close: func(c protocol.Config) (protocol.Close, error) {
			d, err := c.Duration("every", 2*time.Second)
			return protocol.Close{Every: d}, err
		},
	})
	Register("test-deaf", protocol.Watcher{
		Reasons: []string{"EPIPE"}, Watch: watchNothing,
		Close: func(protocol.Config) (protocol.Close, error) { return protocol.Close{NeverReads: true}, nil },
	})
	Register("test-plain", protocol.Watcher{Predicted: &protocol.Range{Lo: time.Second, Hi: 2 * time.Second}, Watch: watchNothing})
}

// TestRoleTheory resolves role cells as a run does (harness.Resolve) and
// checks that theory judges each role by what it declares: its own
// reasons, no errno it did not list, and its own way of meeting a FIN or
// an RST.
func TestRoleTheory(t *testing.T) {
	tests := []struct {
		name        string
		detector    string
		fault       string
		wantNever   bool
		wantLo      time.Duration
		wantHi      time.Duration
		wantReasons []string
		wantRule    string
	}{
		{"silent: the declared range and reasons", "role:name=test-reader", "blackhole", false, 4 * time.Second, 5 * time.Second,
			[]string{"EOF", "stale connection"}, "declared by role test-reader: [4s, 5s]"},
		{"FIN, a blocked read: at once", "role:name=test-reader", "graceful-close", false, 0, 50 * time.Millisecond,
			[]string{"EOF", "stale connection"}, "a read is always blocked on its connection and returns when a FIN arrives"},
		{"RST, a poller: within its period", "role:every=200ms,name=test-poller", "abortive-close", false, 0, 250 * time.Millisecond,
			[]string{"i/o timeout", "ECONNRESET"}, "it looks at its connection every 200ms, so it meets an RST at its next look"},
		{"FIN or RST, a poller's default period", "role:name=test-poller", "process-kill", false, 0, 2050 * time.Millisecond,
			[]string{"i/o timeout", "ECONNRESET"}, "every 2s, so it meets a FIN or an RST"},
		{"FIN, a role that never reads", "role:name=test-deaf", "graceful-close", true, 0, 0,
			[]string{"EPIPE"}, "it never reads its connection, so a FIN goes unnoticed"},
		{"silent, nothing declared: no reasons at all", "role:name=test-plain", "host-crash", false, time.Second, 2 * time.Second,
			nil, "declared by role test-plain"},
		{"RST, nothing declared: at once, no errno assumed", "role:name=test-plain", "abortive-close", false, 0, 50 * time.Millisecond,
			nil, "returns when an RST arrives"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := harness.Resolve(harness.CellConfig{Detector: tt.detector, Fault: tt.fault, Samples: 1})
			if err != nil {
				t.Fatal(err)
			}
			p := c.Prediction
			if p.Never != tt.wantNever || p.Lo != tt.wantLo || p.Hi != tt.wantHi {
				t.Errorf("prediction never=%t [%v, %v], want never=%t [%v, %v]", p.Never, p.Lo, p.Hi, tt.wantNever, tt.wantLo, tt.wantHi)
			}
			if !slices.Equal(p.Reasons, tt.wantReasons) {
				t.Errorf("reasons %q, want %q", p.Reasons, tt.wantReasons)
			}
			if !strings.Contains(p.Rule, tt.wantRule) {
				t.Errorf("rule %q, want it to contain %q", p.Rule, tt.wantRule)
			}
			if !tt.wantNever && c.Expect != report.ExpectDetect {
				t.Errorf("expectation %q, want %q", c.Expect, report.ExpectDetect)
			}
		})
	}
}

// TestRoleRefusesBadDeclarations: a role whose declarations refuse the
// cell's config, or a phase that is not one, is bad input before any lab.
func TestRoleRefusesBadDeclarations(t *testing.T) {
	tests := []struct {
		detector string
		want     string
	}{
		{"role:every=soon,name=test-poller", `role test-poller: config key every="soon" is not a Go duration`},
		{"role:name=test-reader,phase=busy", "role test-reader: phase=busy is neither idle nor in-flight"},
		{"role:name=nobody", `no role is called "nobody"`},
	}
	for _, tt := range tests {
		t.Run(tt.detector, func(t *testing.T) {
			_, err := harness.Resolve(harness.CellConfig{Detector: tt.detector, Fault: "blackhole", Samples: 1})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Resolve: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
