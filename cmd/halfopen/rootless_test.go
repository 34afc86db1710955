package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/report"
)

// nobodysProcesses lists the processes living in a user namespace created
// by uid 65534: a rootless run's, or one nested in it.
func nobodysProcesses() []int {
	init, _ := os.Readlink("/proc/self/ns/user")
	procs, _ := os.ReadDir("/proc")
	var out []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		link := "/proc/" + p.Name() + "/ns/user"
		if id, err := os.Readlink(link); err != nil || id == init {
			continue
		}
		fd, err := unix.Open(link, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		uid, err := unix.IoctlGetUint32(fd, 0xb704) // NS_GET_OWNER_UID
		unix.Close(fd)
		if err == nil && uid == 65534 {
			out = append(out, pid)
		}
	}
	return out
}

// A rootless run ended by a signal to the user's process, the one outside
// the user namespace, leaves nothing: SIGINT is forwarded and the run tears
// its labs down; SIGKILL kills the run inside (its death signal), whose
// reaper then sweeps.
func TestSignalledRootlessRunLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to an unprivileged user")
	}
	for _, tc := range []struct {
		sig   syscall.Signal
		swept bool // the reaper found labs to remove
	}{
		{syscall.SIGINT, false},
		{syscall.SIGKILL, true},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			cmd, dir := nobodyCmd(t, "run", "--detector", "read-eof", "--fault", "blackhole", "--fault", "graceful-close",
				"--samples", "8", "--pool", "4", "--budget", "2s", "--report", "out/r.json")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			path := filepath.Join(dir, "out", "r.json")
			waitSamples(t, path, 2, 60*time.Second)
			if len(nobodysProcesses()) == 0 {
				t.Fatal("the run has no process in a user namespace of nobody's")
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code == 0 {
				t.Errorf("a run ended by %v exited 0", tc.sig)
			}
			var left []int
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if left = nobodysProcesses(); len(left) == 0 {
					break
				}
			}
			if len(left) > 0 {
				t.Errorf("processes %v still live in nobody's user namespaces 15 s after %v", left, tc.sig)
			}
			r, err := report.Read(path)
			if err != nil {
				t.Fatalf("the report is not valid: %v", err)
			}
			if r.Complete {
				t.Errorf("the report of a run ended by %v says it is complete", tc.sig)
			}
			// The reaper's stderr is the run's: after SIGKILL it says what
			// it removed, once it is done.
			if tc.swept {
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !strings.Contains(stderr.String(), "halfopen reaper: run "); time.Sleep(50 * time.Millisecond) {
				}
			}
			if got := strings.Contains(stderr.String(), "halfopen reaper: run "); got != tc.swept {
				t.Errorf("after %v the reaper swept: %v, want %v; stderr:\n%s", tc.sig, got, tc.swept, stderr.String())
			}
		})
	}
}

// refusedNobody runs the test binary as uid 65534 where the kernel refuses
// it user namespaces: inside a user namespace that maps root and nobody,
// whose root sets user.max_user_namespaces to 0 there (the limit is per
// user namespace and binds those made inside it), then becomes nobody.
func refusedNobody(t *testing.T, args ...string) result {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	cmd, dir := nobodyCmd(t, args...)
	wrapped := exec.Command("/bin/sh", append([]string{"-c", `echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" --reuid=65534 --regid=65534 --clear-groups "$@"`, setpriv, cmd.Path}, args...)...)
	wrapped.Env, wrapped.Dir = cmd.Env, dir
	maps := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 65534, HostID: 65534, Size: 1}}
	wrapped.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, UidMappings: maps, GidMappings: maps, GidMappingsEnableSetgroups: true}
	return runToEnd(t, wrapped)
}

// Where the kernel refuses an ordinary user user namespaces, doctor says
// so and what to enable, and run fails in that one sentence.
func TestRefusedUserNamespacesAreOneSentence(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to an unprivileged user")
	}
	const want = "the kernel refused this user (uid 65534) a user namespace (no space left on device); enable them with sysctl user.max_user_namespaces=15000, or run as root"
	r := refusedNobody(t, "doctor")
	if r.code != exitBadInput || !strings.Contains(r.stdout, "MISSING privilege "+want) {
		t.Errorf("doctor where user namespaces are refused: exit %d, stdout %s", r.code, r.stdout)
	}
	oneSentence(t, r, want)
	r = refusedNobody(t, "run", "--detector", "read-eof", "--fault", "blackhole", "--report", "out/r.json")
	if r.code != exitBadInput {
		t.Errorf("run where user namespaces are refused exited %d", r.code)
	}
	oneSentence(t, r, want)
}
