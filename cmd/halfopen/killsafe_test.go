package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// careless copies testdata/careless.py (a foreign detector that daemonises
// a helper once connected: setsid, double fork, SIGTERM ignored, output
// kept open, empty environment) where nobody can run it, with a directory
// where its helpers write their pids.
func careless(t *testing.T) (prog, pids string) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	dir := publicDir(t, "halfopen-careless-")
	src, err := os.ReadFile("testdata/careless.py")
	if err != nil {
		t.Fatal(err)
	}
	prog = filepath.Join(dir, "careless.py")
	if err := os.WriteFile(prog, src, 0o755); err != nil {
		t.Fatal(err)
	}
	pids = filepath.Join(dir, "pids")
	if err := os.Mkdir(pids, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pids, 0o777); err != nil {
		t.Fatal(err)
	}
	return prog, pids
}

// helpers returns the pids the careless detector's helpers wrote.
func helpers(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		_, n, _ := strings.Cut(e.Name(), "-")
		if pid, err := strconv.Atoi(n); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// living reports whether pid is a process that has not exited (a zombie
// has: it is only waiting for init to reap it).
func living(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

type nsKey struct{ dev, ino uint64 }

// nsTracker records every namespace a run names while it lives, so that a
// process left in one is found even after the name is gone. It holds each
// one open: the kernel reuses a freed namespace's inode number at once, and
// another engineer's lab must not pass for one of the run's.
type nsTracker struct {
	prefix string
	mu     sync.Mutex
	seen   map[nsKey]string
	held   []*os.File
	now    []string
	stop   chan struct{}
	done   chan struct{}
}

func trackNamespaces(pid int) *nsTracker {
	tr := &nsTracker{prefix: "ho-" + strconv.Itoa(pid) + "p", seen: map[nsKey]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		for {
			names := namesWith(tr.prefix)
			tr.mu.Lock()
			tr.now = names
			for _, n := range names {
				f, err := os.Open("/run/netns/" + n)
				if err != nil {
					continue
				}
				var st syscall.Stat_t
				if syscall.Fstat(int(f.Fd()), &st) != nil {
					f.Close()
					continue
				}
				k := nsKey{st.Dev, st.Ino}
				if _, ok := tr.seen[k]; ok {
					f.Close()
					continue
				}
				tr.seen[k] = n
				tr.held = append(tr.held, f)
			}
			tr.mu.Unlock()
			select {
			case <-tr.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return tr
}

// current returns the names present at the last look.
func (tr *nsTracker) current() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.now)
}

// finish stops looking and lets go of the namespaces.
func (tr *nsTracker) finish() {
	close(tr.stop)
	<-tr.done
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, f := range tr.held {
		f.Close()
	}
	tr.held = nil
}

func namesWith(prefix string) []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// leftOf lists what of the run with pid is still on the machine: namespace
// names with its prefix, processes living in any namespace it ever named,
// processes tagged with its run, and living helpers of careless detectors.
func leftOf(pid int, tr *nsTracker, helperPids []int) []string {
	var left []string
	for _, n := range namesWith("ho-" + strconv.Itoa(pid) + "p") {
		left = append(left, "namespace "+n)
	}
	tr.mu.Lock()
	seen := make(map[nsKey]string, len(tr.seen))
	for k, v := range tr.seen {
		seen[k] = v
	}
	tr.mu.Unlock()
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		n, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+p.Name()+"/ns/net", &st) != nil {
			continue
		}
		if name, ok := seen[nsKey{st.Dev, st.Ino}]; ok && living(n) {
			comm, _ := os.ReadFile("/proc/" + p.Name() + "/comm")
			left = append(left, fmt.Sprintf("process %d (%s) in %s", n, strings.TrimSpace(string(comm)), name))
		}
	}
	for _, p := range harness.RunProcesses(pid) {
		if living(p) {
			left = append(left, fmt.Sprintf("process %d tagged with the run", p))
		}
	}
	for _, p := range helperPids {
		if living(p) {
			left = append(left, fmt.Sprintf("daemonised helper %d", p))
		}
	}
	for _, cg := range cgroupsOf(pid) {
		left = append(left, "cgroup "+cg)
	}
	return left
}

// nothingLeftWithin waits until nothing of the run is left, at most
// within from since, and returns how long it took or what is left.
func nothingLeftWithin(pid int, tr *nsTracker, pidsDir func() []int, since time.Time, within time.Duration) (time.Duration, []string) {
	for {
		left := leftOf(pid, tr, pidsDir())
		if len(left) == 0 {
			return time.Since(since), nil
		}
		if time.Since(since) > within {
			return time.Since(since), left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a process's output and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// killCount is how many runs TestSIGKILLedRunLeavesNothing kills:
// HALFOPEN_KILLS, else 20 (5 with -short).
func killCount() int {
	if n, err := strconv.Atoi(os.Getenv("HALFOPEN_KILLS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 5
	}
	return 20
}

// A run SIGKILLed at a random instant (building labs, warming up, in a
// fault, tearing down; the pool keeps every phase going at once) leaves no
// namespace and no process within 5 s, with nobody running gc: its reaper
// sweeps. Its foreign detector daemonises helpers that escape its session
// and process group, ignore SIGTERM and carry no run tag; they die too.
func TestSIGKILLedRunLeavesNothing(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skip(err)
	}
	prog, pids := careless(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	kills := killCount()
	t.Logf("%d kills, seed %d", kills, seed)
	reaped, worst := 0, time.Duration(0)
	for i := range kills {
		at := time.Duration(rng.Int64N(int64(3 * time.Second)))
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "run", "--detector", "external:cmd="+prog+",pids="+pids, "--detector", "read-eof",
			"--fault", "graceful-close", "--fault", "blackhole", "--samples", "4", "--pool", "4", "--budget", "1s",
			"--report", filepath.Join(dir, "r.json"))
		cmd.Env = append(os.Environ(), "HALFOPEN_TEST_MAIN=1")
		cmd.Dir = dir
		var stderr syncBuffer
		cmd.Stderr = &stderr
		// The reaper keeps the run's standard error until its sweep ends.
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tr := trackNamespaces(cmd.Process.Pid)
		time.Sleep(at)
		live := tr.current()
		helpersBefore := len(helpers(t, pids))
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		_ = cmd.Wait()
		took, left := nothingLeftWithin(cmd.Process.Pid, tr, func() []int { return helpers(t, pids) }, killed, 5*time.Second)
		tr.finish()
		if took > worst {
			worst = took
		}
		swept := strings.Contains(stderr.String(), "halfopen reaper: run")
		if swept {
			reaped++
		}
		t.Logf("kill %2d at %4dms: %2d namespaces named, %2d helpers so far; nothing left after %v; reaper swept: %v",
			i+1, at.Milliseconds(), len(live), helpersBefore, took.Round(time.Millisecond), swept)
		if len(left) > 0 {
			t.Errorf("kill %d at %v: 5 s later the run left %s\nits stderr:\n%s", i+1, at, strings.Join(left, "; "), stderr.String())
		}
	}
	t.Logf("%d of %d kills left labs for the reaper; the slowest clean-up took %v", reaped, kills, worst.Round(time.Millisecond))
	if reaped < (kills+1)/2 {
		t.Errorf("only %d of %d kills caught a run with labs, so this test proves little", reaped, kills)
	}
	if len(helpers(t, pids)) == 0 {
		t.Error("no careless helper was ever started, so this test proves nothing about escaped processes")
	}
}

// A foreign detector and its peer program (peer=self) daemonise helpers in
// the watcher and peer hosts; one fault destroys the peer host, whose
// namespace loses its name while the helper still lives in it. The run
// completes and nothing is left.
func TestDaemonisingDetectorLeavesNothing(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skip(err)
	}
	prog, pids := careless(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	cmd := exec.Command(os.Args[0], "run", "--detector", "external:cmd="+prog+",pids="+pids+",peer=self",
		"--fault", "host-crash", "--fault", "blackhole", "--samples", "2", "--budget", "1s", "--report", out)
	cmd.Env = append(os.Environ(), "HALFOPEN_TEST_MAIN=1")
	cmd.Dir = dir
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tr := trackNamespaces(cmd.Process.Pid)
	defer tr.finish()
	err := cmd.Wait()
	if err != nil {
		t.Fatalf("the run failed: %v\n%s", err, stderr.String())
	}
	rep, err := report.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Cells {
		if c.Kind != report.KindDetection {
			continue
		}
		for _, s := range c.Samples {
			if s.Error != "" {
				t.Errorf("%s × %s: sample error %q", c.Detector, c.Fault, s.Error)
			}
		}
	}
	hs := helpers(t, pids)
	roles := map[string]bool{}
	entries, _ := os.ReadDir(pids)
	for _, e := range entries {
		role, _, _ := strings.Cut(e.Name(), "-")
		roles[role] = true
	}
	if !roles["watcher"] || !roles["peer"] {
		t.Fatalf("helpers were daemonised by %v, want both the watcher and the peer", roles)
	}
	// Teardown is synchronous: nothing may be left the moment the run ends.
	if left := leftOf(cmd.Process.Pid, tr, hs); len(left) > 0 {
		t.Errorf("after the run: %s", strings.Join(left, "; "))
	}
	if strings.Contains(stderr.String(), "halfopen reaper: run") {
		t.Errorf("the reaper had to sweep after a run that ended normally:\n%s", stderr.String())
	}
}

// Two runs with overlapping lifetimes both complete correctly: a short run
// that ends (and closes its reaper) in the middle of a long one, `gc`
// without --all, and a third run SIGKILLed and swept by its reaper, all
// leave the long run's labs alone.
func TestTwoRunsAtOnceKeepToTheirOwnLabs(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skip(err)
	}
	start := func(samples string) (*exec.Cmd, string, *syncBuffer) {
		dir := t.TempDir()
		out := filepath.Join(dir, "r.json")
		cmd := exec.Command(os.Args[0], "run", "--detector", "read-eof", "--detector", "select-recv",
			"--fault", "graceful-close", "--fault", "blackhole", "--samples", samples, "--pool", "2", "--budget", "1s", "--report", out)
		cmd.Env = append(os.Environ(), "HALFOPEN_TEST_MAIN=1")
		cmd.Dir = dir
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, out, &stderr
	}
	wait := func(cmd *exec.Cmd) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- cmd.Wait() }()
		return ch
	}
	long, longOut, longErr := start("5")
	longDone := wait(long)
	waitSamples(t, longOut, 1, 60*time.Second)

	short, shortOut, shortErr := start("1")
	if err := <-wait(short); err != nil {
		t.Fatalf("the short run failed: %v\n%s", err, shortErr.String())
	}
	select {
	case <-longDone:
		t.Fatal("the long run ended before the short one: the runs did not overlap")
	default:
	}
	if left := namesWith("ho-" + strconv.Itoa(long.Process.Pid) + "p"); len(left) == 0 {
		t.Log("the long run had no lab at the moment the short one ended")
	}
	if r := halfopen(t, "gc"); r.code != 0 || strings.Contains(r.stdout, "ho-"+strconv.Itoa(long.Process.Pid)+"p") {
		t.Errorf("gc during a live run: exit %d, and it listed the live run's namespaces:\n%s", r.code, r.stdout)
	}
	killed, _, _ := start("4")
	kdone := wait(killed)
	time.Sleep(1500 * time.Millisecond)
	_ = killed.Process.Signal(syscall.SIGKILL)
	<-kdone

	select {
	case err := <-longDone:
		if err != nil {
			t.Fatalf("the long run failed: %v\n%s", err, longErr.String())
		}
	case <-time.After(120 * time.Second):
		t.Fatal("the long run did not end within 120 s")
	}
	for _, tc := range []struct {
		name, path string
		samples    int
	}{{"short", shortOut, 1}, {"long", longOut, 5}} {
		rep, err := report.Read(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Complete {
			t.Errorf("the %s run's report is not complete", tc.name)
		}
		cells, timeouts := 0, 0
		for _, c := range rep.Cells {
			if c.Kind == report.KindCalibration {
				continue
			}
			cells++
			if len(c.Samples) != tc.samples {
				t.Errorf("%s run, %s × %s: %d samples, want %d", tc.name, c.Detector, c.Fault, len(c.Samples), tc.samples)
			}
			for _, s := range c.Samples {
				if s.Error != "" {
					// A machine loaded by other work can time a warm-up out;
					// another run's clean-up would kill processes or remove
					// namespaces instead, which no deadline explains.
					if strings.Contains(s.Error, "context deadline exceeded") {
						t.Logf("%s run, %s × %s: a timeout under load: %s", tc.name, c.Detector, c.Fault, s.Error)
						timeouts++
						continue
					}
					t.Errorf("%s run, %s × %s: sample error %q", tc.name, c.Detector, c.Fault, s.Error)
					continue
				}
				if c.Fault == "graceful-close" && !s.Detected {
					t.Errorf("%s run, %s × graceful-close: a FIN was not detected (%s)", tc.name, c.Detector, s.Reason)
				}
			}
		}
		if cells != 4 {
			t.Errorf("the %s run's report holds %d cells, want 4", tc.name, cells)
		}
		if timeouts*2 > cells*tc.samples {
			t.Errorf("the %s run timed out in %d of %d samples: too loaded a machine to tell anything", tc.name, timeouts, cells*tc.samples)
		}
	}
	for _, cmd := range []*exec.Cmd{long, short, killed} {
		tr := trackNamespaces(cmd.Process.Pid)
		tr.finish()
		if took, left := nothingLeftWithin(cmd.Process.Pid, tr, func() []int { return nil }, time.Now(), 5*time.Second); len(left) > 0 {
			t.Errorf("run %d left, %v after the end: %s", cmd.Process.Pid, took, strings.Join(left, "; "))
		}
	}
}

// doctor proves that this binary can start the reaper of a run.
func TestDoctorChecksTheReaper(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skip(err)
	}
	r := halfopen(t, "doctor")
	if r.code != 0 || !strings.Contains(r.stdout, "ok      reaper ") {
		t.Errorf("doctor: exit %d, no working reaper:\n%s%s", r.code, r.stdout, r.stderr)
	}
}
