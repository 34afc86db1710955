package protocol

import (
	"strings"
	"testing"
)

// TestWatcherEnviron: a role's variables become sorted NAME=VALUE lines;
// a reserved, empty or malformed name is refused with one sentence.
func TestWatcherEnviron(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "none", env: nil, want: ""},
		{name: "sorted", env: map[string]string{"Z": "1", "GODEBUG": "netdns=go"}, want: "GODEBUG=netdns=go Z=1"},
		{name: "reserved", env: map[string]string{"HALFOPEN_ADDR": "x"}, wantErr: "HALFOPEN_* variables are halfopen's own"},
		{name: "reserved, any case", env: map[string]string{"halfopen_config": "x"}, wantErr: "halfopen_config"},
		{name: "empty name", env: map[string]string{"": "x"}, wantErr: "is not a name"},
		{name: "name with =", env: map[string]string{"A=B": "x"}, wantErr: "is not a name"},
		{name: "NUL in value", env: map[string]string{"A": "x\x00y"}, wantErr: "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Watcher{Name: "w", Env: tt.env}
			got, err := w.Environ()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Environ() = %q, %v; want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, " ") != tt.want {
				t.Fatalf("Environ() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
