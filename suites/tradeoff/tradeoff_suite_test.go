package tradeoff_test

import (
	"testing"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/suites"
)

func TestMain(m *testing.M) { gate.Main(m) }

func TestTradeoff(t *testing.T) { suites.Run(t, "tradeoff", "Tolerance vs detection") }
