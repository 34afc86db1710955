package scale_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	_ "github.com/halfopen/halfopen/detectors"
	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
	_ "github.com/halfopen/halfopen/suites/scale" // registers the scale-server and scale-peer agents
)

// TestMain dispatches agent mode first: the suite re-executes this test
// binary inside the lab's hosts as the scale server and its client host.
func TestMain(m *testing.M) {
	harness.MaybeRunAgent()
	os.Exit(m.Run())
}

func TestScale(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "A passive server with many connections")
}
