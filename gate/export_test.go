package gate

import (
	"errors"
	"os"
	"time"

	"github.com/halfopen/halfopen/report"
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

// ResultOf is a measured result made from a report record, without a lab.
func ResultOf(describe string, budget time.Duration, rec report.Cell) *Result {
	return fromRecord(Cell{}, describe, budget, rec)
}
