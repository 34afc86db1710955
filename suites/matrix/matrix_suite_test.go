package matrix_test

import (
	"testing"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/suites"
)

func TestMain(m *testing.M) { gate.Main(m) }

func TestMatrix(t *testing.T) {
	suites.Run(t, "matrix", "Every strategy through every fault, both sides")
}
