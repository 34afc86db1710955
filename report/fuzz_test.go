package report

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/halfopen/halfopen/spec"
)

// reportSeeds are real reports: the testdata report, and the baseline in
// ci/ cut to a few cells (the whole of it is 650 kB, too slow to mutate).
func reportSeeds(f *testing.F) [][]byte {
	f.Helper()
	full, err := os.ReadFile("testdata/report.json")
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{full}
	base, err := os.ReadFile("../ci/baseline.json")
	if err != nil {
		f.Fatal(err)
	}
	r, err := Parse("baseline.json", base)
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []int{0, 1, 4} {
		cut := *r
		cut.Cells = r.Cells[:min(n, len(r.Cells))]
		cut.Frontier = nil
		b, err := json.Marshal(&cut)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	seeds = append(seeds, []byte(`{"schema":"halfopen.report/v1","cells":[]}`), []byte(`[]`), []byte(`{"schema":"halfopen.report/v1"`))
	return seeds
}

// roundTrip re-encodes a parsed report and parses it again; the second
// encoding must equal the first.
func roundTrip(t *testing.T, what string, r *Report) {
	t.Helper()
	b1, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("%s does not encode: %v", what, err)
	}
	r2, err := Parse("again.json", b1)
	if err != nil {
		t.Fatalf("%s re-encodes to a report that does not parse: %v\n%s", what, err, b1)
	}
	b2, err := json.Marshal(r2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("%s re-encoded and re-parsed differs:\n%s\n%s", what, b1, b2)
	}
}

// FuzzParse: a report that parses re-encodes to one that parses equal;
// every error is an *InputError naming the file.
func FuzzParse(f *testing.F) {
	for _, s := range reportSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("fuzz.json", data)
		if err != nil {
			ie, ok := err.(*InputError)
			if !ok || ie.File != "fuzz.json" {
				t.Fatalf("Parse error %T %v is not an *InputError naming the file", err, err)
			}
			if n := len(err.Error()); n > 4096 {
				t.Errorf("Parse error is %d bytes long: %.300s...", n, err)
			}
			return
		}
		roundTrip(t, "the parsed report", r)
	})
}

// FuzzMerge: two reports that parse merge into a valid report that keeps
// every sample of both, or are refused with an *InputError.
func FuzzMerge(f *testing.F) {
	seeds := reportSeeds(f)
	for _, a := range seeds {
		for _, b := range seeds {
			f.Add(a, b)
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ra, err := Parse("a.json", a)
		if err != nil {
			return
		}
		rb, err := Parse("b.json", b)
		if err != nil {
			return
		}
		before, _ := json.Marshal(ra)
		m, err := Merge(ra, rb)
		if err != nil {
			if _, ok := err.(*InputError); !ok {
				t.Fatalf("Merge error %T %v is not an *InputError", err, err)
			}
			return
		}
		if after, _ := json.Marshal(ra); !bytes.Equal(before, after) {
			t.Fatal("Merge modified its input")
		}
		count := func(r *Report) int {
			n := 0
			for _, c := range r.Cells {
				n += len(c.Samples)
			}
			return n
		}
		if got, want := count(m), count(ra)+count(rb); got != want {
			t.Errorf("the merge holds %d samples, its shards %d", got, want)
		}
		roundTrip(t, "the merged report", m)
	})
}

// FuzzParseBudgets: a budgets file that parses has budgets whose specs are
// canonical and whose limits are not negative; every error is an
// *InputError naming the file.
func FuzzParseBudgets(f *testing.F) {
	for _, p := range []string{"../ci/budgets.yaml", "testdata/budgets.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("budgets: [{detector: read-eof, fault: blackhole, p95: 1s}]\n"))
	f.Add([]byte("budgets:\n  - detector: read-eof\n    fault: blackhole\n    censored: 0\n---\nbudgets: []\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBudgets("fuzz.yaml", data)
		if err != nil {
			ie, ok := err.(*InputError)
			if !ok || ie.File != "fuzz.yaml" {
				t.Fatalf("ParseBudgets error %T %v is not an *InputError naming the file", err, err)
			}
			return
		}
		if len(b.Budgets) == 0 {
			t.Fatal("ParseBudgets accepted a file without budgets")
		}
		for i, e := range b.Budgets {
			for _, s := range []string{e.Detector, e.Fault} {
				if c, err := spec.Canonical(s); err != nil || c != s {
					t.Errorf("budget %d holds spec %q, not canonical (%q, %v)", i+1, s, c, err)
				}
			}
			for _, d := range []*time.Duration{e.P50, e.P95, e.Max} {
				if d != nil && *d < 0 {
					t.Errorf("budget %d has a negative duration", i+1)
				}
			}
			for _, n := range []*int{e.Censored, e.FalsePositives, e.Errors} {
				if n != nil && *n < 0 {
					t.Errorf("budget %d has a negative count", i+1)
				}
			}
			if e.Name == "" {
				t.Errorf("budget %d has no name", i+1)
			}
		}
	})
}
