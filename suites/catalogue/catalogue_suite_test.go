package catalogue_test

import (
	"testing"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/suites"
)

func TestMain(m *testing.M) { gate.Main(m) }

func TestCatalogue(t *testing.T) { suites.Run(t, "catalogue", "Every fault of the catalogue") }
