package harness

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/halfopen/halfopen/internal/nftcount"
	"github.com/halfopen/halfopen/internal/nftmatch"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// holdTable is the router's nftables table of a hold, apart from the
// faults' own ("halfopen"), so that neither removes the other's chains.
const holdTable = "halfopen-hold"

// flowHold drops, on the router, the peer's pure ACKs on the watched flow
// on their way to the watcher (segments with the ACK flag alone and no
// data); its answers, FINs and RSTs pass. A sample aimed at the in-flight
// phase with a foreign watcher holds its flow while it waits for the
// watcher's request, so that a request the peer does not answer at once
// (a BLPOP, a slow query) stays unacknowledged until the fault lands: on
// veth the peer acknowledges within µs when it is in quick-ack mode, or
// within the ~40 ms of a delayed ACK, both shorter than the time a loaded
// machine takes to see the request and inject the fault.
type flowHold struct {
	host   *Host
	conn   *nftables.Conn
	table  *nftables.Table
	chains []*nftables.Chain
	flow   flow
	// sinceNs is the CLOCK_MONOTONIC instant the hold was in place.
	sinceNs int64
	// dropped is what release counted, once released.
	dropped  uint64
	released bool
}

// holdFlow installs the hold: a forward chain for the peer's packets and an
// output chain for the router's own (a Toxiproxy on the router is the
// watcher's peer then), both at raw priority. The handshake passes (its
// SYN-ACK is no pure ACK); a listening watcher's flow must be held only
// once it is established, or the dialing peer's last handshake ACK would
// be dropped.
func holdFlow(lab *Lab, f flow) (*flowHold, error) {
	host := lab.Host(topo.Router)
	if host == nil {
		return nil, fmt.Errorf("lab %s: the router is gone", lab.ID)
	}
	conn, err := host.Nft()
	if err != nil {
		return nil, err
	}
	h := &flowHold{host: host, conn: conn, flow: f}
	h.table = conn.AddTable(&nftables.Table{Name: holdTable, Family: nftables.TableFamilyIPv4})
	match := f.towardsWatcher()
	policy := nftables.ChainPolicyAccept
	for _, ch := range []struct {
		name string
		hook *nftables.ChainHook
	}{{"forward", nftables.ChainHookForward}, {"output", nftables.ChainHookOutput}} {
		c := conn.AddChain(&nftables.Chain{
			Name: "hold-" + ch.name, Table: h.table, Hooknum: ch.hook,
			Priority: nftables.ChainPriorityRaw, Type: nftables.ChainTypeFilter, Policy: &policy,
		})
		for _, words := range nftmatch.PureACKWords {
			exprs := append(append([]expr.Any(nil), match...), nftmatch.PureACK(words)...)
			exprs = append(exprs, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
			conn.AddRule(&nftables.Rule{Table: h.table, Chain: c, Exprs: exprs, UserData: []byte("halfopen:hold")})
		}
		h.chains = append(h.chains, c)
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("hold the flow %s on the router: %w", f, err)
	}
	h.sinceNs = protocol.Now()
	return h, nil
}

// towardsWatcher matches the flow's packets from its remote end to the
// watcher; an address or port the flow leaves open matches any.
func (f flow) towardsWatcher() []expr.Any {
	m := nftmatch.TCP()
	if f.remote.Addr().IsValid() {
		m = append(m, nftmatch.Addr(true, netip.PrefixFrom(f.remote.Addr(), 32))...)
	}
	if f.local.Addr().IsValid() {
		m = append(m, nftmatch.Addr(false, netip.PrefixFrom(f.local.Addr(), 32))...)
	}
	if f.remote.Port() != 0 {
		m = append(m, nftmatch.Port(true, f.remote.Port())...)
	}
	if f.local.Port() != 0 {
		m = append(m, nftmatch.Port(false, f.local.Port())...)
	}
	return m
}

// release removes the hold, once, and returns how many packets it
// dropped. A router already gone (a lab torn down) holds nothing any more.
func (h *flowHold) release() (dropped uint64, err error) {
	if h.released {
		return h.dropped, nil
	}
	h.released = true
	if h.host.lab.Host(topo.Router) == nil {
		return 0, nil
	}
	dropped, _, cerr := nftcount.Sum(h.conn, h.table, nil, h.chains...)
	h.dropped = dropped
	h.conn.DelTable(h.table)
	if err := h.conn.Flush(); err != nil {
		return dropped, fmt.Errorf("release the hold on %s: %w", h.flow, err)
	}
	if cerr != nil {
		return dropped, fmt.Errorf("the hold on %s: %w", h.flow, cerr)
	}
	return dropped, nil
}

// releaseHold releases the session's hold, if it has one; a session ends
// with it released, whatever became of its sample.
func (s *session) releaseHold() (dropped uint64, err error) {
	if s.hold == nil {
		return 0, nil
	}
	return s.hold.release()
}
