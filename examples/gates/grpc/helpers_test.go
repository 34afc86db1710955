package grpcgate

import (
	"context"
	"math"
	"sync"

	. "github.com/onsi/ginkgo/v2"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/harness"
)

// measureAll measures the cells at once, each in its own fresh labs (a
// sample is mostly waiting), and returns their results in order. A cell
// that cannot be measured fails the spec.
func measureAll(ctx context.Context, cells ...gate.Cell) []*gate.Result {
	GinkgoHelper()
	if err := harness.Preflight(); err != nil {
		Skip(err.Error())
	}
	out := make([]*gate.Result, len(cells))
	var wg sync.WaitGroup
	for i, c := range cells {
		wg.Go(func() {
			defer GinkgoRecover()
			out[i] = gate.Measure(ctx, c)
		})
	}
	wg.Wait()
	for _, r := range out {
		if r == nil {
			Fail("a cell could not be measured (see the failure above)")
		}
		GinkgoWriter.Println(r)
	}
	return out
}

// fastest is the quickest decision of a result's samples, +Inf when none
// decided.
func fastest(r *gate.Result) float64 {
	best := math.Inf(1)
	for _, s := range r.Record.Samples {
		if s.Detected && s.Seconds != nil {
			best = min(best, *s.Seconds)
		}
	}
	return best
}
