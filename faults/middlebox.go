package faults

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/nftmatch"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// MiddleboxStateLoss: a stateful middlebox on the router forgets the
// watched flow, as an idle-timeout eviction does (scope=flow, the default:
// that flow's conntrack entry is deleted over NETLINK_NETFILTER) or as a
// middlebox restart does (scope=all: the table is flushed). Prepare makes
// the router that middlebox before the connection exists:
//
// mode=firewall, a stateful firewall in the forward chain:
//
//	ct state established,related  accept
//	ct state new, tcp SYN only    accept
//	ct state new                  drop   (not a SYN: a mid-flow packet after the loss, tcp_loose=1)
//	ct state invalid              drop   (the same packet with tcp_loose=0)
//
// After the loss every packet of the flow, both ways, is dropped silently:
// only the watcher's timers can tell (ETIMEDOUT).
//
// mode=nat, a source NAT of the dialing end (the watcher for side=client,
// the peer for side=server) to the router's own address, with fully random
// ports. After the loss, side=client: the watcher's next segment is picked
// up as a new flow and leaves with a new source port, so the peer's kernel
// answers it with an RST that the router translates back; side=server: the
// watcher's next segment is addressed to the router's own address and port,
// where no socket exists, and the router answers with an RST. Either way
// the watcher's next segment is reset (ECONNRESET).
type MiddleboxStateLoss struct {
	Mode  string `param:"mode" default:"firewall" enum:"firewall|nat" help:"the middlebox: a stateful firewall (drops) or a NAT (resets)"`
	Scope string `param:"scope" default:"flow" enum:"flow|all" help:"forget the watched flow (an eviction) or every flow (a restart)"`

	rules     *ruleSet
	forgotten int
}

func init() {
	harness.RegisterFault("middlebox-state-loss", "a stateful firewall or NAT on the router forgets the watched flow (mode=firewall|nat, scope=flow|all)", &MiddleboxStateLoss{})
}

// Prepare installs the firewall or the NAT on the router.
func (f *MiddleboxStateLoss) Prepare(ctx context.Context, lab *harness.Lab, conn *harness.Conn) error {
	rs, err := newRuleSet(lab, topo.Router, "middlebox")
	if err != nil {
		return err
	}
	if f.Mode == "nat" {
		oif, from, to := topo.RouterPeerLink, topo.WatcherNet, topo.RouterPeerAddr
		if conn.Side == protocol.SideServer {
			oif, from, to = topo.RouterWatchLink, topo.PeerNet, topo.RouterWatcherAddr
		}
		post := rs.chainOfType("nat", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
		addr := to.As4()
		snat := []expr.Any{
			&expr.Immediate{Register: 1, Data: addr[:]},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1, FullyRandom: true},
		}
		rs.ruleNamed(post, "snat", snat, nftmatch.OIF(oif), nftmatch.Addr(true, from), nftmatch.TCP())
	} else {
		fwd := rs.chain("fwd", nftablesForward, nftablesFilter)
		accept := []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
		drop := []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
		rs.ruleNamed(fwd, "established", accept, matchCtState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED))
		rs.ruleNamed(fwd, "new-syn", accept, matchCtState(expr.CtStateBitNEW), nftmatch.TCP(), matchSynOnly())
		rs.ruleNamed(fwd, "new-not-syn", drop, matchCtState(expr.CtStateBitNEW))
		rs.ruleNamed(fwd, "invalid", drop, matchCtState(expr.CtStateBitINVALID))
	}
	if _, err := rs.commit(); err != nil {
		return err
	}
	f.rules = rs
	lab.OnClose(func() error { _, err := rs.remove(); return err })
	return nil
}

// Inject makes the middlebox forget the flow (or everything).
func (f *MiddleboxStateLoss) Inject(ctx context.Context, lab *harness.Lab, conn *harness.Conn) (harness.Heal, int64, error) {
	if f.rules == nil {
		return nil, 0, errors.New("middlebox-state-loss was not prepared")
	}
	// The instant is taken before the netlink request: once the entry is
	// gone, the watcher's next write may be reset (mode=nat) and decided
	// before the request returns, and no decision may precede its fault.
	at := protocol.Now()
	n, err := forgetFlows(lab, conn, f.Scope == "all")
	if err != nil {
		return nil, 0, err
	}
	if n == 0 {
		return nil, 0, errors.New("the router tracked no flow to forget: the connection bypassed the middlebox")
	}
	f.forgotten = n
	return nil, at, nil
}

// Effect: the firewall drops silently; the NAT resets the next segment.
func (f *MiddleboxStateLoss) Effect() harness.Effect {
	if f.Mode == "nat" {
		return harness.EffectResetOnWrite
	}
	return harness.EffectSilent
}

// Drops returns the packets the firewall dropped as NEW-without-SYN and as
// INVALID, and the packets the NAT translated as new flows.
func (f *MiddleboxStateLoss) Drops() (newNotSyn, invalid, snat uint64, err error) {
	if f.rules == nil {
		return 0, 0, 0, errors.New("middlebox-state-loss was not prepared")
	}
	var errs [3]error
	newNotSyn, errs[0] = f.rules.counterOf("new-not-syn")
	invalid, errs[1] = f.rules.counterOf("invalid")
	snat, errs[2] = f.rules.counterOf("snat")
	return newNotSyn, invalid, snat, errors.Join(errs[:]...)
}

// Counters returns the packets the middlebox's rules matched.
func (f *MiddleboxStateLoss) Counters() (uint64, uint64, error) { return f.rules.counters() }

// Note names the middlebox and the router's tcp_loose, which decides how a
// mid-flow packet is classified once its entry is gone.
func (f *MiddleboxStateLoss) Note(lab *harness.Lab, _ *harness.Conn) string {
	loose, err := lab.ReadSysctl(topo.Router, "net.netfilter.nf_conntrack_tcp_loose")
	if err != nil {
		loose = "unknown"
	}
	if f.Mode == "nat" {
		return fmt.Sprintf("middlebox: source NAT of the dialing end with fully random ports on the router (tcp_loose=%s); after the state loss the watcher's next segment is reset", loose)
	}
	return fmt.Sprintf("middlebox: stateful firewall on the router (tcp_loose=%s: a mid-flow packet after the loss is %s, and dropped)", loose, map[bool]string{true: "NEW without SYN", false: "INVALID"}[loose != "0"])
}

// matchCtState matches packets whose conntrack state has any of bits.
func matchCtState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// matchSynOnly matches TCP segments whose flags, among FIN, SYN, RST and
// ACK, are SYN alone: a connection's first segment.
func matchSynOnly() []expr.Any {
	const fin, syn, rst, ack = 0x01, 0x02, 0x04, 0x10
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{fin | syn | rst | ack}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{syn}},
	}
}

// Expect: a middlebox that forgets only the watched flow (scope=flow)
// leaves a detector's other connections alone, so a detector that judges
// its peer on a dedicated connection of its own (Conns: the data
// flow is its first connection, its heart-beats go on the second) never
// sees the loss. Every other detector, and scope=all, follows the Effect.
func (f *MiddleboxStateLoss) Expect(det harness.Detector) (harness.Prediction, report.Expectation) {
	if cc, ok := det.(interface{ Conns() int }); ok && cc.Conns() > 1 && f.Scope == "flow" {
		p := det.Predict()
		return harness.Prediction{Never: true, Reasons: p.Reasons,
			Rule: "the middlebox forgets only the data flow; the detector's heart-beats cross it on a connection of their own, which stays known, so it never decides"}, report.ExpectNever
	}
	return harness.EffectTheory(det, f.Effect())
}
