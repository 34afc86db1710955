package harness

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/internal/topo"
)

// connectFrom tries a non-blocking TCP connect from a socket made inside
// the host's namespace and returns the connect's own error: ENETUNREACH at
// once when no route leads there, EINPROGRESS when a SYN went out.
func connectFrom(h *Host, addr netip.Addr) error {
	var cerr error
	err := inNamespace(h.NS, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		cerr = unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.As4(), Port: 443})
		return nil
	})
	if err != nil {
		return err
	}
	return cerr
}

// hostAddrs returns the IPv4 addresses of the host's own namespace (read
// only: this process's namespace is never changed).
func hostAddrs(t *testing.T) []netip.Addr {
	t.Helper()
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && !ip.IsLoopback() {
			out = append(out, ip)
		}
	}
	return out
}

// No host of a lab can reach an address outside the lab: a connect to
// anything outside 198.18.0.0/15 (the machine's own addresses, private
// networks, the internet) fails at once with ENETUNREACH, from every host.
func TestLabHostsReachNothingOutside(t *testing.T) {
	_, lab := newTestLab(t)
	lab15 := netip.MustParsePrefix("198.18.0.0/15")
	targets := []netip.Addr{
		netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("10.0.0.1"),
		netip.MustParseAddr("172.16.0.1"), netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("198.20.0.1"), netip.MustParseAddr("198.17.255.254"),
	}
	targets = append(targets, hostAddrs(t)...)
	for _, r := range []topo.Role{topo.Watcher, topo.Peer, topo.Router} {
		for _, addr := range targets {
			if lab15.Contains(addr) {
				t.Fatalf("target %s is inside the lab's range", addr)
			}
			start := time.Now()
			err := connectFrom(lab.Host(r), addr)
			took := time.Since(start)
			if !errors.Is(err, unix.ENETUNREACH) {
				t.Errorf("connect from the %s host to %s: %v, want ENETUNREACH", r, addr, err)
			}
			if took > 50*time.Millisecond {
				t.Errorf("connect from the %s host to %s took %v, want at once", r, addr, took)
			}
		}
	}
	// The same probe does reach inside the lab, so the test can tell.
	if err := connectFrom(lab.Host(topo.Watcher), topo.PeerAddr); !errors.Is(err, unix.EINPROGRESS) {
		t.Errorf("connect from the watcher to the peer: %v, want EINPROGRESS (a SYN sent)", err)
	}
}

// Every link of a lab is loopback or a veth whose other end is in another
// namespace of the same lab: none touches the host's own namespace.
func TestNoLabLinkTouchesTheHost(t *testing.T) {
	_, lab := newTestLab(t)
	hostNS, err := netns.GetFromPid(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer hostNS.Close()
	for _, r := range []topo.Role{topo.Peer, topo.Router, topo.Watcher} {
		h := lab.Host(r)
		others := map[int]topo.Role{}
		for _, o := range []topo.Role{topo.Peer, topo.Router, topo.Watcher} {
			if o == r {
				continue
			}
			id, err := h.Link.GetNetNsIdByFd(int(lab.Host(o).NS))
			if err != nil {
				t.Fatal(err)
			}
			others[id] = o
		}
		hostID, err := h.Link.GetNetNsIdByFd(int(hostNS))
		if err != nil {
			t.Fatal(err)
		}
		links, err := h.Link.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		veths := 0
		for _, l := range links {
			a := l.Attrs()
			switch {
			case a.Name == "lo":
			case l.Type() == "veth":
				veths++
				if a.NetNsID < 0 || (hostID >= 0 && a.NetNsID == hostID) {
					t.Errorf("%s host: link %s has its other end in the host's namespace (nsid %d)", r, a.Name, a.NetNsID)
				} else if _, ok := others[a.NetNsID]; !ok {
					t.Errorf("%s host: link %s has its other end in namespace id %d, not in the lab (%v)", r, a.Name, a.NetNsID, others)
				}
			default:
				t.Errorf("%s host: link %s of type %s, where a lab has only loopback and veths", r, a.Name, l.Type())
			}
		}
		if want := map[topo.Role]int{topo.Peer: 1, topo.Router: 2, topo.Watcher: 1}[r]; veths != want {
			t.Errorf("%s host has %d veths, want %d", r, veths, want)
		}
	}
}

// shellExec matches a Go call that would start a shell: the harness runs
// programs by path with an argument list, so that no spec, path or value
// ever meets a shell's quoting.
var shellExec = regexp.MustCompile(`exec\.Command(Context)?\([^)]*"(/usr)?(/bin/)?(ba|da|z)?sh"|"-c"`)

// No code of the module (tests and examples aside) starts a shell.
func TestNoShellInTheCode(t *testing.T) {
	root := ".."
	var found []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "examples" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if shellExec.MatchString(line) {
				found = append(found, p+":"+strconv.Itoa(i+1)+": "+strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("a shell is started: %s", f)
	}
	if !shellExec.MatchString(`cmd := exec.Command("/bin/sh", "-c", spec)`) {
		t.Error("the pattern does not catch a shell")
	}
}
