package harness

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/internal/topo"
)

// escape starts, in a host of the lab, a shell that daemonises a helper the
// way a careless library does (a session of its own, SIGTERM, SIGHUP and
// SIGINT ignored), and returns the helper's pid.
func escape(t *testing.T, h *Host) int {
	t.Helper()
	pidfile := filepath.Join(t.TempDir(), "helper.pid")
	script := `setsid sh -c 'trap "" TERM HUP INT; echo $$ > "$PIDFILE.tmp"; mv "$PIDFILE.tmp" "$PIDFILE"; exec sleep 1000' </dev/null >/dev/null 2>&1 &
exec sleep 1000`
	if _, err := h.Start(ProcSpec{Path: "/bin/sh", Args: []string{"-c", script}, Env: []string{"PIDFILE=" + pidfile}, Label: "escaper"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidfile); err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			if sid, _ := sessionOf(pid); sid != pid {
				t.Fatalf("helper %d is in session %d, not a session of its own", pid, sid)
			}
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the helper did not start within 5 s")
	return 0
}

// sessionOf reads a process's session id from /proc/PID/stat.
func sessionOf(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	return strconv.Atoi(f[3])
}

// alive reports whether pid is a process that has not exited (zombies
// have; they only wait to be reaped by init).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

func newTestLab(t *testing.T) (*Run, *Lab) {
	t.Helper()
	if err := Preflight(); err != nil {
		t.Skip(err)
	}
	run := NewRun()
	t.Cleanup(func() {
		if err := run.Close(); err != nil {
			t.Errorf("close run: %v", err)
		}
	})
	lab, err := run.NewLab(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return run, lab
}

// Teardown kills every process living in a lab's namespaces, however it
// escaped, also when the namespace's name is already gone.
func TestTeardownKillsEscapedProcesses(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, lab *Lab)
	}{
		{"close", func(t *testing.T, lab *Lab) {
			if err := lab.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"name already gone", func(t *testing.T, lab *Lab) {
			// As `ip netns delete` by someone else would.
			for _, r := range []topo.Role{topo.Peer, topo.Router, topo.Watcher} {
				if err := deleteNamespace(lab.Host(r).Name); err != nil {
					t.Fatal(err)
				}
			}
			if err := lab.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"host destroyed", func(t *testing.T, lab *Lab) {
			for _, r := range []topo.Role{topo.Peer, topo.Watcher, topo.Router} {
				if err := lab.DestroyHost(r); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, lab := newTestLab(t)
			ids := map[nsID]bool{}
			var helpers []int
			for _, r := range []topo.Role{topo.Peer, topo.Router, topo.Watcher} {
				h := lab.Host(r)
				ids[h.id] = true
				helpers = append(helpers, escape(t, h))
			}
			if got := pidsInNamespaces(ids); len(got) < 6 {
				t.Fatalf("the lab holds processes %v, want at least the 3 started and the 3 escaped", got)
			}
			tc.end(t, lab)
			for _, pid := range helpers {
				if alive(pid) {
					t.Errorf("escaped helper %d is still alive after the lab ended", pid)
				}
			}
			if left := pidsInNamespaces(ids); len(left) > 0 {
				t.Errorf("processes %v still live in the lab's namespaces", left)
			}
		})
	}
}

// When the orchestrator's end of the socket closes, as it does when the
// orchestrator is killed, the reaper removes the run's namespaces, named or
// not, and kills every process in them; another run's lab is untouched.
func TestReaperSweepsWhenTheSocketEnds(t *testing.T) {
	run, lab := newTestLab(t)
	other, otherLab := newTestLab(t)
	if run.reaper == nil || other.reaper == nil {
		t.Fatal("the runs have no reaper")
	}
	var helpers []int
	ids := map[nsID]bool{}
	for _, r := range []topo.Role{topo.Peer, topo.Router, topo.Watcher} {
		ids[lab.Host(r).id] = true
		helpers = append(helpers, escape(t, lab.Host(r)))
	}
	otherHelper := escape(t, otherLab.Host(topo.Watcher))
	// The peer's name goes first (a crashed host's namespace keeps living
	// in whatever holds it): only its inode leads the reaper to it.
	if err := deleteNamespace(lab.Host(topo.Peer).Name); err != nil {
		t.Fatal(err)
	}
	run.reaper.close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := pidsInNamespaces(ids)
		names := namesWithPrefix(namespacePrefix + run.ID + "-")
		if len(left) == 0 && len(names) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the socket ended: processes %v and names %v are left", left, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, pid := range helpers {
		if alive(pid) {
			t.Errorf("escaped helper %d survived the reaper", pid)
		}
	}
	if !alive(otherHelper) {
		t.Error("the reaper of one run killed a process of another")
	}
	if len(namesWithPrefix(namespacePrefix+other.ID+"-")) != 3 {
		t.Error("the reaper of one run removed a namespace of another")
	}
}
