package faults_test

import (
	"os"
	"testing"

	_ "github.com/halfopen/halfopen/detectors"
	"github.com/halfopen/halfopen/harness"
)

// TestMain dispatches agent mode first: fault tests start agents by
// re-executing this test binary inside lab hosts.
func TestMain(m *testing.M) {
	harness.MaybeRunAgent()
	os.Exit(m.Run())
}
