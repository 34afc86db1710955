package harness_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/report"
)

// nobody is the ordinary user the test runs a gate as.
const nobody = 65534

// Namespace ioctls (linux/nsfs.h).
const (
	nsGetUserns   = 0xb701 // NS_GET_USERNS: the user namespace owning a namespace
	nsGetOwnerUID = 0xb704 // NS_GET_OWNER_UID: the uid that created a user namespace
)

// gateModule is a gate module outside the repository, as its author has
// it: go.mod requiring halfopen (replaced by this checkout, its packages
// vendored so that the ordinary user needs no module cache), the gate from
// testdata/rootlessgate, and a home with the user's own Go caches.
type gateModule struct {
	dir, home string
	env       []string
}

// newGateModule writes the module under a fresh directory that the
// ordinary user can read, with a home only it can write, all removed at
// the end of the test.
func newGateModule(t *testing.T) *gateModule {
	t.Helper()
	checkout, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.MkdirTemp("", "halfopen-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	m := &gateModule{dir: filepath.Join(base, "gate"), home: filepath.Join(base, "home")}
	for _, d := range []string{m.dir, m.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile(filepath.Join(checkout, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The checkout's requirements, as `go mod tidy` would copy them, and
	// its go directive: a module may not need an older Go than its
	// dependencies.
	goLine, requires := "", ""
	for _, line := range strings.Split(string(ours), "\n") {
		if strings.HasPrefix(line, "go ") {
			goLine = line
		}
	}
	if i := strings.Index(string(ours), "\nrequire"); i >= 0 {
		requires = string(ours)[i+1:]
	}
	gomod := "module example.com/rootlessgate\n\n" + goLine + "\n\nrequire github.com/halfopen/halfopen v0.0.0\n\nreplace github.com/halfopen/halfopen => " + checkout + "\n\n" + requires
	files := map[string]string{"go.mod": gomod}
	for name, src := range map[string]string{"go.sum": filepath.Join(checkout, "go.sum"), "gate_test.go": filepath.Join("testdata", "rootlessgate", "gate_test.go")} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(m.dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vendor := exec.Command("go", "mod", "vendor")
	vendor.Dir = m.dir
	vendor.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	if out, err := vendor.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	if err := filepath.Walk(m.dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm() | 0o444
		if fi.IsDir() {
			mode |= 0o111
		}
		return os.Chmod(p, mode)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(m.home, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	m.env = []string{
		"PATH=" + filepath.Dir(goBin) + ":/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + m.home,
		"GOCACHE=" + filepath.Join(m.home, "cache"),
		"GOPATH=" + filepath.Join(m.home, "go"),
		"GOFLAGS=-mod=vendor",
		"GOPROXY=off",
		"GOTOOLCHAIN=local",
		"HALFOPEN_REPORT_DIR=" + filepath.Join(m.home, "report"),
	}
	return m
}

// asNobody returns a command run as the ordinary user, in the module.
func (m *gateModule) asNobody(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = m.dir
	cmd.Env = m.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	return cmd
}

// nobodysFiles lists what the ordinary user owns where it can write
// outside its home: every entry under /run, and the entries of the
// world-writable directories (it can make nothing deeper but in its own).
func nobodysFiles() map[string]bool {
	out := map[string]bool{}
	owned := func(p string) {
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Uid == nobody {
			out[p] = true
		}
	}
	_ = filepath.WalkDir("/run", func(p string, _ os.DirEntry, err error) error {
		if err == nil {
			owned(p)
		}
		return nil
	})
	for _, dir := range []string{os.TempDir(), "/tmp", "/var/tmp", "/dev/shm"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			owned(filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// ownerOfUserNamespace returns the uid that created the user namespace
// owning the namespace at path (a /proc/PID/ns/* link or a bind mount).
func ownerOfUserNamespace(path string, own bool) (uint32, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if !own {
		ufd, err := unix.IoctlRetInt(fd, nsGetUserns)
		if err != nil {
			return 0, err
		}
		defer unix.Close(ufd)
		fd = ufd
	}
	return unix.IoctlGetUint32(fd, nsGetOwnerUID)
}

// nobodysNamespaces lists the processes living in a user namespace that
// the ordinary user created (the run's, or one nested in it), and the
// namespace names on the machine owned by such a user namespace.
func nobodysNamespaces() (pids []int, names []string) {
	init, _ := os.Readlink("/proc/1/ns/user")
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		link := "/proc/" + p.Name() + "/ns/user"
		if id, err := os.Readlink(link); err != nil || id == init {
			continue
		}
		if uid, err := ownerOfUserNamespace(link, true); err == nil && uid == nobody {
			pids = append(pids, pid)
		}
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if uid, err := ownerOfUserNamespace("/run/netns/"+e.Name(), false); err == nil && uid == nobody {
			names = append(names, e.Name())
		}
	}
	return pids, names
}

// TestRootlessGate builds a gate module outside the repository and runs it
// with plain `go test` as nobody: it measures a real cell in a user
// namespace of its own and leaves nothing behind; where the kernel refuses
// the user namespaces, it fails with one sentence.
func TestRootlessGate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to become nobody and to refuse it user namespaces")
	}
	if testing.Short() {
		t.Skip("builds a gate module from an empty Go cache as nobody (minutes)")
	}
	m := newGateModule(t)

	t.Run("measures as nobody and leaves nothing", func(t *testing.T) {
		before := nobodysFiles()
		cmd := m.asNobody("go", "test", "-count=1", "-v", ".")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		// While it runs, the check for leftovers must see the run's
		// processes: it is the same check, so it can fail.
		seen := 0
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					pids, _ := nobodysNamespaces()
					seen = max(seen, len(pids))
				}
			}
		}()
		start := time.Now()
		err := cmd.Run()
		close(stop)
		wg.Wait()
		t.Logf("go test as nobody took %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())
		if err != nil {
			if strings.Contains(out.String(), "refused this user (uid 65534) a user namespace") {
				t.Skipf("this machine refuses nobody user namespaces: %s", lastLine(out.String()))
			}
			t.Fatalf("go test as nobody: %v", err)
		}
		if seen == 0 {
			t.Error("no process of the run was ever seen in a user namespace of nobody's")
		}
		r, err := report.Read(filepath.Join(m.home, "report", "suite-gates-rootlessgate.json"))
		if err != nil {
			t.Fatal(err)
		}
		env := r.Environment
		if env.Privilege == nil || env.Privilege.Mode != "user namespace (uid 65534)" {
			t.Errorf("the report's privilege is %+v, want mode user namespace (uid 65534)", env.Privilege)
		}
		// Real-time priority is nobody's only within its RLIMIT_RTPRIO,
		// inherited from this test.
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_RTPRIO, &lim); err != nil {
			t.Fatal(err)
		}
		refused := env.Privilege != nil && len(env.Privilege.Degraded) > 0 && strings.HasPrefix(env.Privilege.Degraded[0], "real-time priority is refused")
		if refused != (lim.Cur == 0) {
			t.Errorf("with RLIMIT_RTPRIO %d the report says real-time priority was refused: %v (%+v)", lim.Cur, refused, env.Privilege)
		}
		if env.CalibrationErrorMs == nil {
			t.Error("the report has no calibration error to go with what the run went without")
		}
		t.Logf("environment: privilege %+v, cpu idle %q, calibration error %+v", env.Privilege, env.CPUIdle, env.CalibrationErrorMs)
		detected := 0
		for _, c := range r.Cells {
			for _, s := range c.Samples {
				if s.Detected && s.Reason == "ETIMEDOUT" {
					detected++
				}
			}
		}
		if detected != 2 {
			t.Errorf("%d samples detected the blackhole with ETIMEDOUT, want 2", detected)
		}
		// The run is over when go test returns; its reaper may take a
		// moment to finish its sweep and exit.
		var pids []int
		var names []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			pids, names = nobodysNamespaces()
			if len(pids)+len(names) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(pids) > 0 {
			t.Errorf("processes %v still live in nobody's user namespaces", pids)
		}
		if len(names) > 0 {
			t.Errorf("namespaces %v of nobody's are still named in /run/netns", names)
		}
		var left []string
		for p := range nobodysFiles() {
			if !before[p] {
				left = append(left, p)
			}
		}
		sort.Strings(left)
		if len(left) > 0 {
			t.Errorf("the run left files of nobody's: %v", left)
		}
	})

	t.Run("fails in one sentence where user namespaces are refused", func(t *testing.T) {
		bin := filepath.Join(m.home, "gate.test")
		build := m.asNobody("go", "test", "-c", "-o", bin, ".")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go test -c as nobody: %v\n%s", err, out)
		}
		// A user namespace in which nobody keeps its uid and may create
		// no user namespace: its root sets user.max_user_namespaces to 0
		// there (the limit is per user namespace, and binds the ones made
		// inside it), then becomes nobody and runs the gate.
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("needs setpriv (util-linux)")
		}
		cmd := exec.Command("/bin/sh", "-c", `echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" --reuid=65534 --regid=65534 --clear-groups "$@"`, setpriv, bin, "-test.count=1")
		cmd.Dir = m.dir
		cmd.Env = m.env
		maps := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: nobody, HostID: nobody, Size: 1}}
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, UidMappings: maps, GidMappings: maps, GidMappingsEnableSetgroups: true}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		go func() {
			<-ctx.Done()
			if cmd.Process != nil {
				_ = cmd.Process.Kill()
			}
		}()
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("the gate exited with %v, want status 2; stdout %q, stderr %q", err, stdout.String(), stderr.String())
		}
		msg := strings.TrimSpace(stderr.String())
		t.Logf("stderr: %s", msg)
		if strings.Count(msg, "\n") != 0 {
			t.Errorf("stderr is not one line: %q", msg)
		}
		for _, want := range []string{"gate: this machine cannot run halfopen's lab: the kernel refused this user (uid 65534) a user namespace", "user.max_user_namespaces", "or run as root"} {
			if !strings.Contains(msg, want) {
				t.Errorf("stderr %q does not say %q", msg, want)
			}
		}
		if stdout.Len() != 0 {
			t.Errorf("the refused gate ran its tests: %q", stdout.String())
		}
	})
}

// lastLine returns the last non-empty line of text.
func lastLine(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	return lines[len(lines)-1]
}
