package harness

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halfopen/halfopen/internal/topo"
)

// envChurn makes TestChurnChild the child of TestSIGKILLDuringBuildAndTeardown.
const envChurn = "HALFOPEN_TEST_CHURN"

// TestChurnChild is not a test of its own: run by
// TestSIGKILLDuringBuildAndTeardown, it builds labs, starts a process that
// daemonises a helper in each host, and tears them down, for ever, saying
// "build" and "teardown" on standard output as each begins.
func TestChurnChild(t *testing.T) {
	if os.Getenv(envChurn) != "1" {
		t.Skip("run by TestSIGKILLDuringBuildAndTeardown")
	}
	run := NewRun()
	out := bufio.NewWriter(os.Stdout)
	say := func(s string) {
		fmt.Fprintln(out, s)
		out.Flush()
	}
	say("run " + run.ID)
	script := `setsid sh -c 'trap "" TERM HUP INT; exec sleep 1000' </dev/null >/dev/null 2>&1 & exec sleep 1000`
	for {
		say("build")
		lab, err := run.NewLab(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []topo.Role{topo.Peer, topo.Router, topo.Watcher} {
			if _, err := lab.Host(r).Start(ProcSpec{Path: "/bin/sh", Args: []string{"-c", script}, Label: "escaper"}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond)
		say("teardown")
		if err := lab.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// An orchestrator SIGKILLed while it builds a lab, while it tears one down,
// or at a random instant leaves nothing 5 s later: no namespace of its run,
// no process in any namespace it ever named (escaped helpers included).
func TestSIGKILLDuringBuildAndTeardown(t *testing.T) {
	if err := Preflight(); err != nil {
		t.Skip(err)
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	for _, phase := range []string{"build", "teardown", "random"} {
		for i := range 7 {
			kill(t, rng, phase, i)
		}
	}
}

// kill starts a churning child, SIGKILLs it in phase and checks that
// nothing of it is left within 5 s.
func kill(t *testing.T, rng *rand.Rand, phase string, i int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestChurnChild$")
	cmd.Env = append(os.Environ(), envChurn+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "run ") {
		_ = cmd.Process.Kill()
		t.Fatalf("the child said %q, not its run", sc.Text())
	}
	runID := strings.TrimPrefix(sc.Text(), "run ")
	prefix := namespacePrefix + runID + "-"
	held := map[nsID]*os.File{}
	hold := func() {
		for _, n := range namesWithPrefix(prefix) {
			f, err := os.Open(nsMountDirectory + "/" + n)
			if err != nil {
				continue
			}
			id, err := namespaceOfFd(int(f.Fd()))
			if _, dup := held[id]; err != nil || dup {
				f.Close()
				continue
			}
			held[id] = f
		}
	}
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	// Let some labs come and go first, then kill at the chosen moment.
	rounds := 2 + rng.IntN(6)
	deadline := time.Now().Add(time.Duration(100+rng.IntN(900)) * time.Millisecond)
	for sc.Scan() {
		hold()
		if phase == "random" && time.Now().After(deadline) {
			break
		}
		if sc.Text() == phase {
			if rounds--; rounds <= 0 {
				break
			}
		}
	}
	// Within the phase: the child is now making namespaces or killing
	// processes and deleting names.
	time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	_ = cmd.Wait()
	hold()
	for {
		ids := map[nsID]bool{}
		for id := range held {
			ids[id] = true
		}
		left := pidsInNamespaces(ids)
		names := namesWithPrefix(prefix)
		if len(left) == 0 && len(names) == 0 {
			t.Logf("%-8s kill %d: nothing left after %v (%d namespaces seen)", phase, i+1, time.Since(killed).Round(time.Millisecond), len(held))
			return
		}
		if time.Since(killed) > 5*time.Second {
			var procs []string
			for _, pid := range left {
				comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
				procs = append(procs, fmt.Sprintf("%d (%s)", pid, strings.TrimSpace(string(comm))))
			}
			t.Errorf("%s kill %d: 5 s later, namespaces %v and processes %v are left", phase, i+1, names, procs)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
