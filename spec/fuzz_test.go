package spec

import (
	"reflect"
	"testing"

	"github.com/halfopen/halfopen/internal/specseeds"
)

// seeds are the specs written in the repository's own files and some
// malformed ones (package specseeds), and a few more.
func seeds(f *testing.F) []string {
	f.Helper()
	out, err := specseeds.FromRepo("..")
	if err != nil {
		f.Fatal(err)
	}
	return append(out, "router-restart:outage=0.3s", "x:k=1000ms,n=3")
}

// FuzzParse: a spec that parses has a canonical form that parses to the
// same spec and is its own canonical form; an error is one bounded sentence.
func FuzzParse(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := Parse(s)
		if err != nil {
			// The message quotes the spec (escaped, at most twice) of at
			// most MaxLen bytes, or only its length.
			if n := len(err.Error()); n > 10*MaxLen+200 {
				t.Errorf("Parse error is %d bytes long", n)
			}
			return
		}
		c := sp.String()
		again, err := Parse(c)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, c, err)
		}
		if !reflect.DeepEqual(again, sp) {
			t.Errorf("Parse(%q) = %+v, but its canonical form %q parses to %+v", s, sp, c, again)
		}
		if again.String() != c {
			t.Errorf("canonical form %q is not a fixed point: %q", c, again.String())
		}
	})
}

// FuzzCanonical: the canonical form and the identity of a spec are fixed
// points, and a spec is Equal to its canonical form.
func FuzzCanonical(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Canonical(s)
		if err != nil {
			return
		}
		if again, err := Canonical(c); err != nil || again != c {
			t.Fatalf("Canonical(%q) = %q, not a fixed point: %q, %v", s, c, again, err)
		}
		id := IdentityOf(s)
		if again := IdentityOf(id); again != id {
			t.Errorf("IdentityOf(%q) = %q, not a fixed point: %q", s, id, again)
		}
		if !Equal(s, c) || !Equal(c, id) {
			t.Errorf("%q, its canonical form %q and its identity %q are not Equal", s, c, id)
		}
	})
}
