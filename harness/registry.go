package harness

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
)

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

// Preparer is a fault that must arrange the lab before the connection is
// made (a firewall that tracks it, a proxy on its path).
type Preparer interface {
	Prepare(ctx context.Context, lab *Lab) error
}

// Windowed is a transient fault that says how long a disturbance cell must
// observe the connection after injecting it.
type Windowed interface {
	Window() time.Duration
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
func Decide(reason string) Decision { return Decision{Reason: reason, AtNs: Now()} }

// Watch is what a detector's watcher side works with inside the watcher agent.
type Watch struct {
	// Conns are the established connections (one unless the detector asks
	// for more with ConnCounter); Conns[0] carries the data.
	Conns []*net.TCPConn
	// Log emits a protocol log line.
	Log func(format string, args ...any)
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

// ConnCounter is a detector that needs more than one connection (a
// dedicated heart-beat connection).
type ConnCounter interface {
	Conns() int
}

// SysctlNeeder is a detector that needs kernel parameters set in the
// watcher's namespace; they are recorded in the report.
type SysctlNeeder interface {
	Sysctls() map[string]string
}

// Program is a detector whose watcher is a program of its own (the external
// protocol) instead of halfopen's watcher agent.
type Program interface {
	// WatcherProgram returns how to start the watcher for a side and address.
	WatcherProgram(side Side, addr string) ProcSpec
	// PeerProgram returns how to start the peer, or false for the built-in peer.
	PeerProgram(side Side, addr string) (ProcSpec, bool)
}

// Side says which end of the connection the watcher is.
type Side string

// Sides.
const (
	// SideClient: the watcher dials (a pool or RPC client watching its server).
	SideClient Side = "client"
	// SideServer: the watcher accepts and is blocked in recv, the reference
	// text's passive server; its client (the peer) dials.
	SideServer Side = "server"
)

// ParseSide checks a side name.
func ParseSide(s string) (Side, error) {
	switch Side(s) {
	case SideClient, SideServer:
		return Side(s), nil
	}
	return "", fmt.Errorf("side %q is not known; sides are client (the watcher dials) and server (the watcher accepts)", s)
}

// Entry is a registered fault or detector.
type Entry struct {
	Name   string
	Doc    string
	Params []Param
	proto  reflect.Type
}

type registry struct {
	what    string
	mu      sync.Mutex
	entries map[string]Entry
}

func (r *registry) register(name, doc string, proto any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.entries[name]; dup {
		panic(fmt.Sprintf("halfopen: %s %q registered twice", r.what, name))
	}
	t := reflect.TypeOf(proto)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("halfopen: %s %q: prototype must be a pointer to a struct", r.what, name))
	}
	r.entries[name] = Entry{Name: name, Doc: doc, Params: Params(proto), proto: t.Elem()}
}

func (r *registry) list() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (r *registry) names() string {
	var names []string
	for _, e := range r.list() {
		names = append(names, e.Name)
	}
	return strings.Join(names, ", ")
}

// build parses a spec, finds its entry and decodes a fresh copy.
func (r *registry) build(spec string) (any, Spec, error) {
	sp, err := ParseSpec(spec)
	if err != nil {
		return nil, Spec{}, fmt.Errorf("%s %w", r.what, err)
	}
	r.mu.Lock()
	e, ok := r.entries[sp.Name]
	r.mu.Unlock()
	if !ok {
		return nil, Spec{}, fmt.Errorf("no %s is called %q; the known %ss are %s", r.what, sp.Name, r.what, r.names())
	}
	v := reflect.New(e.proto).Interface()
	if err := Decode(r.what, sp, v); err != nil {
		return nil, Spec{}, err
	}
	// The canonical spec names every parameter, defaults included, so that
	// "heartbeat-inband" and "heartbeat-inband:interval=200ms,misses=3" are
	// one cell in reports, budgets and comparisons.
	for _, p := range e.Params {
		if _, given := sp.Params[p.Key]; !given && p.Default != "" && p.Key != "*" {
			sp.Params[p.Key] = p.Default
		}
	}
	if c, ok := v.(interface{ Validate() error }); ok {
		if err := c.Validate(); err != nil {
			return nil, Spec{}, fmt.Errorf("%s %s: %w", r.what, sp.Name, err)
		}
	}
	return v, sp, nil
}

var (
	faults    = &registry{what: "fault", entries: map[string]Entry{}}
	detectors = &registry{what: "detector", entries: map[string]Entry{}}
)

// RegisterFault adds a fault to the registry; proto is a pointer to its
// parameter struct, which must implement Fault. A duplicate name panics.
func RegisterFault(name, doc string, proto Fault) { faults.register(name, doc, proto) }

// RegisterDetector adds a detector to the registry; proto is a pointer to
// its parameter struct, which must implement Detector.
func RegisterDetector(name, doc string, proto Detector) { detectors.register(name, doc, proto) }

// Faults lists the registered faults by name.
func Faults() []Entry { return faults.list() }

// Detectors lists the registered detectors by name.
func Detectors() []Entry { return detectors.list() }

// NewFault builds a fault from its spec; the error is one sentence naming
// what is known when the name or a key is not.
func NewFault(spec string) (Fault, Spec, error) {
	v, sp, err := faults.build(spec)
	if err != nil {
		return nil, Spec{}, err
	}
	return v.(Fault), sp, nil
}

// NewDetector builds a detector from its spec.
func NewDetector(spec string) (Detector, Spec, error) {
	v, sp, err := detectors.build(spec)
	if err != nil {
		return nil, Spec{}, err
	}
	return v.(Detector), sp, nil
}

// CanonicalDetector returns a detector spec's canonical form: keys sorted,
// defaults filled in.
func CanonicalDetector(spec string) (string, error) {
	_, sp, err := detectors.build(spec)
	return sp.String(), err
}

// CanonicalFault returns a fault spec's canonical form.
func CanonicalFault(spec string) (string, error) {
	_, sp, err := faults.build(spec)
	return sp.String(), err
}
