package gate

import (
	"errors"
	"os"
)

// A test binary re-executed with HALFOPEN_TEST_PREFLIGHT set plays a
// machine whose preflight fails with that sentence.
func init() {
	if why := os.Getenv("HALFOPEN_TEST_PREFLIGHT"); why != "" {
		preflight = func() error { return errors.New(why) }
	}
}

// MeasuredNothing exposes measuredNothing to the tests.
var MeasuredNothing = measuredNothing
