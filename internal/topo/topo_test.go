package topo

import "testing"

func TestRunPID(t *testing.T) {
	for _, tc := range []struct {
		name string
		pid  int
		ok   bool
	}{
		{"ho-1234p0a1b-7-watcher", 1234, true},
		{"ho-1p00ff-1-peer", 1, true},
		{"ho-x-1-peer", 0, false},
		{"other-1234p0a1b-1-peer", 0, false},
	} {
		pid, ok := RunPID(tc.name)
		if pid != tc.pid || ok != tc.ok {
			t.Errorf("RunPID(%q) = %d, %v; want %d, %v", tc.name, pid, ok, tc.pid, tc.ok)
		}
	}
}
