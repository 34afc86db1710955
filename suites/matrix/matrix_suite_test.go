package matrix_test

import (
	"testing"

	"github.com/halfopen/halfopen/suites"
)

func TestMain(m *testing.M) { suites.Main(m) }

func TestMatrix(t *testing.T) { suites.Run(t, suite, "Every strategy through every fault, both sides") }
