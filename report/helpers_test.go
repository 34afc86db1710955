package report

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// testdataReport reads testdata/report.json and fails the test if it is
// not a valid report.
func testdataReport(t *testing.T) *Report {
	t.Helper()
	r, err := Read("testdata/report.json")
	if err != nil {
		t.Fatalf("testdata report: %v", err)
	}
	return r
}

func testdataBytes(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// lineContaining returns the 1-based line of the first occurrence of sub.
func lineContaining(t *testing.T, data []byte, sub string) int {
	t.Helper()
	i := strings.Index(string(data), sub)
	if i < 0 {
		t.Fatalf("%q not in data", sub)
	}
	return strings.Count(string(data[:i]), "\n") + 1
}

// wantInputError checks that err is an *InputError whose text contains
// every one of wants.
func wantInputError(t *testing.T, err error, wants ...string) *InputError {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *InputError", err, err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if strings.Count(strings.TrimSuffix(err.Error(), "."), "\n") > 0 {
		t.Errorf("error %q is more than one line", err)
	}
	return ie
}

func f64(v float64) *float64 { return &v }

func detected(s float64) Sample { return Sample{Detected: true, Seconds: f64(s), Reason: "ETIMEDOUT"} }

func censored() Sample { return Sample{Reason: "budget"} }

func failed(msg string) Sample { return Sample{Error: msg} }
