package suites

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// An interrupted suite stops measuring at once, keeps what it measured,
// and leaves no namespace and no process behind. Before this test, the
// interrupted spec failed but the measuring went on in the background
// until its AfterSuite's own timeout.
func TestInterruptedSuiteStopsMeasuring(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a suite")
	}
	if err := harness.Preflight(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "detection.test")
	build := exec.Command("go", "test", "-c", "-o", bin, "./detection")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the detection suite: %v\n%s", err, out)
	}
	// 2 cells of 40 samples of about 3.5 s each: minutes of measuring.
	cmd := exec.Command(bin, "-ginkgo.label-filter=keepalive-tuned && blackhole")
	cmd.Env = append(os.Environ(), "HALFOPEN_REPORT_DIR="+dir, "HALFOPEN_SAMPLES=40")
	cmd.Dir = "detection"
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	path := filepath.Join(dir, "suite-detection.json")
	deadline := time.Now().Add(90 * time.Second)
	for measured(path) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no sample measured within 90 s:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	interrupted := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the suite still ran 30 s after SIGINT:\n%s", out.String())
	}
	t.Logf("exited %v after SIGINT", time.Since(interrupted).Round(time.Millisecond))
	if st := cmd.ProcessState.Sys().(syscall.WaitStatus); st.ExitStatus() == 0 {
		t.Error("an interrupted suite exited 0")
	}
	if n := measured(path); n == 0 || n >= 80 {
		t.Errorf("the report keeps %d samples: want those measured before the interrupt, not 0 nor all 80", n)
	}
	prefix := "ho-" + strconv.Itoa(cmd.Process.Pid) + "p"
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
	if pids := harness.RunProcesses(cmd.Process.Pid); len(pids) > 0 {
		t.Errorf("processes %v left behind", pids)
	}
}

// measured counts the samples in a suite's report, 0 before it is readable.
func measured(path string) int {
	r, err := report.Read(path)
	if err != nil {
		return 0
	}
	return r.Throughput().Samples
}
