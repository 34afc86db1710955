package harness

// # The reaper: a killed run leaves nothing
//
// A lab is namespaces, the processes living in them, and the links and
// nftables rules inside them. Processes that halfopen starts die with the
// orchestrator on their own (PR_SET_PDEATHSIG, tied to the thread that forked
// them, which dies with the process). Nothing else does: a namespace named
// under /run/netns is a bind mount that outlives every process, and a
// process that left its parent's session and process group (setsid, double
// fork: what a careless daemonising library does) has no death signal and
// no parent to miss. Links and rules live in the namespaces and go with them.
//
// So the first lab of a run starts a reaper: the same binary re-executed as
// the "reaper" agent, in the host's namespace, in a session of its own (a
// terminal's ^C or a CI runner killing the orchestrator's process group does
// not reach it), exempt from the OOM killer, with no death signal. Its
// standard input is one end of a Unix socket pair whose other end only the
// orchestrator holds (O_CLOEXEC: no other child inherits it):
//
//	orchestrator ──"watch" + the namespace's fd (SCM_RIGHTS)──▶ reaper   as each namespace is born
//	             ──"forget"────────────────────────────────▶           once nothing lives in it
//	      ✝ SIGKILL, OOM, CI timeout:
//	the kernel closes the orchestrator's end ──▶ EOF ──▶ sweep
//
// However the orchestrator ends, the kernel closes its end of the socket
// and the reaper reads EOF at once. It then sweeps the run: every namespace
// named with the run's prefix "ho-<run>-" and every namespace it holds (a
// crashed host's namespace has lost its name but may still hold an escaped
// process); it SIGKILLs every process whose /proc/PID/ns/net is one of
// them, scanning again until a scan finds none, then unmounts and removes
// the names and closes what it holds. Before that it kills and removes the
// run's cgroups ("ho-<run>-<lab>" in each hierarchy, cgroup.go): frozen,
// or killed with cgroup.kill, so a fork bomb cannot outrun the sweep. The namespaces, their links and their
// rules vanish with the last process, name and handle. A run that ends
// normally closes the socket after its own teardown, so the sweep finds
// nothing and the reaper exits in silence; after a kill it says on standard
// error what it removed.
//
// The reaper holds an fd of every namespace it watches, not only its
// inode number: the kernel reuses a freed namespace's inode number at once
// (with other runs on the machine, within milliseconds), so a number alone
// could lead a sweep into another run's namespace. A held namespace cannot
// be freed, so its number stays its own. Only the run's own prefix and
// namespaces are ever touched: two runs at once each have their own reaper
// and never see each other's labs. The reaper ignores SIGINT, SIGTERM and
// SIGHUP: only the end of the orchestrator starts a sweep. `halfopen gc`
// remains for a machine that crashed (the reaper dies with it) and for a
// reaper killed by hand.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	reaperMode   = "reaper"
	envReaperRun = "HALFOPEN_REAPER_RUN" // the run the reaper sweeps when its socket ends
	// reaperSweepTime bounds how long a sweep keeps killing.
	reaperSweepTime = 10 * time.Second
)

func init() {
	RegisterAgent(reaperMode, reaperMain)
}

// reaper is the orchestrator's end of a run's reaper.
type reaper struct {
	mu   sync.Mutex
	sock int // the socket pair's only orchestrator end; -1 once closed
	pid  int
}

// startReaper starts the reaper of run runID and waits until it is ready to
// sweep. It fails when the binary does not dispatch agent modes
// (MaybeRunAgent) or the reaper does not answer within 10 s.
func startReaper(runID string) (*reaper, error) {
	if mode := os.Getenv(envAgent); mode != "" {
		// A binary that does not dispatch agent modes ran its own main as
		// an agent: refusing here keeps it from starting reapers of its
		// own, one level down each time.
		return nil, fmt.Errorf("start the reaper: this process was started as the %q agent but runs a lab; call harness.MaybeRunAgent first thing in main and TestMain", mode)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary to start its reaper: %w", err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reaper socket: %w", err)
	}
	theirs := os.NewFile(uintptr(pair[1]), "reaper-socket")
	sr, sw, err := os.Pipe()
	if err != nil {
		unix.Close(pair[0])
		theirs.Close()
		return nil, fmt.Errorf("reaper status pipe: %w", err)
	}
	cmd := exec.Command(exe)
	// No environment of the orchestrator's: the reaper needs none, and a
	// secret in it would show in /proc/PID/environ of one more process.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", envAgent + "=" + reaperMode,
		envReaperRun + "=" + runID}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = theirs, sw, os.Stderr
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Its files are the orchestrator's own (no copying goroutine), so Wait
	// cannot block on them; the bound is there all the same.
	cmd.WaitDelay = outputGrace
	err = cmd.Start()
	theirs.Close()
	sw.Close()
	if err != nil {
		unix.Close(pair[0])
		sr.Close()
		return nil, fmt.Errorf("start the reaper: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(sr).ReadString('\n')
		switch {
		case line == "ready\n":
			ready <- nil
		case err != nil:
			ready <- fmt.Errorf("it ended before saying it was ready (%v); does this binary call harness.MaybeRunAgent first thing?", err)
		default:
			ready <- fmt.Errorf("it said %.120q instead of ready", line)
		}
	}()
	select {
	case err = <-ready:
	case <-time.After(10 * time.Second):
		err = errors.New("it did not say it was ready within 10 s")
	}
	sr.Close()
	if err != nil {
		_ = cmd.Process.Kill()
		unix.Close(pair[0])
		return nil, fmt.Errorf("start the reaper: %w", err)
	}
	return &reaper{sock: pair[0], pid: cmd.Process.Pid}, nil
}

// watch hands the reaper a namespace: its identity and a duplicate of the
// handle ns, which the reaper keeps until told to forget it.
func (r *reaper) watch(id nsID, ns int) error {
	return r.send(fmt.Sprintf("watch %d %d", id.dev, id.ino), unix.UnixRights(ns))
}

// forget tells the reaper to let go of a namespace.
func (r *reaper) forget(id nsID) error {
	return r.send(fmt.Sprintf("forget %d %d", id.dev, id.ino), nil)
}

// send writes one message; the reaper reads all the time, so it never
// blocks for long.
func (r *reaper) send(msg string, oob []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sock < 0 {
		return errors.New("the run's reaper is closed")
	}
	for {
		err := unix.Sendmsg(r.sock, []byte(msg), oob, nil, unix.MSG_NOSIGNAL)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("the run's reaper (pid %d) is gone (%w): a killed run could leave its labs behind", r.pid, err)
		}
		return nil
	}
}

// close ends the socket: the reaper sweeps (finding nothing after a clean
// teardown) and exits.
func (r *reaper) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sock >= 0 {
		unix.Close(r.sock)
		r.sock = -1
	}
}

// reaperMain is the reaper agent: it holds the run's namespaces as its
// standard input hands them over, until the input ends; then it sweeps.
func reaperMain() error {
	runID := os.Getenv(envReaperRun)
	if runID == "" || strings.ContainsAny(runID, "/-") {
		return fmt.Errorf("reaper: %s=%q is not a run id", envReaperRun, runID)
	}
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0)
	fmt.Println("ready")
	// Standard output was only for the handshake; its reader is gone.
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		_ = unix.Dup2(int(null.Fd()), 1)
		null.Close()
	}
	held := map[nsID]int{}
	buf := make([]byte, 128)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(0, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || (n == 0 && oobn == 0) {
			// The orchestrator is gone, or done with the run.
			break
		}
		var fds []int
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if rights, err := unix.ParseUnixRights(&m); err == nil {
					fds = append(fds, rights...)
				}
			}
		}
		var verb string
		var id nsID
		_, perr := fmt.Sscanf(string(buf[:n]), "%s %d %d", &verb, &id.dev, &id.ino)
		switch {
		case perr == nil && verb == "watch" && len(fds) > 0:
			if old, ok := held[id]; ok {
				unix.Close(old)
			}
			held[id] = fds[0]
			fds = fds[1:]
		case perr == nil && verb == "forget":
			if fd, ok := held[id]; ok {
				unix.Close(fd)
				delete(held, id)
			}
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	watched := make(map[nsID]bool, len(held))
	for id := range held {
		watched[id] = true
	}
	names, pids, err := sweepRun(namespacePrefix+runID+"-", watched, reaperSweepTime)
	for _, fd := range held {
		unix.Close(fd)
	}
	if names > 0 || pids > 0 {
		fmt.Fprintf(os.Stderr, "halfopen reaper: run %s ended without tearing down its labs; removed %d namespaces and killed %d processes\n", runID, names, pids)
	}
	if err != nil {
		return fmt.Errorf("reaper of run %s: %w", runID, err)
	}
	return nil
}

// sweepRun kills every process living in a namespace named with prefix or
// listed in watched, then deletes the names. It returns how many names it
// removed and how many processes it killed.
func sweepRun(prefix string, watched map[nsID]bool, within time.Duration) (names, killed int, err error) {
	deadline := time.Now().Add(within)
	seen := map[int]bool{}
	var errs []error
	// The run's cgroups first: frozen, their processes cannot fork while
	// they are killed, however many a fork bomb made.
	for _, cg := range cgroupsWithPrefix(prefix) {
		for _, pid := range cg.procs() {
			seen[pid] = true
		}
		if err := cg.collect(within); err != nil {
			errs = append(errs, err)
		}
	}
	for {
		set := make(map[nsID]bool, len(watched))
		for id := range watched {
			set[id] = true
		}
		for _, name := range namesWithPrefix(prefix) {
			if id, err := namespaceAt(nsMountDirectory + "/" + name); err == nil {
				set[id] = true
			}
		}
		pids := pidsInNamespaces(set)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("processes %v still live in the run's namespaces after %v of SIGKILLs", pids, within))
			break
		}
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				seen[pid] = true
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	for _, name := range namesWithPrefix(prefix) {
		if err := deleteNamespace(name); err != nil {
			errs = append(errs, err)
			continue
		}
		names++
	}
	return names, len(seen), errors.Join(errs...)
}

// namesWithPrefix lists the namespace names under /run/netns that start
// with prefix.
func namesWithPrefix(prefix string) []string {
	entries, err := os.ReadDir(nsMountDirectory)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// checkReaper starts and ends the reaper of a run that has no lab: the
// doctor's proof that a killed run of this binary would be swept. It is not
// part of Preflight, which every run calls, since it starts a process.
func checkReaper() Check {
	if os.Geteuid() != 0 {
		return Check{Name: "reaper", Detail: "not checked without root"}
	}
	r, err := startReaper(fmt.Sprintf("doctor%d", os.Getpid()))
	if err != nil {
		return Check{Name: "reaper", Detail: fmt.Sprintf("this binary cannot start the reaper that sweeps a killed run's labs (%v); a killed run would leave its labs until `halfopen gc`", err)}
	}
	r.close()
	return Check{Name: "reaper", OK: true, Detail: "each run starts a reaper that removes its labs within seconds if the run is killed"}
}
