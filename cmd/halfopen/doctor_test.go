package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/machine"
)

// doctor --baseline measures the unloaded probe and writes what a run
// reads through HALFOPEN_BASELINE; a place it cannot write is bad input,
// said before anything is measured.
func TestDoctorWritesTheBaseline(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "baseline.json")
	r := halfopen(t, "doctor", "--baseline", path)
	if r.code != 0 {
		t.Fatalf("doctor --baseline: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"info    timing    tick ", "info    unloaded  probe p50 ", "(n=1000)", "written to " + path} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor --baseline printed no %q:\n%s", want, r.stdout)
		}
	}
	b, err := machine.ReadBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.ErrorMs.N != machine.BaselineDatagrams || b.ErrorMs.P99 <= 0 || b.ErrorMs.P99 < b.ErrorMs.P50 {
		t.Errorf("baseline %+v", b.ErrorMs)
	}
	r = halfopen(t, "doctor", "--baseline", "/nonexistent-dir/baseline.json")
	if r.code != exitBadInput {
		t.Errorf("doctor --baseline into a missing directory: exit %d, want %d", r.code, exitBadInput)
	}
	oneSentence(t, r, "its directory does not exist")
}
