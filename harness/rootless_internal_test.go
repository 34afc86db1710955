package harness

import (
	"os"
	"strings"
	"testing"
)

func TestRootOfUIDMap(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		uid        int
		userns     bool
	}{
		{"the machine's own", "         0          0 4294967295\n", 0, false},
		{"a rootless run's", "         0       1000          1\n", 1000, true},
		{"nobody's", "0 65534 1", 65534, true},
		{"a container's range", "0 100000 65536\n", 100000, true},
		{"a nested service's, root unmapped", "       105          0          1\n", 0, true},
		{"several lines, root on the second", "65534 65534 1\n0 0 1\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid, userns := rootOfUIDMap(tc.text)
			if uid != tc.uid || userns != tc.userns {
				t.Errorf("rootOfUIDMap(%q) = %d, %v; want %d, %v", tc.text, uid, userns, tc.uid, tc.userns)
			}
		})
	}
}

func TestIDMapped(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		id         uint32
		want       bool
	}{
		{"the machine's map has every id", "0 0 4294967295", 65534, true},
		{"the machine's map has the last id", "0 0 4294967295", 4294967294, true},
		{"a rootless run's has its root", "0 1000 1", 0, true},
		{"a rootless run's lacks nobody", "0 1000 1", 65534, false},
		{"a rootless run's lacks postgres", "0 1000 1\n", 105, false},
		{"a container's range has nobody", "0 100000 65536", 65534, true},
		{"a container's range ends before 65536", "0 100000 65536", 65536, false},
		{"the second line counts", "0 1000 1\n65534 65534 1\n", 65534, true},
		{"an empty map has nothing", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := idMapped(tc.text, tc.id); got != tc.want {
				t.Errorf("idMapped(%q, %d) = %v, want %v", tc.text, tc.id, got, tc.want)
			}
		})
	}
}

// Root has real-time priority, and EnvNoRealtime turns it off.
func TestRealtimeNoteAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, which may use SCHED_FIFO whatever its RLIMIT_RTPRIO")
	}
	t.Setenv(envNoRealtime, "")
	if note := realtimeNote(); note != "" {
		t.Errorf("root was refused real-time priority: %s", note)
	}
	t.Setenv(envNoRealtime, "1")
	if note := realtimeNote(); !strings.Contains(note, envNoRealtime+"=1") {
		t.Errorf("with %s=1 the note is %q", envNoRealtime, note)
	}
}
