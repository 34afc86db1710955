package harness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/internal/labenv"
	"github.com/halfopen/halfopen/internal/topo"
)

// A process started in a lab, and the helper it daemonises, are in the
// lab's cgroup in every hierarchy labs use; the orchestrator's threads are
// all back in their own cgroups; Close kills both and removes the cgroup.
func TestLabCgroupHoldsWhatTheLabStarts(t *testing.T) {
	if err := Preflight(); err != nil {
		t.Skip(err)
	}
	if !detectCgroups().used() {
		t.Skip(detectCgroups().note)
	}
	run := NewRun()
	defer run.Close()
	lab, err := run.NewLab(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if lab.cg == nil {
		t.Fatal("the lab has no cgroup where the machine offers one")
	}
	dirs := slices.Clone(lab.cg.dirs)
	helper := escape(t, lab.Host(topo.Watcher))
	for _, dir := range dirs {
		if procs := cgroupProcs(dir); !slices.Contains(procs, helper) {
			t.Errorf("the daemonised helper %d is not in %s (it holds %v)", helper, dir, procs)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "pids.max")); err == nil && strings.TrimSpace(string(b)) != strconv.Itoa(labenv.LabPids) {
			t.Errorf("%s/pids.max is %q, want %d", dir, b, labenv.LabPids)
		}
	}
	// No thread of this process stayed in the lab's cgroup after a fork.
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/cgroup")
		if strings.Contains(string(b), lab.ID) {
			t.Errorf("thread %s of the orchestrator is still in the lab's cgroup: %s", task.Name(), b)
		}
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for alive(helper) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if alive(helper) {
		t.Errorf("the helper %d outlived its lab", helper)
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s outlived its lab", dir)
		}
	}
}

// Where labs are killed through a v1 freezer, the run keeps one empty
// cgroup frozen from its first lab to its end, so that a lab's freeze and
// thaw do not turn the kernel's freezer key on and off (cgroup.go); the
// lab's own teardown leaves it frozen, and Close removes it.
func TestRunKeepsAnEmptyCgroupFrozen(t *testing.T) {
	if err := Preflight(); err != nil {
		t.Skip(err)
	}
	s := detectCgroups()
	if s.freezer == "" || s.v2 != "" {
		t.Skip("labs are not killed through a v1 freezer here: " + s.note)
	}
	run := NewRun()
	dir := filepath.Join(s.freezer, namespacePrefix+run.ID+frozenCgroupSuffix)
	state := func() string {
		b, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
		if err != nil {
			return err.Error()
		}
		return strings.TrimSpace(string(b))
	}
	for i := range 2 {
		lab, err := run.NewLab(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		escape(t, lab.Host(topo.Watcher))
		if got := state(); got != "FROZEN" {
			t.Errorf("lab %d built: the run's cgroup %s is %q, want FROZEN", i+1, dir, got)
		}
		if err := lab.Close(); err != nil {
			t.Fatal(err)
		}
		if got := state(); got != "FROZEN" {
			t.Errorf("lab %d torn down (frozen, killed, thawed): the run's cgroup is %q, want FROZEN", i+1, got)
		}
		if procs := cgroupProcs(dir); len(procs) > 0 {
			t.Errorf("the run's frozen cgroup holds processes %v", procs)
		}
	}
	if err := run.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the run's frozen cgroup %s is still there after Close (%v)", dir, err)
	}
}

// A run's Close may remove a cgroup its reaper has just listed: the
// reaper's kill of it then finds nothing to freeze, which is no error
// (CI printed "open .../ho-<run>-frozen/freezer.state: no such file" when
// it was one).
func TestKillOfACgroupRemovedSinceListedIsNoError(t *testing.T) {
	s := detectCgroups()
	if s.freezer == "" {
		t.Skip("no v1 freezer here: " + s.note)
	}
	gone := filepath.Join(s.freezer, namespacePrefix+"removed-since-listed")
	if err := freezeKill(gone, time.Now().Add(time.Second)); err != nil {
		t.Errorf("killing a cgroup that is gone: %v", err)
	}
}
