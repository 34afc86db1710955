package machine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/report"
)

func TestBaselineFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "baseline.json")
	want := Baseline{ErrorMs: report.Quantiles{P50: 0.1, P99: 0.2, Max: 3, N: 1000}, Busy: 0.1, CPUIdle: "polling", Measured: time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)}
	if err := WriteBaseline(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("read back %+v, want %+v", got, want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".baseline-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	for _, tc := range []struct{ name, content, want string }{
		{"not JSON", "p99 0.2", "is not a probe baseline"},
		{"too few datagrams", `{"error_ms":{"p50":0.1,"p99":0.2,"n":20}}`, "n=20"},
		{"p99 below p50", `{"error_ms":{"p50":0.3,"p99":0.2,"n":1000}}`, "p99 0.2 ms"},
		{"negative", `{"error_ms":{"p50":-1,"p99":0.2,"n":1000}}`, "p50 -1 ms"},
	} {
		bad := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(bad, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadBaseline(bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ReadBaseline error %v, want one naming %q", tc.name, err, tc.want)
		}
	}
	if _, err := ReadBaseline(filepath.Join(dir, "none.json")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("a missing file: %v, want a not-exist error", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}
