package strategies_test

import (
	"testing"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/suites"
)

func TestMain(m *testing.M) { gate.Main(m) }

func TestStrategies(t *testing.T) {
	suites.Run(t, "strategies", "Detection strategies", func() { suites.BuildExamples(examples("c")) })
}
