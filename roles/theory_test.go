package roles

import (
	"context"
	"slices"
	"testing"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"

	_ "github.com/halfopen/halfopen/faults"
)

// TestRoleTheoryUsesItsDeclarations: a role's own words are its cell's
// reasons under every fault (a rebooted server's RST included, which the
// generic rule words ECONNRESET/EPIPE), and a role that never reads its
// connection is expected never to notice a FIN, not to notice it at once.
func TestRoleTheoryUsesItsDeclarations(t *testing.T) {
	watch := func(context.Context, *protocol.Session) (string, error) { return "", nil }
	Register("theory-worded", protocol.Watcher{Reasons: []string{"redial", "EOF"}, Watch: watch})
	Register("theory-deaf", protocol.Watcher{Reasons: []string{"EOF"}, Close: func(protocol.Config) (protocol.Close, error) {
		return protocol.Close{NeverReads: true}, nil
	}, Watch: watch})
	tests := []struct {
		role, fault string
		reasons     []string
		expect      report.Expectation
	}{
		{"theory-worded", "host-reboot:down=1s", []string{"redial", "EOF"}, ""},
		{"theory-worded", "graceful-close", []string{"redial", "EOF"}, report.ExpectDetect},
		{"theory-deaf", "graceful-close", []string{"EOF"}, report.ExpectNever},
	}
	for _, tt := range tests {
		c, err := harness.Resolve(harness.CellConfig{Detector: "role:name=" + tt.role, Fault: tt.fault, Side: protocol.SideClient})
		if err != nil {
			t.Fatalf("%s × %s: %v", tt.role, tt.fault, err)
		}
		if !slices.Equal(c.Prediction.Reasons, tt.reasons) {
			t.Errorf("%s × %s: reasons %v, want the role's own %v", tt.role, tt.fault, c.Prediction.Reasons, tt.reasons)
		}
		if tt.expect != "" && c.Expect != tt.expect {
			t.Errorf("%s × %s: expect %q, want %q", tt.role, tt.fault, c.Expect, tt.expect)
		}
	}
}
