package spec

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in, want, wantErr string
	}{
		{in: "read-eof", want: "read-eof"},
		{in: " keepalive-tuned : intvl = 1s , idle=2s ", want: "keepalive-tuned:idle=2s,intvl=1s"},
		{in: "external:cmd=./x,peer=self", want: "external:cmd=./x,peer=self"},
		{in: "", wantErr: "has no name"},
		{in: ":a=1", wantErr: "has no name"},
		{in: "Read-EOF", wantErr: "lower-case"},
		{in: "blackhole:", wantErr: "gives no key=value"},
		{in: "blackhole:for", wantErr: "is not key=value"},
		{in: "blackhole:=1s", wantErr: "is not key=value"},
		{in: "blackhole:for=1s,for=2s", wantErr: "twice"},
		{in: "x:" + strings.Repeat("a", MaxLen), wantErr: "longer than"},
	} {
		got, err := Canonical(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Canonical(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestEqual(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"a:x=1s,y=2", "a:y=2,x=1s", true},
		{"a:x=1s", "a:x=1000ms", true},
		{"a:x=0.3s", "a:x=300ms", true},
		{"a:n=3", "a:n=3s", false},  // a count is not a duration
		{"a:n=0", "a:n=0s", false},  // nor is a bare zero
		{"a:x=1s", "b:x=1s", false}, // names differ
		{"a:x=1s", "a:x=1s,y=2", false},
		{"a:cmd=./p", "a:cmd=./q", false},
		{"not a spec", " not a spec ", true}, // unparsable specs compare as trimmed text
	} {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	if Name("keepalive-tuned:idle=1s") != "keepalive-tuned" || Name("read-eof") != "read-eof" {
		t.Error("Name does not return the name part")
	}
}
