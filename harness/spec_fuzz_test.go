package harness_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/harness"

	"github.com/halfopen/halfopen/internal/specseeds"
)

// specSeeds are the specs written in the repository's own files and some
// malformed ones (package specseeds), plus every registered name with its
// defaults.
func specSeeds(f *testing.F) []string {
	f.Helper()
	seeds, err := specseeds.FromRepo("..")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range append(harness.Detectors(), harness.Faults()...) {
		seeds = append(seeds, e.Name)
	}
	return seeds
}

// runsPrograms reports whether building a spec would start a program
// (external runs cmd to read its hello): the fuzzer must not exec whatever
// path it makes up.
func runsPrograms(s string) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(s), ":")
	return name == "external"
}

// FuzzNewDetector: a detector spec that builds has a canonical spec that
// builds the same detector, and is its own canonical form; its prediction
// is a range or never.
func FuzzNewDetector(f *testing.F) {
	for _, s := range specSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if runsPrograms(s) {
			return
		}
		d, sp, err := harness.NewDetector(s)
		if err != nil {
			if d != nil {
				t.Errorf("NewDetector(%q) failed (%v) but returned a detector", s, err)
			}
			// The error quotes the spec (twice, escaped): linear, never
			// more. Specs longer than spec.MaxLen are refused
			// before they reach the parser.
			if len(err.Error()) > 10*len(s)+2048 {
				t.Errorf("NewDetector(%q): the error is %d bytes long", s, len(err.Error()))
			}
			return
		}
		c := sp.String()
		d2, sp2, err := harness.NewDetector(c)
		if err != nil {
			t.Fatalf("NewDetector(%q) built %q, which does not build: %v", s, c, err)
		}
		if sp2.String() != c {
			t.Errorf("canonical detector %q is not a fixed point: %q", c, sp2.String())
		}
		if !reflect.DeepEqual(d, d2) {
			t.Errorf("NewDetector(%q) = %+v but its canonical form builds %+v", s, d, d2)
		}
		if p := d.Predict(); !p.Never && (p.Lo < 0 || p.Hi < p.Lo) {
			t.Errorf("NewDetector(%q) predicts [%v, %v], not a range", s, p.Lo, p.Hi)
		}
	})
}

// FuzzNewFault: a fault spec that builds has a canonical spec that builds
// the same fault, and is its own canonical form.
func FuzzNewFault(f *testing.F) {
	for _, s := range specSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, sp, err := harness.NewFault(s)
		if err != nil {
			if flt != nil {
				t.Errorf("NewFault(%q) failed (%v) but returned a fault", s, err)
			}
			return
		}
		c := sp.String()
		flt2, sp2, err := harness.NewFault(c)
		if err != nil {
			t.Fatalf("NewFault(%q) built %q, which does not build: %v", s, c, err)
		}
		if sp2.String() != c {
			t.Errorf("canonical fault %q is not a fixed point: %q", c, sp2.String())
		}
		if !reflect.DeepEqual(flt, flt2) {
			t.Errorf("NewFault(%q) = %+v but its canonical form builds %+v", s, flt, flt2)
		}
	})
}
