package grpcgate

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/halfopen/halfopen/gate"
)

// TestMain dispatches the roles: the harness re-executes this test binary
// as grpc-client, grpc-server or their peers inside the lab's namespaces.
func TestMain(m *testing.M) { gate.Main(m) }

// TestGates runs the grpc-go gates.
func TestGates(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "grpc-go gates")
}
