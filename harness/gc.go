package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Leftover is a namespace a run left behind, with the processes in it.
type Leftover struct {
	Namespace string
	Pids      []int
}

// Leftovers lists the lab namespaces under /run/netns. With all false it
// keeps only those whose run's process is gone; with all true it lists
// every "ho-" namespace.
func Leftovers(all bool) ([]Leftover, error) {
	entries, err := os.ReadDir(nsMountDirectory)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", nsMountDirectory, err)
	}
	var out []Leftover
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, namespacePrefix) {
			continue
		}
		if pid, ok := runPID(name); ok && !all && pid != os.Getpid() && processAlive(pid) {
			continue
		}
		if pid, ok := runPID(name); ok && pid == os.Getpid() && !all {
			continue
		}
		pids, _ := processesIn(filepath.Join(nsMountDirectory, name))
		out = append(out, Leftover{Namespace: name, Pids: pids})
	}
	return out, nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processesIn returns the pids of processes whose network namespace is the
// one bound at path.
func processesIn(path string) ([]int, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, err
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		var pst unix.Stat_t
		if unix.Stat(filepath.Join("/proc", p.Name(), "ns/net"), &pst) != nil {
			continue
		}
		if pst.Ino == st.Ino && pst.Dev == st.Dev {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// RunProcesses returns the pids of live processes started by runs of the
// orchestrator with pid owner (their environment holds HALFOPEN_RUN=<owner>p...).
func RunProcesses(owner int) []int {
	tag := []byte(envRun + "=" + strconv.Itoa(owner) + "p")
	procs, _ := os.ReadDir("/proc")
	var out []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.HasPrefix(kv, tag) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// Collect kills the processes of each leftover namespace and deletes it.
func Collect(left []Leftover) error {
	var errs []error
	for _, l := range left {
		for _, pid := range l.Pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			pids, _ := processesIn(filepath.Join(nsMountDirectory, l.Namespace))
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := deleteNamespace(l.Namespace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
