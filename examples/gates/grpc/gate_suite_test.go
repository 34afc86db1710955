package grpcgate

import (
	"testing"

	"github.com/halfopen/halfopen/gate"
)

// TestMain dispatches the roles: the harness re-executes this test binary
// as grpc-client, grpc-server or their peers inside the lab's namespaces.
func TestMain(m *testing.M) { gate.Main(m) }

// TestGates runs the grpc-go gates; a filter chooses what is measured:
//
//	go tool ginkgo --label-filter='server && tolerant' .
func TestGates(t *testing.T) {
	gate.RunSpecs(t, "grpc-go gates")
}
