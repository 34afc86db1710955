package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
)

// procFacts is what the test saw of one process of a run, read from /proc.
type procFacts struct {
	pid      int
	cmdline  string
	uids     string // the Uid: line of /proc/PID/status: real, effective, saved, fs
	environ  []byte
	isReaper bool
}

// watchRunProcesses reads, every few milliseconds until stop is closed,
// /proc of every process that belongs to the run with pid: tagged with its
// run (agents and foreign programs) or its reaper.
func watchRunProcesses(pid int, stop <-chan struct{}) func() map[int]procFacts {
	var mu sync.Mutex
	seen := map[int]procFacts{}
	runTag := []byte("HALFOPEN_RUN=" + strconv.Itoa(pid) + "p")
	reaperTag := []byte("HALFOPEN_REAPER_RUN=" + strconv.Itoa(pid) + "p")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				n, err := strconv.Atoi(e.Name())
				if err != nil {
					continue
				}
				env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
				if err != nil || !(bytes.Contains(env, runTag) || bytes.Contains(env, reaperTag)) {
					continue
				}
				status, _ := os.ReadFile("/proc/" + e.Name() + "/status")
				cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				var uids string
				for _, l := range strings.Split(string(status), "\n") {
					if v, ok := strings.CutPrefix(l, "Uid:"); ok {
						uids = strings.Join(strings.Fields(v), " ")
					}
				}
				mu.Lock()
				seen[n] = procFacts{pid: n, cmdline: string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})), uids: uids, environ: env, isReaper: bytes.Contains(env, reaperTag)}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() map[int]procFacts {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// Foreign programs run as nobody (their uid read from /proc), and no
// secret of the orchestrator's environment reaches any process of the run,
// its report or its output. Spec values reach the program as written,
// never through a shell.
func TestForeignProgramsRunUnprivilegedAndSeeNoSecrets(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skip(err)
	}
	prog, pids := careless(t)
	var b [16]byte
	_, _ = rand.Read(b[:])
	secret := "s3cret-" + hex.EncodeToString(b[:])
	marker := filepath.Join(t.TempDir(), "shell-was-here")
	// Values a shell would act on; spec values cannot hold ',' or '='.
	tricky := "$(touch " + marker + ");touch${IFS}" + marker + "|`touch " + marker + "`&&'\"\\"
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	cmd := exec.Command(os.Args[0], "run", "--detector", "external:cmd="+prog+",pids="+pids+",dump=1,peer=self,note="+tricky,
		"--fault", "blackhole", "--samples", "2", "--budget", "1s", "--report", out)
	cmd.Env = append(os.Environ(), "HALFOPEN_TEST_MAIN=1", "AWS_SECRET_ACCESS_KEY="+secret, "HALFOPEN_TEST_SECRET="+secret,
		"GITHUB_TOKEN="+secret)
	cmd.Dir = dir
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	seen := watchRunProcesses(cmd.Process.Pid, stop)
	err := cmd.Wait()
	close(stop)
	procs := seen()
	if err != nil {
		t.Fatalf("the run failed: %v\n%s", err, stderr.String())
	}

	foreign, reaper := 0, 0
	for _, p := range procs {
		if bytes.Contains(p.environ, []byte(secret)) {
			t.Errorf("process %d (%s) has the secret in its environment", p.pid, p.cmdline)
		}
		if p.isReaper {
			reaper++
			continue
		}
		if strings.Contains(p.cmdline, "careless.py") {
			foreign++
			if p.uids != "65534 65534 65534 65534" {
				t.Errorf("foreign program %d (%s) runs with uids %q, want nobody's (65534) in all four", p.pid, p.cmdline, p.uids)
			}
		}
	}
	if foreign < 2 || reaper != 1 {
		t.Errorf("saw %d foreign programs and %d reapers of the run; want the watcher and peer programs (at least 2) and 1 reaper", foreign, reaper)
	}

	dumps, _ := filepath.Glob(filepath.Join(pids, "*-env-*.json"))
	if len(dumps) == 0 {
		t.Fatal("the foreign program wrote no account of what it received")
	}
	for _, d := range dumps {
		raw, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			UID    int               `json:"uid"`
			Env    map[string]string `json:"env"`
			Config map[string]string `json:"config"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if got.UID != 65534 {
			t.Errorf("%s: the program ran as uid %d", filepath.Base(d), got.UID)
		}
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%s: the program received the secret", filepath.Base(d))
		}
		if got.Config["note"] != tricky {
			t.Errorf("%s: note arrived as %q, want %q as written", filepath.Base(d), got.Config["note"], tricky)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a spec value was run by a shell: the marker file exists")
	}
	rep, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"report": string(rep), "standard output": stdout.String(), "standard error": stderr.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the run's %s holds the secret", what)
		}
	}

	// A command path with shell syntax is a path that does not exist.
	r := halfopen(t, "run", "--detector", "external:cmd=/bin/true;touch${IFS}"+marker, "--fault", "blackhole")
	if r.code != exitBadInput || !strings.Contains(r.stderr, "cannot be found") {
		t.Errorf("a command with shell syntax: exit %d, %s", r.code, r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a command path was run by a shell: the marker file exists")
	}
}

// A report or budgets file of a gigabyte is refused at once, in one
// sentence, by every command that reads one.
func TestGigabyteInputIsOneSentence(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.json")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	small := writeReport(t, dir, "r.json", []float64{3.5})
	for _, args := range [][]string{{"report", huge}, {"compare", small, huge}, {"merge", small, huge}, {"budgets", "check", "--budgets", huge, small}} {
		start := time.Now()
		r := halfopen(t, args...)
		if r.code != exitBadInput {
			t.Errorf("%v: exit %d, want 2", args, r.code)
		}
		oneSentence(t, r, "huge.json: is 1.0 GiB, more than the")
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%v took %v", args, took)
		}
	}
}
