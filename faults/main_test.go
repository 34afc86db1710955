package faults

import (
	"os"
	"testing"

	_ "github.com/halfopen/halfopen/detectors"
	"github.com/halfopen/halfopen/harness"
)

// TestMain dispatches agent mode first: the lab tests re-execute this test
// binary as the watcher, the peer and Toxiproxy.
func TestMain(m *testing.M) {
	harness.MaybeRunAgent()
	os.Exit(m.Run())
}
