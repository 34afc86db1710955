package detectors

import (
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// prediction turns one of the kernel's shared range rules into a
// detector's silent-peer prediction with the reasons it decides with.
func prediction(r tcprules.Range, reasons ...string) harness.Prediction {
	return harness.Prediction{Lo: r.Lo, Hi: r.Hi, Rule: r.Rule, Reasons: reasons}
}
