package natsgate

import (
	"testing"

	"github.com/halfopen/halfopen/gate"
)

// TestMain dispatches the roles: the harness re-executes this test binary
// as nats-client or its nats-server peer inside the lab's namespaces.
func TestMain(m *testing.M) { gate.Main(m) }

// TestGates runs the nats.go gates; a filter chooses what is measured:
//
//	go tool ginkgo --label-filter='client && recommended' .
func TestGates(t *testing.T) {
	gate.RunSpecs(t, "nats.go gates")
}
