package report

import (
	"math"
	"testing"
	"time"
)

// A merged report's wall time is the time during which at least one part
// measured: parts that ran at once (the gates beside the suites) share
// their seconds, parts one after the other add them, and a part written
// without a start adds its own. Merging in steps gives the same.
func TestMergedWallTimeIsTheUnionOfSpans(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	type part struct {
		startS float64 // seconds after t0; NaN: written without a start
		wallS  float64
	}
	for _, tc := range []struct {
		name  string
		parts []part
		want  float64
	}{
		{"one after the other", []part{{0, 10}, {30, 20}}, 30},
		{"at once", []part{{0, 100}, {10, 20}, {50, 80}}, 130},
		{"touching", []part{{0, 10}, {10, 10}}, 20},
		{"a gate beside two suites", []part{{0, 170}, {170, 30}, {-10, 330}}, 330},
		{"a part without a start", []part{{0, 10}, {5, 10}, {math.NaN(), 7}}, 22},
		{"a part that measured nothing", []part{{0, 10}, {3, 0}}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reports []*Report
			for _, p := range tc.parts {
				r := &Report{Schema: SchemaV1, Environment: Environment{WallS: p.wallS}}
				if !math.IsNaN(p.startS) {
					r.Started = t0.Add(time.Duration(p.startS * float64(time.Second)))
				}
				reports = append(reports, r)
			}
			all, err := Merge(reports...)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(all.Environment.WallS-tc.want) > 1e-6 {
				t.Errorf("wall %g s, want %g s (spans %+v)", all.Environment.WallS, tc.want, all.Environment.Spans)
			}
			stepped := reports[0]
			for _, r := range reports[1:] {
				if stepped, err = Merge(stepped, r); err != nil {
					t.Fatal(err)
				}
			}
			if math.Abs(stepped.Environment.WallS-tc.want) > 1e-6 {
				t.Errorf("merged in steps: wall %g s, want %g s", stepped.Environment.WallS, tc.want)
			}
		})
	}
}
