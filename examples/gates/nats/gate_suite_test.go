package natsgate

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
)

// TestMain dispatches the roles: the harness re-executes this test binary
// as nats-client or its nats-server peer inside the lab's namespaces.
func TestMain(m *testing.M) { gate.Main(m) }

// TestGates runs the nats.go gates.
func TestGates(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "nats.go gates")
}
