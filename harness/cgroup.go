package harness

// # A cgroup per lab
//
// A lab's namespaces catch every process that lives in them, however it
// detached (setsid, double fork, a new process group, closed pipes, a new
// name): the reaper and teardown kill by /proc/PID/ns/net. A cgroup adds two
// things a namespace cannot give. Membership is inherited at fork and an
// unprivileged program cannot leave it, so the lab's processes are listed
// by the kernel instead of found by a scan of /proc; and a pids limit
// bounds how many tasks (processes and threads) a lab may hold, so a fork
// bomb in a foreign program fails its forks instead of filling the
// machine's pid space.
//
// Which cgroup a lab gets depends on what the machine mounts
// (HALFOPEN_CGROUP=auto, the default):
//
//   - cgroup v2 with the pids controller enabled at its root: the lab's
//     directory <v2>/ho-<run>-<lab> with pids.max; processes are born in it
//     (clone3 with CLONE_INTO_CGROUP), and teardown writes cgroup.kill.
//   - otherwise cgroup v1's freezer and pids hierarchies, whichever are
//     mounted: <freezer>/ho-<run>-<lab> and <pids>/ho-<run>-<lab>. A process
//     is born in them because the thread that forks it joins them (v1 moves
//     single threads) for the length of the fork and leaves them after.
//     Teardown freezes the lab (nothing forks while it is killed), SIGKILLs
//     everything listed, and thaws it.
//   - cgroup v2 without pids (no limit, but cgroup.kill) when no v1
//     hierarchy is there.
//   - none, when none is usable (not root, a user namespace, no cgroupfs):
//     labs are reaped by namespace only, fork bombs are unbounded, and the
//     run says so once on standard error.
//
// HALFOPEN_CGROUP=v2, v1 or none forces one. The directories are named
// after the lab, so the reaper of a killed run and `halfopen gc` find them
// by the run's prefix as they find its namespaces.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/internal/labenv"
)

// cgroupSetup is how this machine gives a lab a cgroup.
type cgroupSetup struct {
	v2      string // the v2 hierarchy's mount point, when labs use it
	v2Pids  bool   // the v2 root enables pids for its children
	pids    string // the v1 pids hierarchy's mount point, when used
	freezer string // the v1 freezer hierarchy's mount point, when used
	// note says in one sentence what labs use, or why nothing.
	note string
	// quiet is set when the user chose none: nothing to report.
	quiet bool
}

// used reports whether labs get any cgroup.
func (s cgroupSetup) used() bool { return s.v2 != "" || s.pids != "" || s.freezer != "" }

// cgroupMounts are the cgroup hierarchies this process sees: the v2 mount
// point ("" if none) and each v1 controller's mount point.
type cgroupMounts struct {
	v2 string
	v1 map[string]string
}

// readCgroupMounts reads /proc/self/mountinfo.
func readCgroupMounts() cgroupMounts {
	m := cgroupMounts{v1: map[string]string{}}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || pf[3] != "/" {
			continue // a hierarchy mounted from below its root is a container's view
		}
		switch qf[0] {
		case "cgroup2":
			if m.v2 == "" {
				m.v2 = pf[4]
			}
		case "cgroup":
			for _, opt := range strings.Split(qf[2], ",") {
				if _, dup := m.v1[opt]; !dup {
					m.v1[opt] = pf[4]
				}
			}
		}
	}
	return m
}

// detectCgroups decides, once per process, how labs get a cgroup.
var detectCgroups = sync.OnceValue(func() cgroupSetup {
	want := os.Getenv(labenv.EnvCgroup)
	if want == "" {
		want = "auto"
	}
	switch want {
	case "auto", "v1", "v2":
	case "none":
		return cgroupSetup{note: "labs have no cgroup (" + labenv.EnvCgroup + "=none): they are reaped by namespace only, and nothing bounds a fork bomb", quiet: true}
	default:
		return cgroupSetup{note: fmt.Sprintf("labs have no cgroup: %s=%q is not auto, v2, v1 or none", labenv.EnvCgroup, want)}
	}
	none := func(why string) cgroupSetup {
		return cgroupSetup{note: "labs have no cgroup (" + why + "): they are reaped by namespace only, and nothing bounds a fork bomb"}
	}
	if os.Geteuid() != 0 {
		return none("not root")
	}
	m := readCgroupMounts()
	v2ok := m.v2 != "" && writableDir(m.v2)
	v2pids := false
	if v2ok {
		b, _ := os.ReadFile(filepath.Join(m.v2, "cgroup.subtree_control"))
		v2pids = slices.Contains(strings.Fields(string(b)), "pids")
	}
	v1 := cgroupSetup{}
	if p := m.v1["pids"]; p != "" && writableDir(p) {
		v1.pids = p
	}
	if p := m.v1["freezer"]; p != "" && writableDir(p) {
		v1.freezer = p
	}
	v1ok := v1.pids != "" || v1.freezer != ""
	useV2 := func() cgroupSetup {
		s := cgroupSetup{v2: m.v2, v2Pids: v2pids}
		if v2pids {
			s.note = fmt.Sprintf("each lab is a cgroup v2 (%s/ho-<run>-<lab>): born in it, killed with cgroup.kill, at most %d tasks", m.v2, labenv.LabPids)
		} else {
			s.note = fmt.Sprintf("each lab is a cgroup v2 (%s/ho-<run>-<lab>): born in it, killed with cgroup.kill, but with no pids limit (the v2 root does not enable pids), so nothing bounds a fork bomb", m.v2)
		}
		return s
	}
	useV1 := func() cgroupSetup {
		s := v1
		var parts []string
		if s.freezer != "" {
			parts = append(parts, "freezer ("+s.freezer+", frozen while it is killed)")
		}
		if s.pids != "" {
			parts = append(parts, fmt.Sprintf("pids (%s, at most %d tasks)", s.pids, labenv.LabPids))
		}
		s.note = "each lab is a cgroup v1 ho-<run>-<lab> in " + strings.Join(parts, " and ")
		if s.pids == "" {
			s.note += "; no pids hierarchy is mounted, so nothing bounds a fork bomb"
		}
		if v2ok && !v2pids {
			s.note += "; the v2 hierarchy at " + m.v2 + " has no pids controller, so v1 is used"
		}
		return s
	}
	switch {
	case want == "v2" && v2ok, want == "auto" && v2ok && (v2pids || !v1ok):
		return useV2()
	case (want == "v1" || want == "auto") && v1ok:
		return useV1()
	case want == "v2":
		return none("no writable cgroup v2 hierarchy is mounted")
	case want == "v1":
		return none("no writable cgroup v1 pids or freezer hierarchy is mounted")
	}
	return none("no writable cgroup v2, v1 pids or v1 freezer hierarchy is mounted")
})

// writableDir reports whether this process may make directories in dir.
func writableDir(dir string) bool {
	return unix.Access(dir, unix.W_OK|unix.X_OK) == nil
}

// checkCgroups says how this machine gives each lab a cgroup: the doctor's
// line. A machine without one still runs labs, so it is never a failure.
func checkCgroups() Check {
	s := detectCgroups()
	return Check{Name: "cgroup", OK: true, Detail: s.note}
}

// reportNoCgroup says once per process, on standard error, that labs run
// without a cgroup, unless the user chose so.
var reportNoCgroup = sync.OnceFunc(func() {
	if s := detectCgroups(); !s.quiet {
		fmt.Fprintln(os.Stderr, "halfopen: "+s.note)
	}
})

// reportCgroupFailure says once per process, on standard error, why a lab
// could not have the cgroup this machine offers.
var reportCgroupFailure = func() func(error) {
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			fmt.Fprintf(os.Stderr, "halfopen: a lab runs without a cgroup (%v): it is reaped by namespace only\n", err)
		})
	}
}()

// labCgroup is a lab's cgroup, in every hierarchy that labs use.
type labCgroup struct {
	name string
	// dirs is every directory made, v2 first.
	dirs []string
	// v2 is the v2 directory, open for CLONE_INTO_CGROUP; nil without v2.
	v2 *os.File
	// v1 are the v1 directories a forking thread joins.
	v1      []v1Dir
	freezer string // the v1 freezer directory, "" without one

	// mu is held for reading while a thread of this process is in a v1
	// directory (a fork), and for writing while the lab is frozen and
	// killed: the orchestrator's own thread is never frozen or killed.
	mu sync.RWMutex
}

// v1Dir is a lab's directory in one v1 hierarchy.
type v1Dir struct {
	dir, root, controller string
}

// newLabCgroup makes the cgroup of the lab named name (its namespaces'
// prefix, "ho-<run>-<lab>"), or returns nil with the reason when this
// machine gives labs none.
func newLabCgroup(name string) (*labCgroup, error) {
	s := detectCgroups()
	if !s.used() {
		return nil, errors.New(s.note)
	}
	c := &labCgroup{name: name}
	mk := func(root string) (string, error) {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", fmt.Errorf("cgroup %s: %w", dir, err)
		}
		c.dirs = append(c.dirs, dir)
		return dir, nil
	}
	fail := func(err error) (*labCgroup, error) {
		return nil, errors.Join(err, c.remove())
	}
	limit := []byte(strconv.Itoa(labenv.LabPids))
	if s.v2 != "" {
		dir, err := mk(s.v2)
		if err != nil {
			return fail(err)
		}
		if s.v2Pids {
			if err := cgWrite(filepath.Join(dir, "pids.max"), limit); err != nil {
				return fail(err)
			}
		}
		if c.v2, err = os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return fail(fmt.Errorf("cgroup %s: %w", dir, err))
		}
	}
	if s.freezer != "" {
		dir, err := mk(s.freezer)
		if err != nil {
			return fail(err)
		}
		c.v1 = append(c.v1, v1Dir{dir: dir, root: s.freezer, controller: "freezer"})
		c.freezer = dir
	}
	if s.pids != "" {
		dir, err := mk(s.pids)
		if err != nil {
			return fail(err)
		}
		if err := cgWrite(filepath.Join(dir, "pids.max"), limit); err != nil {
			return fail(err)
		}
		c.v1 = append(c.v1, v1Dir{dir: dir, root: s.pids, controller: "pids"})
	}
	return c, nil
}

// prepare makes cmd's process born in the lab's v2 cgroup.
func (c *labCgroup) prepare(attr *syscall.SysProcAttr) {
	if c == nil || c.v2 == nil {
		return
	}
	attr.UseCgroupFD = true
	attr.CgroupFD = int(c.v2.Fd())
}

// fork runs start, which forks, on the calling thread (locked to its
// goroutine) while that thread is in the lab's v1 cgroups, so that the
// child is born there. The thread goes back to its own cgroups after; a
// thread that cannot stays locked, and dies with its goroutine.
func (c *labCgroup) fork(start func() error) error {
	if c == nil || len(c.v1) == 0 {
		return start()
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	tid := []byte(strconv.Itoa(unix.Gettid()))
	home, err := threadCgroups(c.v1)
	if err != nil {
		return err
	}
	back := func() error {
		var errs []error
		for _, dir := range home {
			if err := cgWrite(filepath.Join(dir, "tasks"), tid); err != nil {
				errs = append(errs, fmt.Errorf("move this thread back: %w", err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			// The caller unlocks once; this lock keeps the thread out of
			// the scheduler's pool for good.
			runtime.LockOSThread()
			return err
		}
		return nil
	}
	for _, d := range c.v1 {
		if err := cgWrite(filepath.Join(d.dir, "tasks"), tid); err != nil {
			return errors.Join(fmt.Errorf("move this thread into the lab's cgroup: %w", err), back())
		}
	}
	err = start()
	return errors.Join(err, back())
}

// threadCgroups returns, for each v1 lab directory, the directory of the
// same hierarchy that the calling thread is in now.
func threadCgroups(dirs []v1Dir) ([]string, error) {
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read this thread's cgroups: %w", err)
	}
	byController := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-id:controller,list:/path
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, ctl := range strings.Split(f[1], ",") {
			byController[ctl] = f[2]
		}
	}
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		p, ok := byController[d.controller]
		if !ok {
			return nil, fmt.Errorf("this thread is in no %s cgroup", d.controller)
		}
		out = append(out, filepath.Join(d.root, p))
	}
	return out, nil
}

// cgWrite writes one value to a cgroup file, which must exist.
func cgWrite(path string, value []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	_, err = f.Write(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cgroup: write %s to %s: %w", value, path, err)
	}
	return nil
}

// kill SIGKILLs every process in the lab's cgroup and waits, for at most
// within, until none is left: with cgroup.kill in v2, frozen in v1 (a
// process cannot fork between the listing and its kill), else by listing
// and killing until a listing is empty.
func (c *labCgroup) kill(within time.Duration) error {
	if c == nil {
		return nil
	}
	return killCgroup(c.dirs, c.freezer, &c.mu, within)
}

// killCgroup kills what lives in dirs (the directories of one lab's cgroup
// across hierarchies; freezer is the v1 freezer's, or "").
func killCgroup(dirs []string, freezer string, mu *sync.RWMutex, within time.Duration) error {
	// A directory already removed (by the run's reaper, by gc) holds nothing.
	dirs = slices.DeleteFunc(slices.Clone(dirs), func(dir string) bool {
		_, err := os.Stat(dir)
		return errors.Is(err, os.ErrNotExist)
	})
	if !slices.Contains(dirs, freezer) {
		freezer = ""
	}
	if len(dirs) == 0 {
		return nil
	}
	deadline := time.Now().Add(within)
	// Every process leaves real-time priority before it dies: a lab's
	// agents exit at once, and dozens exiting at SCHED_FIFO (as a batch of
	// labs torn down together does) keep both CPUs from every other task,
	// softirqs' ksoftirqd included, for up to the kernel's RT runtime (the
	// matrix's heart-beats saw no packet for a second in every lab).
	for _, dir := range dirs {
		for _, pid := range cgroupProcs(dir) {
			if pid != os.Getpid() {
				normalPriority(pid)
			}
		}
	}
	killed := false
	for _, dir := range dirs {
		if err := cgWrite(filepath.Join(dir, "cgroup.kill"), []byte("1")); err == nil {
			killed = true
			break
		}
	}
	if !killed && freezer != "" {
		if mu != nil {
			mu.Lock()
		}
		err := freezeKill(freezer, deadline)
		if mu != nil {
			mu.Unlock()
		}
		if err != nil {
			return err
		}
	}
	self := os.Getpid()
	for {
		var left []int
		for _, dir := range dirs {
			for _, pid := range cgroupProcs(dir) {
				if pid != self && !slices.Contains(left, pid) {
					left = append(left, pid)
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still live in cgroup %s after %v of SIGKILLs", left, filepath.Base(dirs[0]), within)
		}
		for _, pid := range left {
			normalPriority(pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// freezeKill freezes a v1 freezer cgroup, SIGKILLs everything in it, and
// thaws it, so that the kills are delivered.
func freezeKill(dir string, deadline time.Time) error {
	state := filepath.Join(dir, "freezer.state")
	if err := cgWrite(state, []byte("FROZEN")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Removed since it was listed (a run's Close racing its
			// reaper): nothing is left in it to kill.
			return nil
		}
		return err
	}
	thaw := func() error { return cgWrite(state, []byte("THAWED")) }
	for {
		b, err := os.ReadFile(state)
		if err != nil {
			return errors.Join(fmt.Errorf("read cgroup %s: %w", dir, err), thaw())
		}
		if strings.TrimSpace(string(b)) == "FROZEN" || time.Now().After(deadline) {
			break // a task stuck freezing is killed all the same
		}
		time.Sleep(time.Millisecond)
	}
	self := os.Getpid()
	for _, pid := range cgroupProcs(dir) {
		if pid != self {
			// Frozen, it cannot fork a thread the pass would miss.
			normalPriority(pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return thaw()
}

// cgroupProcs lists the processes in a cgroup directory.
func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// remove closes the v2 handle and removes the lab's directories, once the
// processes in them are gone (kill).
func (c *labCgroup) remove() error {
	if c == nil {
		return nil
	}
	var errs []error
	if c.v2 != nil {
		errs = append(errs, c.v2.Close())
		c.v2 = nil
	}
	for _, dir := range c.dirs {
		errs = append(errs, removeCgroupDir(dir))
	}
	c.dirs = nil
	return errors.Join(errs...)
}

// removeCgroupDir removes a cgroup directory; the kernel may still be
// releasing the last killed task, so it tries for up to a second.
func removeCgroupDir(dir string) error {
	deadline := time.Now().Add(time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// cgroupsWithPrefix lists, in every cgroup hierarchy mounted, the lab
// directories at its root whose name starts with prefix, each lab's
// directories together (v2 first), with its v1 freezer directory if any.
func cgroupsWithPrefix(prefix string) map[string]*strayCgroup {
	m := readCgroupMounts()
	var roots []string
	if m.v2 != "" {
		roots = append(roots, m.v2)
	}
	var v1 []string
	for _, mnt := range m.v1 {
		if !slices.Contains(v1, mnt) {
			v1 = append(v1, mnt)
		}
	}
	slices.Sort(v1)
	roots = append(roots, v1...)
	freezer := m.v1["freezer"]
	out := map[string]*strayCgroup{}
	for _, root := range roots {
		entries, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			s := out[e.Name()]
			if s == nil {
				s = &strayCgroup{name: e.Name()}
				out[e.Name()] = s
			}
			dir := filepath.Join(root, e.Name())
			s.dirs = append(s.dirs, dir)
			if root == freezer {
				s.freezer = dir
			}
		}
	}
	return out
}

// strayCgroup is a lab's cgroup found by name, after its run.
type strayCgroup struct {
	name    string
	dirs    []string
	freezer string
}

// collect kills what lives in the cgroup and removes its directories.
func (s *strayCgroup) collect(within time.Duration) error {
	err := killCgroup(s.dirs, s.freezer, nil, within)
	for _, dir := range s.dirs {
		err = errors.Join(err, removeCgroupDir(dir))
	}
	return err
}

// procs lists the processes in the cgroup.
func (s *strayCgroup) procs() []int {
	var out []int
	for _, dir := range s.dirs {
		for _, pid := range cgroupProcs(dir) {
			if !slices.Contains(out, pid) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// # The run's frozen cgroup
//
// In cgroup v1, the first cgroup to freeze turns the kernel's freezer_active
// static key on and the last to thaw turns it off (kernel/cgroup/
// legacy_freezer.c: freezer_apply_state, freezer_css_offline), and each turn
// rewrites the kernel's code at every freezing() site: text_poke with
// interrupts off, then IPIs to every CPU. A lab's teardown freezes it alone,
// so every lab cost two such rewrites. On machine C (a 2-core PVM guest,
// where page-table switches trap) they took 15 % of both CPUs while labs
// were built and torn down back to back, and the latency probe's p99 rose
// from 0.5 ms to 2.6 ms (BenchmarkProbeBaseline's bare-labs loads, with and
// without it, measure it; TestRunKeepsAnEmptyCgroupFrozen tests the hold).
// An empty cgroup that stays frozen for the run keeps the key on, so a
// lab's freeze and thaw only count: the kernel's code is rewritten once
// when the run's first lab is made and once when the run ends.

// frozenCgroupSuffix names the run's empty frozen cgroup,
// "ho-<run>-frozen": the run's prefix, so a killed run's reaper and
// `halfopen gc` remove it with its labs' cgroups.
const frozenCgroupSuffix = "-frozen"

// frozenCgroup is the run's empty v1 freezer cgroup, frozen while it exists.
type frozenCgroup struct{ dir string }

// freezeEmptyCgroup makes and freezes the run's empty cgroup in the v1
// freezer hierarchy; nil, nil where labs are not killed through a freezer.
func freezeEmptyCgroup(runID string) (*frozenCgroup, error) {
	s := detectCgroups()
	if s.freezer == "" || s.v2 != "" {
		return nil, nil
	}
	dir := filepath.Join(s.freezer, namespacePrefix+runID+frozenCgroupSuffix)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("the run's frozen cgroup: %w", err)
	}
	if err := cgWrite(filepath.Join(dir, "freezer.state"), []byte("FROZEN")); err != nil {
		return nil, errors.Join(fmt.Errorf("the run's frozen cgroup: %w", err), removeCgroupDir(dir))
	}
	return &frozenCgroup{dir: dir}, nil
}

// remove thaws and removes the run's frozen cgroup.
func (f *frozenCgroup) remove() error {
	if f == nil {
		return nil
	}
	return removeCgroupDir(f.dir)
}
