package faults

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/nftcount"
	"github.com/halfopen/halfopen/internal/nftmatch"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// tableName is the one nftables table halfopen makes, only ever inside a
// lab's namespaces.
const tableName = "halfopen"

// ruleSet is a fault's own base chains in the "halfopen" table of one lab
// host. Every rule ends in a counter and is tagged with the fault's name in
// its user data, so its effect on real packets can be read back.
type ruleSet struct {
	lab    *harness.Lab
	role   topo.Role
	tag    string
	conn   *nftables.Conn
	table  *nftables.Table
	chains []*nftables.Chain
}

// newRuleSet prepares (without sending) a table for the fault's chains.
func newRuleSet(lab *harness.Lab, role topo.Role, tag string) (*ruleSet, error) {
	h := lab.Host(role)
	if h == nil {
		return nil, fmt.Errorf("host %s is gone", role)
	}
	conn, err := h.Nft()
	if err != nil {
		return nil, err
	}
	t := conn.AddTable(&nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv4})
	return &ruleSet{lab: lab, role: role, tag: tag, conn: conn, table: t}, nil
}

// chain adds a base filter chain named "<tag>-<name>" on hook at priority.
func (r *ruleSet) chain(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	policy := nftables.ChainPolicyAccept
	c := r.conn.AddChain(&nftables.Chain{
		Name: r.tag + "-" + name, Table: r.table, Hooknum: hook, Priority: prio,
		Type: nftables.ChainTypeFilter, Policy: &policy,
	})
	r.chains = append(r.chains, c)
	return c
}

// drop appends "match... counter drop" to chain.
func (r *ruleSet) drop(c *nftables.Chain, match ...[]expr.Any) {
	r.rule(c, expr.VerdictDrop, match...)
}

// rule appends "match... counter <verdict>" to chain.
func (r *ruleSet) rule(c *nftables.Chain, verdict expr.VerdictKind, match ...[]expr.Any) {
	var exprs []expr.Any
	for _, m := range match {
		exprs = append(exprs, m...)
	}
	exprs = append(exprs, &expr.Counter{}, &expr.Verdict{Kind: verdict})
	r.conn.AddRule(&nftables.Rule{Table: r.table, Chain: c, Exprs: exprs, UserData: []byte("halfopen:" + r.tag)})
}

// commit sends the batch and returns the instant the kernel acknowledged it.
func (r *ruleSet) commit() (int64, error) {
	if err := r.conn.Flush(); err != nil {
		return 0, fmt.Errorf("%s: install nftables rules in %s: %w", r.tag, r.role, err)
	}
	return protocol.Now(), nil
}

// remove flushes and deletes the fault's chains and returns the instant the
// kernel acknowledged it.
func (r *ruleSet) remove() (int64, error) {
	if r.lab.Host(r.role) == nil {
		return protocol.Now(), nil
	}
	for _, c := range r.chains {
		r.conn.FlushChain(c)
		r.conn.DelChain(c)
	}
	if err := r.conn.Flush(); err != nil {
		return 0, fmt.Errorf("%s: remove nftables rules in %s: %w", r.tag, r.role, err)
	}
	return protocol.Now(), nil
}

// counters sums the packets and bytes counted by the fault's rules.
func (r *ruleSet) counters() (packets, bytes uint64, err error) {
	packets, bytes, err = nftcount.Sum(r.conn, r.table, nil, r.chains...)
	if err != nil {
		return 0, 0, fmt.Errorf("%s in %s: %w", r.tag, r.role, err)
	}
	return packets, bytes, nil
}

// Counters returns the packets and bytes a fault's nftables rules matched.
// It lets tests observe a fault's effect on real packets.
type Counters interface {
	Counters() (packets, bytes uint64, err error)
}

// silenceHost installs, on the router, drops for everything to or from
// prefix: in prerouting at raw priority, before routing, so the router never
// answers with an ICMP error, and in output, for the router's own packets
// (a proxy's). Returns the rule set to remove later.
func silenceHost(lab *harness.Lab, tag string, p netip.Prefix) (*ruleSet, error) {
	rs, err := newRuleSet(lab, topo.Router, tag)
	if err != nil {
		return nil, err
	}
	pre := rs.chain("pre", nftables.ChainHookPrerouting, nftables.ChainPriorityRaw)
	rs.drop(pre, nftmatch.Addr(true, p))
	rs.drop(pre, nftmatch.Addr(false, p))
	out := rs.chain("out", nftables.ChainHookOutput, nftables.ChainPriorityRaw)
	rs.drop(out, nftmatch.Addr(false, p))
	return rs, nil
}

var errNoPeerAgent = errors.New("this fault commands halfopen's built-in peer, and the peer is a program of the detector's own")

// Hooks and priorities used by the faults.
var (
	nftablesPrerouting = nftables.ChainHookPrerouting
	nftablesOutput     = nftables.ChainHookOutput
	nftablesForward    = nftables.ChainHookForward
	nftablesRaw        = nftables.ChainPriorityRaw
	nftablesFilter     = nftables.ChainPriorityFilter
)

// chainOfType adds a base chain of a given type (filter or nat) named
// "<tag>-<name>" on hook at priority.
func (r *ruleSet) chainOfType(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	policy := nftables.ChainPolicyAccept
	c := r.conn.AddChain(&nftables.Chain{
		Name: r.tag + "-" + name, Table: r.table, Hooknum: hook, Priority: prio,
		Type: typ, Policy: &policy,
	})
	r.chains = append(r.chains, c)
	return c
}

// ruleNamed appends "match... counter <then>" to chain, tagged
// "halfopen:<tag>:<name>" so that its counter can be read alone.
func (r *ruleSet) ruleNamed(c *nftables.Chain, name string, then []expr.Any, match ...[]expr.Any) {
	var exprs []expr.Any
	for _, m := range match {
		exprs = append(exprs, m...)
	}
	exprs = append(exprs, &expr.Counter{})
	exprs = append(exprs, then...)
	r.conn.AddRule(&nftables.Rule{Table: r.table, Chain: c, Exprs: exprs, UserData: []byte("halfopen:" + r.tag + ":" + name)})
}

// counterOf returns the packets counted by the rules tagged with name by
// ruleNamed.
func (r *ruleSet) counterOf(name string) (uint64, error) {
	want := "halfopen:" + r.tag + ":" + name
	packets, _, err := nftcount.Sum(r.conn, r.table, func(rule *nftables.Rule) bool { return string(rule.UserData) == want }, r.chains...)
	if err != nil {
		return 0, fmt.Errorf("%s in %s: %w", r.tag, r.role, err)
	}
	return packets, nil
}

// pathDrops installs, on the router, silent drops of what arrives on the
// ports named in from (prerouting at raw priority, before routing, so no
// ICMP error is ever generated) and of the router's own packets (a
// proxy's) leaving through the ports named in to, each rule preceded by
// match (e.g. a random draw).
func pathDrops(rs *ruleSet, from, to []string, match []expr.Any) {
	pre := rs.chain("pre", nftablesPrerouting, nftablesRaw)
	for _, name := range from {
		rs.drop(pre, nftmatch.IIF(name), match)
	}
	out := rs.chain("out", nftablesOutput, nftablesRaw)
	for _, name := range to {
		rs.drop(out, nftmatch.OIF(name), match)
	}
}
