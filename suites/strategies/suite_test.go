package strategies_test

import (
	"testing"

	"github.com/halfopen/halfopen/suites"
)

func TestMain(m *testing.M) { suites.Main(m) }

func TestStrategies(t *testing.T) { suites.Run(t, suite, "Detection strategies") }
