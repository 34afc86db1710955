package catalogue_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	_ "github.com/halfopen/halfopen/detectors"
	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
)

// TestMain dispatches agent mode first: the harness re-executes this test
// binary inside the lab's hosts as its agents (watcher, peer, toxiproxy).
func TestMain(m *testing.M) {
	harness.MaybeRunAgent()
	os.Exit(m.Run())
}

func TestCatalogue(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Every fault of the catalogue")
}
