package report

import (
	"strings"
	"testing"
)

func TestCanonicalSpec(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "peer-cable-pull", want: "peer-cable-pull"},
		{in: " peer-cable-pull ", want: "peer-cable-pull"},
		{in: "keepalive-tuned:idle=1s,intvl=1s,cnt=3", want: "keepalive-tuned:cnt=3,idle=1s,intvl=1s"},
		{in: "keepalive-tuned: intvl = 1s , cnt=3,idle=1s", want: "keepalive-tuned:cnt=3,idle=1s,intvl=1s"},
		{in: "external:cmd=./x --flag=1,peer=self", want: "external:cmd=./x --flag=1,peer=self"},
		{in: "router-restart:outage=", want: "router-restart:outage="},
		{in: "", wantErr: "has no name"},
		{in: ":a=1", wantErr: "has no name"},
		{in: "x:", wantErr: "no parameters"},
		{in: "x:a", wantErr: "not key=value"},
		{in: "x:=1", wantErr: "not key=value"},
		{in: "x:a=1,a=2", wantErr: "twice"},
	}
	for _, tt := range tests {
		got, err := CanonicalSpec(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CanonicalSpec(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
		case err != nil || got != tt.want:
			t.Errorf("CanonicalSpec(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSpecsEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"read-eof", "read-eof", true},
		{"keepalive-tuned:idle=1s,cnt=3", "keepalive-tuned:cnt=3,idle=1s", true},
		{"router-restart:outage=2s", "router-restart:outage=2000ms", true},
		{"router-restart:outage=2s", "router-restart:outage=3s", false},
		{"router-restart:outage=2s", "host-reboot:outage=2s", false},
		{"random-loss:percent=1", "random-loss:percent=1.0", false},
		{"keepalive-tuned:idle=1s", "keepalive-tuned:idle=1s,cnt=3", false},
		{"x:a", "x:a", true},
	}
	for _, tt := range tests {
		if got := SpecsEqual(tt.a, tt.b); got != tt.want {
			t.Errorf("SpecsEqual(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	if SpecName("keepalive-tuned:idle=1s") != "keepalive-tuned" || SpecName("read-eof") != "read-eof" {
		t.Error("SpecName")
	}
}
