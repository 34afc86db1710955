package harness

import (
	"context"
	"net"
	"time"

	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/tcprules"
)

// This file is the whole extension contract, on one screen: a fault needs
// Inject and Effect, a detector needs Predict and Watch; everything else is
// an optional capability found by type assertion, declared below with what
// it changes and which capability wins when two apply.
//
// How theory is decided for a cell (Resolve, theory.go), first match wins:
//
//  1. the fault's Effect is EffectTransient: a disturbance cell, judged by
//     disturbanceTheory from the fault's Silencer and Signaller and the
//     detector's SignalVictim, Sender and Writer (Expecter and the rest do
//     not apply);
//  2. the fault is an Expecter: its Expect(det) is the theory;
//  3. the Effect is EffectResetOnWrite: ExpectResetOnWrite, using the
//     fault's ResetAfterer and the detector's Sender when they exist;
//  4. the fault is a LocalLinkCutter and the detector a
//     LocalFailurePredictor: its PredictLocalFailure;
//  5. the Effect is a FIN or an RST and the detector is a ClosePredictor:
//     its PredictClose;
//  6. otherwise the Effect's generic rule (a FIN or RST is seen at once; a
//     silent peer gets the detector's Predict).
//
// Then, for a silent Effect whose predicted reasons include ETIMEDOUT, a
// FaultReasons fault replaces the reasons with its own.

// Effect is what a fault does to the watched connection, seen from the
// watcher's kernel. It decides what theory expects of every detector.
type Effect string

// Effects of faults.
const (
	// EffectFIN: a FIN arrives; every read-based detector decides at once (EOF).
	EffectFIN Effect = "fin"
	// EffectFINOrRST: the peer's kernel closes the socket; a FIN, or an RST
	// when unread data was still queued (RFC 2525 §2.17, tcp_close()).
	EffectFINOrRST Effect = "fin-or-rst"
	// EffectRST: an RST arrives; reads fail with ECONNRESET at once.
	EffectRST Effect = "rst"
	// EffectSilent: the peer never answers again; only timers can tell.
	EffectSilent Effect = "silent"
	// EffectResetOnWrite: the path answers the watcher's next segment with an
	// RST (a rebooted host, a NAT that lost its state).
	EffectResetOnWrite Effect = "rst-on-write"
	// EffectTransient: the path fails for a while and heals; the connection
	// must survive, and every decision is a false positive.
	EffectTransient Effect = "transient"
)

// Heal undoes a fault and returns the CLOCK_MONOTONIC instant it took effect.
type Heal func(ctx context.Context) (at int64, err error)

// Fault injects one failure into a lab. Faults register themselves in init()
// with RegisterFault; the registry hands out a fresh decoded copy per use.
type Fault interface {
	// Inject makes the failure happen and returns the CLOCK_MONOTONIC instant
	// the kernel acknowledged it (after the netlink or nftables call
	// returned), and how to heal it (nil when it cannot be healed).
	Inject(ctx context.Context, lab *Lab) (heal Heal, at int64, err error)
	// Effect says what the watcher's kernel sees.
	Effect() Effect
}

// Detector is a dead-peer detection strategy. Its watcher side runs inside
// the watcher agent on established connections; its peer side is the
// built-in echo peer.
type Detector interface {
	// Predict gives the detection range for a silent peer, from theory.
	Predict() Prediction
	// Watch blocks until the detector decides that the peer is dead, or ctx ends.
	Watch(ctx context.Context, w *Watch) Decision
}

// Optional capabilities of a fault.
type (
	// Preparer arranges the lab before the connection is made (a firewall
	// that tracks it, a proxy on its path). It runs after the cell's
	// sysctls are set.
	Preparer interface {
		Prepare(ctx context.Context, lab *Lab) error
	}
	// Windowed is a transient fault that says how long a disturbance
	// sample observes the connection after the injection before healing.
	Windowed interface {
		Window() time.Duration
	}
	// Noter says in one sentence what a sample in this lab could not see
	// (a proxy hides the peer); it becomes the cell's note.
	Noter interface {
		Note(lab *Lab) string
	}
	// DropCounter counts the packets and bytes the fault's own rules
	// matched, for tests that prove a fault acted on real packets.
	DropCounter interface {
		Counters() (packets, bytes uint64, err error)
	}
	// Expecter has a theory that depends on the detector in a way its
	// Effect cannot say (a proxy that answers for a dead peer, a close
	// delayed by a toxic). It wins over every other rule of a detection
	// cell: it returns the prediction and ExpectDetect or ExpectNever.
	Expecter interface {
		Expect(det Detector) (Prediction, report.Expectation)
	}
	// ResetAfterer is an EffectResetOnWrite fault whose path answers with
	// RST only some time after the injection (a host that reboots after
	// being down); without it the path answers at once.
	ResetAfterer interface {
		ResetAfter() time.Duration
	}
	// Silencer is a transient fault that says how long it silences the
	// path (Silence). A disturbance without it silences nothing (a long
	// idle, a signal storm).
	Silencer interface {
		Silence() Silence
	}
	// Signaller is a transient fault that sends the watcher signals: a
	// SignalVictim decides under it.
	Signaller interface {
		SignalsWatcher()
	}
	// LocalLinkCutter is a fault that takes away the watcher's own link, so
	// that what it sends fails in its own stack.
	LocalLinkCutter interface {
		CutsWatcherLink()
	}
	// Returner is an EffectResetOnWrite fault that reports the instant its
	// path began answering again (the rebooted host is back; zero while it
	// is down): a ResetForecaster's forecast counts from it.
	Returner interface {
		Returned() (int64, error)
	}
	// FaultReasons is a silent fault whose path reports an error of its own
	// when a timer gives up (a router's ICMP unreachable becomes the
	// socket's soft error, reported in place of ETIMEDOUT).
	FaultReasons interface {
		Reasons() []string
	}
)

// Optional capabilities of a detector.
type (
	// ClosePredictor reacts to a FIN or an RST other than at once (it
	// polls, or never reads: a Never prediction makes the cell
	// ExpectNever), so it predicts that too. An Expecter fault and
	// EffectResetOnWrite win over it.
	ClosePredictor interface {
		PredictClose(e Effect) Prediction
	}
	// Worder words its decisions in its library's own words ("redial",
	// "i/o timeout"), declared once: they are the cell's reasons under
	// every fault, replacing what the generic rules and FaultReasons name.
	Worder interface {
		OwnReasons() []string
	}
	// Sender says the longest time its watcher lets pass without sending a
	// segment while its peer does not answer (a keepalive's max(idle,
	// intvl), a heart-beat's interval). Theory uses it for
	// EffectResetOnWrite; without it the silent-peer Hi bounds the gap.
	Sender interface {
		MaxSendGap() time.Duration
	}
	// Writer writes on its connection every WriteEvery while healthy, so a
	// segment it sends into a silence is lost and resent on the doubling
	// retransmission timer (RFC 6298 §5.5): theory bounds when it hears its
	// peer again after a disturbance.
	Writer interface {
		WriteEvery() time.Duration
	}
	// SignalVictim takes a caught signal for its peer's death (select()
	// failing with EINTR, unchecked): a Signaller fault makes it decide.
	SignalVictim interface {
		FooledBySignals()
	}
	// LocalFailurePredictor predicts itself when its own link is gone
	// (a LocalLinkCutter): retransmissions that fail locally are timed
	// otherwise than lost ones.
	LocalFailurePredictor interface {
		PredictLocalFailure() Prediction
	}
	// ConnCounter needs more than one connection (a dedicated heart-beat
	// connection); Watch.Conns has that many.
	ConnCounter interface {
		Conns() int
	}
	// SysctlNeeder needs kernel parameters in the watcher's namespace that
	// are not simply its sysctl-backed parameters (keepalive-default's
	// scaled timers). They are written after the sysctl-backed parameters,
	// so they win; one that differs from the cell's explicit sysctls is
	// refused by Resolve.
	SysctlNeeder interface {
		Sysctls() map[string]string
	}
	// Program is a detector whose watcher is a program of its own (the
	// external protocol) instead of halfopen's watcher agent.
	Program interface {
		// WatcherProgram returns how to start the watcher for a side and address.
		WatcherProgram(side protocol.Side, addr string) ProcSpec
		// PeerProgram returns how to start the peer, or false for the built-in peer.
		PeerProgram(side protocol.Side, addr string) (ProcSpec, bool)
	}
	// ServicePeer is a detector whose peer is a real server (a Service)
	// rather than a program speaking protocol v1: its watcher dials it
	// (side client only). It wins over Program's PeerProgram.
	ServicePeer interface {
		PeerService() (Service, bool)
	}
	// SamplePredictor predicts one sample from the watched connection's
	// state at the fault (tcprules): the instant its timers decide. false
	// when it has no per-sample rule for that state or Effect; the cell's
	// range then stands alone.
	SamplePredictor interface {
		PredictSample(st tcprules.ConnState, e Effect) (tcprules.Forecast, bool)
	}
	// ResetForecaster forecasts a sample on a path that answers the
	// watcher's segments with an RST only from `after` on (a host that
	// returns after being down): its first segment from then is reset. It
	// wins over SamplePredictor when the fault is a Returner.
	ResetForecaster interface {
		PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool)
	}
	// PeerReporter asks the peer what it saw, after the decision (oob-probe:
	// whether urgent bytes arrived in band); the answer goes into the
	// sample.
	PeerReporter interface {
		PeerSaw(peer *Process) string
	}
)

// Silence is how long a disturbance silences the path: at least Min, at
// most Max. Lossy: the segments sent into it are dropped (and resent by
// timers); otherwise they are only delayed (a latency toxic).
type Silence struct {
	Min, Max time.Duration
	Lossy    bool
}

// Validator is a fault or detector whose parameters must agree with each
// other beyond each one's bounds; the registry calls it after decoding.
type Validator interface {
	Validate() error
}

// Prediction is what theory says a detector does when its peer goes silent.
type Prediction struct {
	// Never is true when a silent peer is never detected.
	Never bool
	// Lo and Hi bound the detection time.
	Lo, Hi time.Duration
	// Rule cites the kernel or algorithm rule the range comes from.
	Rule string
	// Reasons are the reasons the detector gives when it decides.
	Reasons []string
}

// Seconds returns [lo, hi] in seconds, or nil when the peer is never detected.
func (p Prediction) Seconds() *[2]float64 {
	if p.Never {
		return nil
	}
	return &[2]float64{p.Lo.Seconds(), p.Hi.Seconds()}
}

// Decision is a watcher's verdict: the peer is dead, for a reason, decided at
// a CLOCK_MONOTONIC instant.
type Decision struct {
	Reason string
	AtNs   int64
}

// Decide stamps a decision with the current instant.
func Decide(reason string) Decision { return Decision{Reason: reason, AtNs: protocol.Now()} }

// Watch is what a detector's watcher side works with inside the watcher agent.
type Watch struct {
	// Conns are the established connections (one unless the detector asks
	// for more with ConnCounter); Conns[0] carries the data.
	Conns []*net.TCPConn
	// Log emits a protocol log line.
	Log func(format string, args ...any)
}
