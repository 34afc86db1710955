package harness

// # Without root: a user namespace of the run's own
//
// A lab needs CAP_NET_ADMIN and CAP_SYS_ADMIN, but only over the namespaces
// it makes. Where the kernel lets an ordinary user create a user namespace,
// EnterUserNamespace re-executes the binary (the same arguments, the same
// environment) inside a new user namespace, mount namespace and network
// namespace, with the caller's uid and gid mapped to 0:
//
//	you (uid 1000) ── waits, forwards SIGINT/SIGTERM/SIGHUP, exits with its status
//	   └─ the same binary, root of its own user namespace (PR_SET_PDEATHSIG: dies with you)
//	         ├─ its reaper, as with root (reaper.go)
//	         └─ the labs: namespaces, veth, nftables, captures, agents, servers
//
// The labs' namespaces are owned by that user namespace, so it holds every
// capability over them and none over the machine. Inside, /run is a tmpfs
// of the run's own in which every entry of the real /run is bind-mounted
// back except netns, which is empty: namespace names (/run/netns/ho-...)
// are written there and nowhere else, so neither other runs nor `ip netns`
// on the machine ever see them, and they vanish with the mount namespace
// once the run's last process is gone. The run's own network namespace has
// only loopback; returning a thread to it after a lab's setns needs no
// privilege over the machine's.
//
// Processes that root would start as another user (detector programs as
// nobody, a PostgreSQL server as postgres) cannot be given a uid the user
// namespace does not map; each runs instead in a user namespace nested in
// the run's, in which its uid is the only one, mapped to the run's root
// (that is, to the caller): it keeps its uid, owns what the run writes for
// it, and holds no capability over the lab.
//
// What stays root's: real-time priority beyond the user's RLIMIT_RTPRIO, the PM QoS
// request of /dev/cpu_dma_latency (cpuidle.go), the reaper's exemption from
// the OOM killer. A run without them records so in the report's
// environment (Privilege, and CPUIdle), next to the calibration error it
// measured, which is what they cost.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/report"
)

// envUserNamespace is set for the re-executed process: the uid outside.
// The re-executed process removes it at once, so nothing it starts sees it.
const envUserNamespace = "HALFOPEN_USERNS"

// userNamespace remembers what EnterUserNamespace found, for Preflight,
// Doctor and the report.
var userNamespace struct {
	sync.Mutex
	// refused is why the kernel gave this unprivileged process no user
	// namespace (nil when it was not asked).
	refused error
}

// EnterUserNamespace makes a lab possible for a process that is not root.
// Root, and a process already re-executed by it, return nil at once (the
// latter after making /run/netns its own). Otherwise it re-executes this
// binary inside a new user, mount and network namespace where the caller
// is root, waits for it and exits with its status: it does not return.
// Where the kernel refuses, it returns the refusal as one sentence
// wrapping ErrUnfit, which Preflight also reports from then on.
//
// Call it first thing, after the role and agent dispatch (MaybeRunAgent),
// from main or TestMain: everything before it runs twice.
func EnterUserNamespace() error {
	if outer := os.Getenv(envUserNamespace); outer != "" {
		os.Unsetenv(envUserNamespace)
		if err := ownUserNamespace(); err != nil {
			fmt.Fprintf(os.Stderr, "halfopen: %v\n", err)
			os.Exit(2)
		}
		return nil
	}
	if os.Geteuid() == 0 {
		return nil
	}
	code, err := reexecInUserNamespace()
	if err != nil {
		userNamespace.Lock()
		userNamespace.refused = err
		userNamespace.Unlock()
		return err
	}
	os.Exit(code)
	return nil
}

// userNamespaceFlags are the namespaces the re-executed process starts in.
const userNamespaceFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWNET

// reexecInUserNamespace runs this binary again, as root of a user
// namespace of its own, and returns its exit status.
func reexecInUserNamespace() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("%w: find this binary to run it in a user namespace: %v", ErrUnfit, err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envUserNamespace+"="+strconv.Itoa(os.Geteuid()))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = userNamespaceAttr()
	// The child's death signal is tied to the thread that forks it: this
	// goroutine keeps its thread until the process exits.
	runtime.LockOSThread()
	// Signals are forwarded once each: the child has a process group of
	// its own, so a terminal's ^C reaches it only through here.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		signal.Stop(sigs)
		return 0, refusal(err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	signal.Stop(sigs)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	if err != nil && cmd.ProcessState == nil {
		return 0, fmt.Errorf("%w: wait for the run in its user namespace: %v", ErrUnfit, err)
	}
	return cmd.ProcessState.ExitCode(), nil
}

// userNamespaceAttr starts a process as root of a new user namespace
// (the caller's uid and gid mapped to 0), with its own mounts and network,
// in a process group of its own, killed if the caller dies.
func userNamespaceAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:  userNamespaceFlags,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		// An unprivileged process may map its gid only once setgroups
		// is denied.
		GidMappingsEnableSetgroups: false,
		Setpgid:                    true,
		Pdeathsig:                  syscall.SIGKILL,
	}
}

// refusal turns the kernel's refusal of a user namespace into the one
// sentence a user needs: what to enable, or to run as root.
func refusal(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno
	}
	return fmt.Errorf("%w: the kernel refused this user (uid %d) a user namespace (%v); %s, or run as root", ErrUnfit, os.Geteuid(), err, userNamespaceKnob())
}

// userNamespaceKnob names the setting that keeps unprivileged user
// namespaces off on this machine, as far as /proc/sys shows it.
func userNamespaceKnob() string {
	read := func(p string) (string, bool) {
		b, err := os.ReadFile(p)
		return strings.TrimSpace(string(b)), err == nil
	}
	if v, ok := read("/proc/sys/kernel/unprivileged_userns_clone"); ok && v == "0" {
		return "enable them with sysctl kernel.unprivileged_userns_clone=1"
	}
	if v, ok := read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); ok && v == "1" {
		return "enable them with sysctl kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile that allows userns for this binary)"
	}
	if v, ok := read("/proc/sys/user/max_user_namespaces"); ok && v == "0" {
		return "enable them with sysctl user.max_user_namespaces=15000"
	}
	return "enable unprivileged user namespaces (CONFIG_USER_NS, user.max_user_namespaces above the namespaces in use)"
}

// ownUserNamespace prepares the re-executed process: private mounts, a
// /run whose netns is its own, loopback up in its own network namespace.
func ownUserNamespace() error {
	fail := func(what string, err error) error {
		return fmt.Errorf("%w: the user namespace this run made does not let it %s (%v); %s, or run as root", ErrUnfit, what, err, userNamespaceKnob())
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("make its mounts private", err)
	}
	if err := privateRun(); err != nil {
		return fail("give itself a /run/netns of its own", err)
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fail("bring up loopback in its network namespace", err)
	}
	return nil
}

// privateRun mounts a tmpfs on /run in which every entry of the real /run
// is bound back, except netns, which is made empty.
func privateRun() error {
	const dir = "/run"
	old, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(old)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	if err := unix.Mount("halfopen-run", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount a tmpfs on %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if dir+"/"+name == nsMountDirectory {
			continue
		}
		src := fmt.Sprintf("/proc/self/fd/%d/%s", old, name)
		dst := dir + "/" + name
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err == nil {
				err = os.Symlink(target, dst)
			}
			if err != nil {
				return fmt.Errorf("copy the link %s: %w", dst, err)
			}
			continue
		case e.IsDir():
			err = os.Mkdir(dst, 0o755)
		default:
			err = os.WriteFile(dst, nil, 0o644)
		}
		if err != nil {
			return fmt.Errorf("make %s: %w", dst, err)
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s back: %w", dst, err)
		}
	}
	if err := os.Mkdir(nsMountDirectory, 0o755); err != nil {
		return fmt.Errorf("make %s: %w", nsMountDirectory, err)
	}
	return nil
}

// outerUID returns the uid outside this process's user namespace that its
// root maps to, and whether the process runs in a user namespace other
// than the machine's.
func outerUID() (int, bool) {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return 0, false
	}
	return rootOfUIDMap(string(b))
}

// rootOfUIDMap reads a uid_map (user_namespaces(7)): the uid outside that
// uid 0 inside maps to, and whether the map is other than the machine's
// own identity map of every uid.
func rootOfUIDMap(text string) (int, bool) {
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "0" && f[2] == "4294967295" {
			return 0, false
		}
		if f[0] == "0" {
			uid, err := strconv.Atoi(f[1])
			return uid, err == nil
		}
	}
	return 0, true
}

// privilegeMode names how this process runs labs: "root", "user
// namespace (uid N)" for root of a user namespace (the caller's uid N
// outside), or "unprivileged (uid N)" for a process that cannot.
func privilegeMode() string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("unprivileged (uid %d)", os.Geteuid())
	}
	if uid, ok := outerUID(); ok {
		return fmt.Sprintf("user namespace (uid %d)", uid)
	}
	return "root"
}

// privilege is this process's report.Privilege, found once.
var privilege = sync.OnceValue(func() report.Privilege {
	p := report.Privilege{Mode: privilegeMode()}
	if note := realtimeNote(); note != "" {
		p.Degraded = append(p.Degraded, note)
	}
	if s := detectCgroups(); !s.used() && !s.quiet {
		p.Degraded = append(p.Degraded, s.note)
	}
	if _, ok := outerUID(); ok && os.Geteuid() == 0 {
		p.Degraded = append(p.Degraded, "the reaper is not exempt from the OOM killer: oom_score_adj -1000 needs CAP_SYS_RESOURCE outside the user namespace")
	}
	return p
})

// currentPrivilege returns what the report's environment says of the run's
// privilege: its mode, and one sentence for each thing root would have
// given that this run does without.
func currentPrivilege() *report.Privilege {
	p := privilege()
	p.Degraded = append([]string(nil), p.Degraded...)
	return &p
}

// realtimeNote tries realtimePolicy priority 1 on a thread of this process, as
// the agents get it while they measure, and says why the run goes without
// it, or "" when it has it.
func realtimeNote() string {
	if os.Getenv(envNoRealtime) == "1" {
		return "real-time priority is off (" + envNoRealtime + "=1): agents stamp instants at normal priority, at the cost the calibration error measures"
	}
	errc := make(chan error, 1)
	go func() {
		// A thread of its own, which goes back to exactly what it had
		// (its nice value too, which an unprivileged thread could not
		// lower again), or dies with this goroutine, still locked, rather
		// than serve other goroutines at real-time priority.
		runtime.LockOSThread()
		was, err := unix.SchedGetAttr(0, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: realtimePolicy, Priority: 1}, 0)
		errc <- err
		if err == nil && unix.SchedSetAttr(0, was, 0) != nil {
			return
		}
		runtime.UnlockOSThread()
	}()
	setErr := <-errc
	if setErr == nil {
		return ""
	}
	var lim unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_RTPRIO, &lim)
	return fmt.Sprintf("real-time priority is refused (SCHED_RR 1: %v; RLIMIT_RTPRIO is %d): agents stamp instants at normal priority, at the cost the calibration error measures", setErr, lim.Cur)
}

// inOwnUserNamespace says whether this process is root of a user namespace
// rather than of the machine.
func inOwnUserNamespace() bool {
	_, ok := outerUID()
	return ok && os.Geteuid() == 0
}

// asUserInUserNamespace adapts attr, which starts a process as another
// user (attr.Credential), to a user namespace that does not map that
// user's uid or gid, as a rootless run's maps only its root: the process
// gets a user namespace of its own, nested in the run's, whose only uid
// and gid are its own, mapped to the run's root. Where the user is mapped
// (root of the machine), attr stays as it is.
func asUserInUserNamespace(attr *syscall.SysProcAttr) {
	c := attr.Credential
	if c == nil || !unmapped(c) {
		return
	}
	attr.Cloneflags |= unix.CLONE_NEWUSER
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: int(c.Uid), HostID: 0, Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: int(c.Gid), HostID: 0, Size: 1}}
	attr.GidMappingsEnableSetgroups = false
	c.Groups = nil
	c.NoSetGroups = true
}

// unmapped says whether this process's user namespace lacks the uid or
// the gid of c.
func unmapped(c *syscall.Credential) bool {
	uids, err1 := os.ReadFile("/proc/self/uid_map")
	gids, err2 := os.ReadFile("/proc/self/gid_map")
	if err1 != nil || err2 != nil {
		return false
	}
	return !idMapped(string(uids), c.Uid) || !idMapped(string(gids), c.Gid)
}

// idMapped says whether a uid_map or gid_map (user_namespaces(7)) maps id,
// an id inside the namespace.
func idMapped(text string, id uint32) bool {
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		first, err1 := strconv.ParseUint(f[0], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 33)
		if err1 == nil && err2 == nil && uint64(id) >= first && uint64(id) < first+count {
			return true
		}
	}
	return false
}

// chownForUser is os.Chown of path to a user a process will run as; where
// that user is not mapped, the process runs as the run's root mapped
// (AsUserInUserNamespace), to which the path already belongs.
func chownForUser(path string, c *syscall.Credential) error {
	if unmapped(c) {
		return nil
	}
	return os.Chown(path, int(c.Uid), int(c.Gid))
}

// userNamespaceCheck is Doctor's first check: with what privilege this
// process can make labs, and why.
func userNamespaceCheck() Check {
	mode := privilegeMode()
	switch {
	case os.Geteuid() == 0 && !inOwnUserNamespace():
		return Check{Name: "privilege", OK: true, Detail: "root: labs are made in the machine's own user namespace, with real-time priority and the PM QoS request root has"}
	case os.Geteuid() == 0:
		uid, _ := outerUID()
		return Check{Name: "privilege", OK: true, Detail: fmt.Sprintf("%s: not root, so every run of uid %d makes a user namespace of its own and its labs inside it; what root would add is listed as degraded", mode, uid)}
	}
	userNamespace.Lock()
	refused := userNamespace.refused
	userNamespace.Unlock()
	if refused != nil {
		return Check{Name: "privilege", Detail: strings.TrimPrefix(refused.Error(), ErrUnfit.Error()+": ")}
	}
	return Check{Name: "privilege", Detail: fmt.Sprintf("halfopen runs as uid %d and was not started in a user namespace of its own; call harness.EnterUserNamespace first thing (gate.Main and `halfopen run` do), or run as root", os.Geteuid())}
}

// privilegeChecks are the checks Doctor adds for a run in a user
// namespace: what it goes without.
func privilegeChecks() []Check {
	var out []Check
	for _, d := range currentPrivilege().Degraded {
		out = append(out, Check{Name: "degraded", OK: true, Detail: d})
	}
	return out
}
