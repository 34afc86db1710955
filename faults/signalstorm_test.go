package faults

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
)

// signalCounterThreads is how many threads the counting agent blocks in
// select().
const signalCounterThreads = 3

func init() {
	harness.RegisterAgent("signal-counter", signalCounter)
}

// signalCounter is a test agent: it blocks signalCounterThreads locked
// threads in select() (on a pipe that never becomes readable, as a watcher
// waits on an idle socket), counts the EINTRs each one gets, prints
// "ready" and, when its standard input closes, the counts as JSON keyed by
// thread id. It installs no handler of its own: what it survives is the Go
// runtime's default.
func signalCounter() error {
	var r [2]int
	if err := unix.Pipe2(r[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	var mu sync.Mutex
	counts := map[int]int{}
	ready := make(chan struct{}, signalCounterThreads)
	for range signalCounterThreads {
		go func() {
			runtime.LockOSThread()
			tid := unix.Gettid()
			mu.Lock()
			counts[tid] = 0
			mu.Unlock()
			ready <- struct{}{}
			for {
				var set unix.FdSet
				set.Set(r[0])
				tv := unix.Timeval{Sec: 10}
				if _, err := unix.Select(r[0]+1, &set, nil, nil, &tv); errors.Is(err, unix.EINTR) {
					mu.Lock()
					counts[tid]++
					mu.Unlock()
				}
			}
		}()
	}
	for range signalCounterThreads {
		<-ready
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	mu.Lock()
	defer mu.Unlock()
	return json.NewEncoder(os.Stdout).Encode(counts)
}

// TestSignalStormHitsEveryThread storms a process whose threads are blocked
// in select(): every thread is signalled, each blocked select() returns
// EINTR about once per round, and the process, which only has the Go
// runtime's handlers, survives every signal the fault offers.
func TestSignalStormHitsEveryThread(t *testing.T) {
	for _, sig := range []string{"SIGUSR1", "SIGUSR2", "SIGALRM", "SIGWINCH"} {
		t.Run(sig, func(t *testing.T) {
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), "HALFOPEN_AGENT=signal-counter")
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			out := bufio.NewReader(stdout)
			if line, err := out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
				t.Fatalf("agent did not get ready: %q %v %s", line, err, stderr.String())
			}
			f := &SignalStorm{Rate: 100, Signal: sig}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				f.storm(cmd.Process.Pid, f.signalNumber(), 10*time.Millisecond, stop, nil)
			}()
			time.Sleep(400 * time.Millisecond)
			close(stop)
			<-done
			stdin.Close()
			var counts map[int]int
			if err := json.NewDecoder(out).Decode(&counts); err != nil {
				t.Fatalf("agent died under %s: %v; stderr: %s", sig, err, stderr.String())
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("agent exited with %v under %s", err, sig)
			}
			sent := f.Sent()
			if len(sent) < signalCounterThreads+1 {
				t.Errorf("signalled %d threads, want every thread (at least %d)", len(sent), signalCounterThreads+1)
			}
			for tid, n := range counts {
				if sent[tid] < 20 {
					t.Errorf("thread %d was sent %d signals, want at least 20 in 400 ms at 100/s", tid, sent[tid])
				}
				// Rounds may land while the thread is between two selects;
				// most must interrupt one.
				if n < sent[tid]/2 {
					t.Errorf("thread %d: %d of %d signals interrupted select() with EINTR, want at least half", tid, n, sent[tid])
				}
			}
		})
	}
}
