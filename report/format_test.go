package report

import (
	"math"
	"testing"
)

func TestFormatSeconds(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0 s"},
		{2.5549990800000002, "2.55 s"},
		{0.10845099999999999, "108 ms"},
		{0.0001234, "123 µs"},
		{0.000000512, "512 ns"},
		{0.5, "500 ms"},
		{0.9996, "1 s"},
		{0.99949, "999 ms"},
		{1, "1 s"},
		{3.0, "3 s"},
		{12.345, "12.3 s"},
		{59.99, "1 min"},
		{75, "1 min 15 s"},
		{675, "11 min 15 s"},
		{3599.6, "1 h"},
		{7875, "2 h 11 min"},
		{7200, "2 h"},
		{-0.2, "−200 ms"},
		{math.Inf(1), "∞"},
		{math.NaN(), "–"},
	}
	for _, tt := range tests {
		if got := FormatSeconds(tt.in); got != tt.want {
			t.Errorf("FormatSeconds(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatRange(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   string
	}{
		{3, 4, "3–4 s"},
		{0, 0.05, "0–50 ms"},
		{0.4, 0.6, "400–600 ms"},
		{0.8, 1.2, "800 ms – 1.2 s"},
		{7875, 7875, "2 h 11 min"},
		{675, 7875, "11 min 15 s – 2 h 11 min"},
	}
	for _, tt := range tests {
		if got := FormatRange(tt.lo, tt.hi); got != tt.want {
			t.Errorf("FormatRange(%v, %v) = %q, want %q", tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestFormatCount(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{105.4, "105"},
		{5474.49, "5474"},
		{0.012345, "0.0123"},
		{2.5, "2.5"},
		{99.96, "100"},
		{-3.25, "−3.25"},
	}
	for _, tt := range tests {
		if got := formatCount(tt.in); got != tt.want {
			t.Errorf("formatCount(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
