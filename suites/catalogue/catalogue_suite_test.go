package catalogue_test

import (
	"testing"

	"github.com/halfopen/halfopen/suites"
)

func TestMain(m *testing.M) { suites.Main(m) }

func TestCatalogue(t *testing.T) { suites.Run(t, suite, "Every fault of the catalogue") }
