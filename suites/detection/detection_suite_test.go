package detection_test

import (
	"testing"

	"github.com/halfopen/halfopen/suites"
)

func TestMain(m *testing.M) { suites.Main(m) }

func TestDetection(t *testing.T) { suites.Run(t, suite, "Detection matrix") }
