package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/internal/topo"
)

// Leftover is a namespace or a cgroup a run left behind, with the
// processes in it.
type Leftover struct {
	// Namespace is the namespace's name under /run/netns, or "".
	Namespace string
	// Cgroup is a lab's cgroup name (in every hierarchy that has it), or "".
	Cgroup string
	Pids   []int
}

// String says what the leftover is in a few words.
func (l Leftover) String() string {
	if l.Cgroup != "" {
		return fmt.Sprintf("cgroup %s, %d processes", l.Cgroup, len(l.Pids))
	}
	return fmt.Sprintf("namespace %s, %d processes", l.Namespace, len(l.Pids))
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
		if pid, ok := topo.RunPID(name); ok && !all && pid != os.Getpid() && processAlive(pid) {
			continue
		}
		if pid, ok := topo.RunPID(name); ok && pid == os.Getpid() && !all {
			continue
		}
		pids, _ := processesIn(filepath.Join(nsMountDirectory, name))
		out = append(out, Leftover{Namespace: name, Pids: pids})
	}
	out = append(out, cgroupLeftovers(all)...)
	return out, nil
}

// cgroupLeftovers lists the labs' cgroups, as Leftovers lists namespaces.
func cgroupLeftovers(all bool) []Leftover {
	var out []Leftover
	for name, cg := range cgroupsWithPrefix(namespacePrefix) {
		pid, ok := topo.RunPID(name)
		if !all && ok && (pid == os.Getpid() || processAlive(pid)) {
			continue
		}
		out = append(out, Leftover{Cgroup: name, Pids: cg.procs()})
	}
	slices.SortFunc(out, func(a, b Leftover) int { return strings.Compare(a.Cgroup, b.Cgroup) })
	return out
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// nsID identifies a network namespace for as long as something holds it:
// the device and inode of its nsfs file, as /proc/PID/ns/net and a bind
// mount under /run/netns both show them. The kernel reuses a freed
// namespace's inode number at once, so an nsID is only trusted while its
// holder holds the namespace (a handle, a name): never keep one alone.
type nsID struct{ dev, ino uint64 }

// namespaceAt returns the nsID of the namespace bound or linked at path.
func namespaceAt(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

// namespaceOfFd returns the nsID of the namespace an open handle refers to.
func namespaceOfFd(fd int) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nsID{}, err
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

// processesIn returns the pids of processes whose network namespace is the
// one bound at path.
func processesIn(path string) ([]int, error) {
	id, err := namespaceAt(path)
	if err != nil {
		return nil, err
	}
	return pidsInNamespaces(map[nsID]bool{id: true}), nil
}

// pidsInNamespaces scans /proc once and returns every process, other than
// this one, whose network namespace is in set. It finds a process however
// it got there: started by halfopen, forked by something halfopen started,
// in a session of its own, reparented to init. Zombies have no namespace
// left and are not listed.
func pidsInNamespaces(set map[nsID]bool) []int {
	if len(set) == 0 {
		return nil
	}
	f, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	self := os.Getpid()
	var pids []int
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		id, err := namespaceAt("/proc/" + name + "/ns/net")
		if err != nil {
			continue
		}
		if set[id] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killNamespaces SIGKILLs every process living in the namespaces of set,
// scanning again until a scan finds none (a process may fork between a scan
// and its kill), for at most within. It returns the pids still found when
// time ran out.
func killNamespaces(set map[nsID]bool, within time.Duration) ([]int, error) {
	deadline := time.Now().Add(within)
	for {
		pids := pidsInNamespaces(set)
		if len(pids) == 0 {
			return nil, nil
		}
		if time.Now().After(deadline) {
			return pids, fmt.Errorf("processes %v still live in the namespaces after %v of SIGKILLs", pids, within)
		}
		for _, pid := range pids {
			normalPriority(pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		// A killed process keeps its namespace until the kernel has torn
		// down its files and sockets: give it a moment before looking again.
		time.Sleep(2 * time.Millisecond)
	}
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

// Collect kills the processes of each leftover cgroup and namespace,
// however they got there, and deletes it.
func Collect(left []Leftover) error {
	var errs []error
	// Cgroups first: frozen, their processes cannot fork while killed.
	strays := cgroupsWithPrefix(namespacePrefix)
	for _, l := range left {
		if cg, ok := strays[l.Cgroup]; ok && l.Cgroup != "" {
			errs = append(errs, cg.collect(3*time.Second))
		}
	}
	for _, l := range left {
		if l.Namespace == "" {
			continue
		}
		path := filepath.Join(nsMountDirectory, l.Namespace)
		if id, err := namespaceAt(path); err == nil {
			if _, err := killNamespaces(map[nsID]bool{id: true}, 3*time.Second); err != nil {
				errs = append(errs, fmt.Errorf("namespace %s: %w", l.Namespace, err))
			}
		}
		if err := deleteNamespace(l.Namespace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
