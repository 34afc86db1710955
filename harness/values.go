package harness

import (
	"context"
	"net"
	"time"

	"github.com/halfopen/halfopen/protocol"
)

// The values the contract (contract.go) passes around.

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

// Silence is how long a disturbance silences the path: at least Min, at
// most Max. Lossy: the segments sent into it are dropped (and resent by
// timers); otherwise they are only delayed (a latency toxic).
type Silence struct {
	Min, Max time.Duration
	Lossy    bool
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
	// for more with Conns); Conns[0] carries the data.
	Conns []*net.TCPConn
	// Log emits a protocol log line.
	Log func(format string, args ...any)
}
