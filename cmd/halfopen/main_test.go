package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/hostsnap"
	"github.com/halfopen/halfopen/internal/labenv"
	"github.com/halfopen/halfopen/report"
)

// TestMain lets the test binary be the halfopen command (HALFOPEN_TEST_MAIN=1)
// and the harness's agents, so the tests run the real command line.
func TestMain(m *testing.M) {
	harness.MaybeRunAgent()
	if os.Getenv("HALFOPEN_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

type result struct {
	stdout, stderr string
	code           int
	pid            int
	dir            string // where asNobody ran it
}

// halfopen runs the command with args and returns what it printed.
func halfopen(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "HALFOPEN_TEST_MAIN=1")
	cmd.Dir = t.TempDir()
	return runToEnd(t, cmd)
}

// runToEnd runs cmd and returns what it printed and its exit code.
func runToEnd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code, pid: cmd.Process.Pid}
}

// publicDir makes a directory that uid 65534 can enter, removed after the test.
func publicDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// oneSentence checks that stderr is one line, "halfopen: ..." ending in a
// sentence, without a Go panic or usage dump.
func oneSentence(t *testing.T, r result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "halfopen: ") {
		t.Errorf("stderr is not one 'halfopen: ...' line:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not say %q", r.stderr, want)
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("stderr shows a panic:\n%s", r.stderr)
	}
}

func noLeftovers(t *testing.T, pid int) {
	t.Helper()
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "ho-"+strconv.Itoa(pid)+"p") {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
	if pids := harness.RunProcesses(pid); len(pids) > 0 {
		t.Errorf("processes %v of the run are still alive", pids)
	}
	if cg := cgroupsOf(pid); len(cg) > 0 {
		t.Errorf("cgroups %v left behind", cg)
	}
}

func TestBadInputIsOneSentenceAndExit2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown detector", []string{"run", "--detector", "no-such-thing", "--fault", "blackhole"}, `no detector is called "no-such-thing"; the known detectors are `},
		{"unknown fault", []string{"run", "--detector", "read-eof", "--fault", "meteor"}, `no fault is called "meteor"; the known faults are `},
		{"unknown key", []string{"run", "--detector", "keepalive-tuned:idel=1s", "--fault", "blackhole"}, `has no parameter "idel"; its parameters are idle, intvl, cnt`},
		{"bad duration", []string{"run", "--detector", "user-timeout:timeout=soon", "--fault", "blackhole"}, "not a duration"},
		{"bad side", []string{"run", "--detector", "read-eof", "--fault", "blackhole", "--side", "middle"}, `side "middle" is not known`},
		{"bad sysctl", []string{"run", "--detector", "read-eof", "--fault", "blackhole", "--sysctl", "kernel.pid_max=5"}, "not per network namespace"},
		{"no detector", []string{"run", "--fault", "blackhole"}, "at least one --detector"},
		{"bad phase", []string{"run", "--detector", "read-eof", "--fault", "blackhole", "--phase", "busy"}, `phase "busy" is not known`},
		{"unknown flag", []string{"run", "--detectr", "x"}, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"missing report", []string{"report", "/nonexistent/r.json"}, "/nonexistent/r.json"},
		{"missing budgets", []string{"budgets", "check", "--budgets", "/nonexistent/b.yaml", "x.json"}, "/nonexistent/b.yaml"},
		{"budgets without check", []string{"budgets", "chek"}, "budgets has one subcommand, check"},
		// The kernel takes at most 128 KiB in one argument.
		{"huge detector spec", []string{"run", "--detector", "keepalive-tuned:idle=" + strings.Repeat("1", 120<<10) + "s", "--fault", "blackhole"}, "is longer than the 4096 a detector or fault spec may have"},
		{"huge fault spec", []string{"run", "--detector", "read-eof", "--fault", "blackhole:x=" + strings.Repeat("y", 120<<10)}, "is longer than the 4096 a detector or fault spec may have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := halfopen(t, tc.args...)
			if r.code != exitBadInput {
				t.Errorf("exit code %d, want %d; stderr: %s", r.code, exitBadInput, r.stderr)
			}
			oneSentence(t, r, tc.want)
			if len(r.stderr) > 2048 {
				t.Errorf("the sentence is %d bytes long", len(r.stderr))
			}
			noLeftovers(t, r.pid)
		})
	}
}

func TestUnknownDetectorListsTheKnownOnes(t *testing.T) {
	r := halfopen(t, "run", "--detector", "no-such-thing", "--fault", "blackhole")
	for _, e := range harness.Detectors() {
		if !strings.Contains(r.stderr, e.Name) {
			t.Errorf("the error does not list detector %s: %s", e.Name, r.stderr)
		}
	}
}

func TestListShowsEveryDetectorAndFaultWithParameters(t *testing.T) {
	r := halfopen(t, "list")
	if r.code != 0 {
		t.Fatalf("list exited %d: %s", r.code, r.stderr)
	}
	for _, e := range append(harness.Detectors(), harness.Faults()...) {
		if !strings.Contains(r.stdout, "  "+e.Name+" — ") {
			t.Errorf("list does not show %s", e.Name)
		}
		for _, p := range e.Params {
			if p.Key != "*" && !strings.Contains(r.stdout, "      "+p.Key+" (") {
				t.Errorf("list does not show parameter %s of %s", p.Key, e.Name)
			}
		}
	}
	if !strings.Contains(r.stdout, "predicted: [3s, 4.5s]") {
		t.Errorf("list does not show keepalive-tuned's prediction:\n%s", r.stdout)
	}
}

// asNobody runs the test binary as uid 65534 (nobodyCmd) to its end.
func asNobody(t *testing.T, args ...string) result {
	t.Helper()
	cmd, dir := nobodyCmd(t, args...)
	r := runToEnd(t, cmd)
	r.dir = dir
	return r
}

// nobodyCmd copies the test binary where uid 65534 can run it, in a
// directory with a subdirectory out that it can write, and returns the
// command running it there as uid 65534, and the directory.
func nobodyCmd(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	dir := publicDir(t, "halfopen-nobody-")
	bin := filepath.Join(dir, "halfopen")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "out"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HALFOPEN_TEST_MAIN=1", "PATH=/usr/bin:/bin"}
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd, dir
}

// As an ordinary user, doctor names the user-namespace mode and what it
// goes without, and run measures in a user namespace of its own.
func TestAsNobodyDoctorAndRunUseAUserNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to an unprivileged user")
	}
	r := asNobody(t, "doctor")
	if strings.Contains(r.stdout, "refused this user") {
		t.Skipf("this machine refuses nobody a user namespace: %s", r.stdout)
	}
	if r.code != 0 || !strings.Contains(r.stdout, "ok      privilege user namespace (uid 65534)") || !strings.Contains(r.stdout, "ok      degraded ") {
		t.Errorf("doctor as nobody: exit %d, stdout %s", r.code, r.stdout)
	}
	r = asNobody(t, "run", "--detector", "read-eof", "--fault", "graceful-close", "--samples", "1", "--pool", "1", "--report", "out/r.json")
	if r.code != 0 {
		t.Fatalf("run as nobody exited %d: %s", r.code, r.stderr)
	}
	rep, err := report.Read(filepath.Join(r.dir, "out", "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Environment.Privilege; p == nil || p.Mode != "user namespace (uid 65534)" {
		t.Errorf("the report's privilege is %+v", p)
	}
	if len(rep.Cells) != 1 || len(rep.Cells[0].Samples) != 1 || !rep.Cells[0].Samples[0].Detected {
		t.Errorf("run as nobody did not measure its one sample: %+v", rep.Cells)
	}
}

// waitSamples polls the report until it holds at least n samples.
func waitSamples(t *testing.T, path string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if r, err := report.Read(path); err == nil {
			got := 0
			for _, c := range r.Cells {
				got += len(c.Samples)
			}
			if got >= n {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not reach %d samples within %v", path, n, within)
}

func startRun(t *testing.T, reportPath string, env ...string) *exec.Cmd {
	t.Helper()
	if err := harness.Preflight(); err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(os.Args[0], "run", "--detector", "read-eof", "--fault", "blackhole", "--fault", "graceful-close",
		"--samples", "8", "--pool", "4", "--budget", "2s", "--report", reportPath)
	cmd.Env = append(append(os.Environ(), "HALFOPEN_TEST_MAIN=1"), env...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd
}

func TestInterruptedRunKeepsItsSamplesAndLeavesNothing(t *testing.T) {
	before, err := hostsnap.Take()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r.json")
	cmd := startRun(t, path)
	waitSamples(t, path, 2, 60*time.Second)
	interrupt(t, cmd)
	if code := cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("an interrupted run exited 0")
	}
	noLeftovers(t, cmd.Process.Pid)
	r, err := report.Read(path)
	if err != nil {
		t.Fatalf("the interrupted run's report is not valid: %v", err)
	}
	if r.Complete {
		t.Error("an interrupted run's report says it is complete")
	}
	got := 0
	for _, c := range r.Cells {
		got += len(c.Samples)
	}
	if got < 2 {
		t.Errorf("the report kept %d samples, want at least the 2 measured before SIGINT", got)
	}
	after, err := hostsnap.Take()
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Diff(before); len(d) > 0 {
		t.Errorf("the host's namespace changed: %v", d)
	}
}

// gc is for a machine that crashed mid-run, taking the run's reaper with
// it: the run is started without one.
func TestGCRemovesWhatAKilledRunLeft(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	cmd := startRun(t, path, labenv.EnvNoReaper+"=1")
	waitSamples(t, path, 1, 60*time.Second)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	prefix := "ho-" + strconv.Itoa(cmd.Process.Pid) + "p"
	left := 0
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			left++
		}
	}
	if left == 0 {
		t.Error("the SIGKILLed run left no namespace, so this test proves nothing about gc: its labs should have been mid-sample")
	}
	r := halfopen(t, "gc")
	if r.code != 0 {
		t.Fatalf("gc exited %d: %s", r.code, r.stderr)
	}
	// Agents die with their parent thread (PR_SET_PDEATHSIG); give them a moment.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(harness.RunProcesses(cmd.Process.Pid)) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	noLeftovers(t, cmd.Process.Pid)
}

// writeReport writes a one-cell report with the given detection seconds.
func writeReport(t *testing.T, dir, name string, secs []float64) string {
	t.Helper()
	r := &report.Report{Schema: report.SchemaV1, Profile: "quick", Started: time.Now().UTC(), Seed: 1, Complete: true,
		Environment: report.Environment{Kernel: "k", Go: "go", Halfopen: "h", Sysctls: map[string]string{}}}
	c := r.Cell("keepalive-tuned:cnt=3,idle=1s,intvl=1s", "peer-cable-pull", "client", report.KindDetection)
	c.BudgetS = 20
	c.PredictedS = &[2]float64{3, 4.5}
	for _, s := range secs {
		v := s
		c.Samples = append(c.Samples, report.Sample{Detected: true, Seconds: &v, Reason: "ETIMEDOUT"})
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompareExitsOneOnlyOnARegression(t *testing.T) {
	dir := t.TempDir()
	base := []float64{3.50, 3.61, 3.55, 3.72, 3.58, 3.66, 3.49, 3.70}
	slow := make([]float64, len(base))
	same := make([]float64, len(base))
	for i, s := range base {
		slow[i] = s + 2
		same[i] = base[(i+3)%len(base)] + 0.01*float64(i%3-1)
	}
	old := writeReport(t, dir, "old.json", base)
	if r := halfopen(t, "compare", old, writeReport(t, dir, "slow.json", slow)); r.code != exitRegression {
		t.Errorf("2 s slower: compare exited %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := halfopen(t, "compare", old, writeReport(t, dir, "same.json", same)); r.code != 0 {
		t.Errorf("same configuration: compare exited %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestBudgetsCheckNamesEveryBrokenBudget(t *testing.T) {
	dir := t.TempDir()
	rep := writeReport(t, dir, "r.json", []float64{3.5, 3.6, 3.7})
	budgets := func(p95 string) string {
		p := filepath.Join(dir, "b-"+p95+".yaml")
		body := fmt.Sprintf("budgets:\n  - name: cable pull noticed\n    detector: keepalive-tuned:idle=1s,intvl=1s,cnt=3\n    fault: peer-cable-pull\n    p95: %s\n    censored: 0\n", p95)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if r := halfopen(t, "budgets", "check", "--budgets", budgets("5s"), rep); r.code != 0 {
		t.Errorf("a holding budget failed: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := halfopen(t, "budgets", "check", "--budgets", budgets("3s"), rep)
	if r.code != exitRegression || !strings.Contains(r.stdout, "cable pull noticed") {
		t.Errorf("a broken budget: exit %d, want 1 naming it\n%s%s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("budgets:\n  - detector: read-eof\n    fault: blackhole\n    p96: 1s\n"), 0o644)
	r = halfopen(t, "budgets", "check", "--budgets", bad, rep)
	if r.code != exitBadInput {
		t.Errorf("unknown budget key: exit %d, want 2", r.code)
	}
	oneSentence(t, r, "bad.yaml")
	os.WriteFile(bad, []byte("budgets:\n  - detector: telepathy\n    fault: blackhole\n    p95: 1s\n"), 0o644)
	r = halfopen(t, "budgets", "check", "--budgets", bad, rep)
	if r.code != exitBadInput {
		t.Errorf("unknown detector in budgets: exit %d, want 2", r.code)
	}
	oneSentence(t, r, "telepathy")
}

// TestGateIsADeprecatedAliasOfBudgetsCheck: `halfopen gate`, the old name
// of budgets check, does the same (its output, its exit code) and says
// first, in one line on stderr, that it is deprecated.
func TestGateIsADeprecatedAliasOfBudgetsCheck(t *testing.T) {
	dir := t.TempDir()
	rep := writeReport(t, dir, "r.json", []float64{3.5, 3.6, 3.7})
	budgets := filepath.Join(dir, "b.yaml")
	body := "budgets:\n  - name: cable pull noticed\n    detector: keepalive-tuned:idle=1s,intvl=1s,cnt=3\n    fault: peer-cable-pull\n    p95: %s\n"
	for _, tc := range []struct {
		name, p95 string
		args      []string
		code      int
	}{
		{"holds", "5s", []string{"--budgets", budgets, rep}, exitOK},
		{"broken", "3s", []string{"--budgets", budgets, rep}, exitRegression},
		{"no report", "5s", []string{"--budgets", budgets}, exitBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(budgets, []byte(fmt.Sprintf(body, tc.p95)), 0o644); err != nil {
				t.Fatal(err)
			}
			now := halfopen(t, append([]string{"budgets", "check"}, tc.args...)...)
			old := halfopen(t, append([]string{"gate"}, tc.args...)...)
			if now.code != tc.code || old.code != tc.code {
				t.Errorf("budgets check exited %d, gate %d; want %d both", now.code, old.code, tc.code)
			}
			if old.stdout != now.stdout {
				t.Errorf("gate printed\n%s\nbudgets check printed\n%s", old.stdout, now.stdout)
			}
			first, rest, _ := strings.Cut(old.stderr, "\n")
			if first != gateDeprecation {
				t.Errorf("gate's first line on stderr is %q, want %q", first, gateDeprecation)
			}
			if strings.Contains(now.stderr, "deprecated") {
				t.Errorf("budgets check says it is deprecated: %s", now.stderr)
			}
			if rest != strings.ReplaceAll(now.stderr, "budgets check", "gate") {
				t.Errorf("after the notice, gate's stderr is %q, budgets check's %q", rest, now.stderr)
			}
		})
	}
}

func TestTruncatedReportIsBadInputNamingFileAndLine(t *testing.T) {
	dir := t.TempDir()
	p := writeReport(t, dir, "r.json", []float64{3.5})
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)/2], 0o644)
	for _, args := range [][]string{{"report", p}, {"compare", p, p}, {"merge", p}} {
		r := halfopen(t, args...)
		if r.code != exitBadInput {
			t.Errorf("%v on a truncated report: exit %d, want 2", args, r.code)
		}
		oneSentence(t, r, "r.json")
		if r.stdout != "" {
			t.Errorf("%v printed partial output: %q", args, r.stdout)
		}
	}
}

// SIGINT at any moment, also while labs are still being built, leaves no
// namespace and no process behind.
func TestSIGINTAtAnyMomentLeavesNothing(t *testing.T) {
	for _, delay := range []time.Duration{20 * time.Millisecond, 60 * time.Millisecond, 120 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			cmd := startRun(t, filepath.Join(t.TempDir(), "r.json"))
			time.Sleep(delay)
			interrupt(t, cmd)
			noLeftovers(t, cmd.Process.Pid)
		})
	}
}

// interrupt sends SIGINT to a run and waits, at most 20 s, for it to end.
func interrupt(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not end within 20 s of SIGINT")
	}
}
