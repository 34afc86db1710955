package harness

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

// ErrUnfit wraps every reason this machine cannot run a lab.
var ErrUnfit = errors.New("this machine cannot run halfopen's lab")

// Check is one preflight check's outcome.
type Check struct {
	Name string
	OK   bool
	// Detail is one sentence: what was found, or what is missing and why it matters.
	Detail string
}

// Preflight checks, in order, what a lab needs: root, or root of a user
// namespace of its own (EnterUserNamespace), network namespaces with a
// place to name them, nftables in the kernel. The first missing one
// is returned as a single sentence wrapping ErrUnfit.
func Preflight() error {
	for _, c := range labChecks() {
		if !c.OK {
			return fmt.Errorf("%w: %s", ErrUnfit, c.Detail)
		}
	}
	return nil
}

// Doctor runs every preflight check and reports each, then, with the
// privilege to make labs, whether a killed run's labs are reaped
// (CheckReaper) and whether labs get a cgroup (CheckCgroups).
func Doctor() []Check {
	out := labChecks()
	if out[0].OK {
		out = append(out, checkReaper(), checkCgroups())
	}
	return out
}

// labChecks are the checks Preflight needs to pass. The first says with
// what privilege this process makes labs (userNamespaceCheck): root, root
// of a user namespace of its own, or neither and why; a run in a user
// namespace adds what it goes without.
func labChecks() []Check {
	var out []Check
	priv := userNamespaceCheck()
	out = append(out, priv)
	if !priv.OK {
		out = append(out, Check{Name: "netns", Detail: "not checked without root or a user namespace"})
		out = append(out, Check{Name: "nftables", Detail: "not checked without root or a user namespace"})
		return out
	}
	ns, err := throwawayNamespace()
	if err != nil {
		out = append(out, Check{Name: "netns", Detail: fmt.Sprintf("the kernel refused a new network namespace (%v); halfopen needs CONFIG_NET_NS and, in a container, CAP_SYS_ADMIN", err)})
		out = append(out, Check{Name: "nftables", Detail: "not checked without network namespaces"})
		return out
	}
	defer ns.Close()
	if err := os.MkdirAll(nsMountDirectory, 0o755); err != nil {
		out = append(out, Check{Name: "netns", Detail: fmt.Sprintf("cannot create %s to name namespaces: %v", nsMountDirectory, err)})
	} else {
		out = append(out, Check{Name: "netns", OK: true, Detail: "network namespaces can be created and named under " + nsMountDirectory})
	}
	if err := tryNftables(ns); err != nil {
		out = append(out, Check{Name: "nftables", Detail: fmt.Sprintf("nftables does not work in a fresh namespace (%v); halfopen needs CONFIG_NF_TABLES for its drop rules", err)})
	} else {
		out = append(out, Check{Name: "nftables", OK: true, Detail: "nftables tables, chains, counters and rules work in a lab namespace"})
	}
	return append(out, privilegeChecks()...)
}

// throwawayNamespace makes an unnamed namespace and returns a handle on it;
// it vanishes when the handle is closed.
func throwawayNamespace() (netns.NsHandle, error) {
	h := netns.None()
	err := onRestoredThread(func() error {
		var err error
		h, err = netns.New()
		return err
	})
	if err != nil && h.IsOpen() {
		h.Close()
	}
	return h, err
}

// tryNftables adds and deletes a table in namespace ns.
func tryNftables(ns netns.NsHandle) error {
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns)), nftables.AsLasting())
	if err != nil {
		return err
	}
	defer conn.CloseLasting()
	t := conn.AddTable(&nftables.Table{Name: "halfopen-preflight", Family: nftables.TableFamilyIPv4})
	policy := nftables.ChainPolicyAccept
	conn.AddChain(&nftables.Chain{Name: "c", Table: t, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Type: nftables.ChainTypeFilter, Policy: &policy})
	if err := conn.Flush(); err != nil {
		return err
	}
	conn.DelTable(t)
	return conn.Flush()
}
