package tradeoff_test

import (
	"testing"

	"github.com/halfopen/halfopen/suites"
)

func TestMain(m *testing.M) { suites.Main(m) }

func TestTradeoff(t *testing.T) { suites.Run(t, suite, "Tolerance vs detection") }
