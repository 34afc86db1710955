package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareFormats(t *testing.T) {
	dir := t.TempDir()
	old := writeReport(t, dir, "old.json", []float64{3.50, 3.61, 3.55, 3.72, 3.58, 3.66})
	slow := writeReport(t, dir, "slow.json", []float64{5.50, 5.61, 5.55, 5.72, 5.58, 5.66})
	tests := []struct {
		name string
		args []string
		code int
		want []string // in standard output, or in the file of -o
		file string
	}{
		{"markdown by default", nil, exitRegression, []string{"| REGRESSION |", "  - old: 3.5 s, 3.61 s"}, ""},
		{"--markdown kept", []string{"--markdown"}, exitRegression, []string{"| REGRESSION |"}, ""},
		{"text", []string{"--format", "text"}, exitRegression, []string{"DETECTOR", "REGRESSION"}, ""},
		{"html to a file", []string{"--format", "html", "-o", filepath.Join(dir, "cmp.html")}, exitRegression, []string{"<!DOCTYPE html>", "Regressions (1)", "<svg"}, filepath.Join(dir, "cmp.html")},
		{"unknown format", []string{"--format", "pdf"}, exitBadInput, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := halfopen(t, append([]string{"compare", old, slow}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			out := r.stdout
			if tt.file != "" {
				b, err := os.ReadFile(tt.file)
				if err != nil {
					t.Fatal(err)
				}
				out = string(b)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
