package detection_test

import (
	"testing"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/suites"
)

func TestMain(m *testing.M) { gate.Main(m) }

func TestDetection(t *testing.T) { suites.Run(t, "detection", "Detection matrix") }
