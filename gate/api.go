package gate

import (
	"fmt"
	"strconv"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/roles"
	"github.com/halfopen/halfopen/spec"
	"github.com/halfopen/halfopen/tcprules"
)

// The defaults of a Cell: what a zero field means.
const (
	// DefaultSamples is how many samples a cell with Samples 0 measures,
	// each in a fresh lab.
	DefaultSamples = 3
	// NeverBudget is how long a sample waits for a decision when the cell
	// leaves Budget 0 and its role predicts that it never decides (no
	// Predict, or one that returns nil): long enough to catch a
	// surprising decision, short enough not to stall the gate. Set Budget
	// to wait longer.
	NeverBudget = harness.NeverBudget
	// Port is the port the listening end of every watched connection
	// uses, in each lab's own namespaces, unless its Cell says another: a
	// Server's "{port}" placeholder and HALFOPEN_ADDR carry it.
	Port = topo.ListenPort
)

// Side says which end of the watched connection your watcher role is.
type Side = protocol.Side

// The two sides of a cell.
const (
	// SideClient: your role dials the peer (the default).
	SideClient = protocol.SideClient
	// SideServer: your role listens and the peer dials it.
	SideServer = protocol.SideServer
)

// Phase is the state of the connection a cell aims its fault at.
type Phase = tcprules.Phase

// The phases a cell can aim at.
const (
	// PhaseIdle lands the fault a seeded time (up to 1.5 s) after the
	// last exchange (the default).
	PhaseIdle = tcprules.PhaseIdle
	// PhaseInFlight lands it while the role's request is unacknowledged:
	// the harness holds the peer's pure ACKs (no data, ACK flag alone) on
	// the lab's router from before the role dials until just after the
	// fault, so a request the peer does not answer at once stays in flight.
	// Write one such request after Connected; a role that only reads, or
	// whose every request is answered at once, cannot be measured in it.
	PhaseInFlight = tcprules.PhaseInFlight
)

// Role is a watcher role, a Go one (Register), a program (Program) or one
// of halfopen's detectors (Detector): the value a Cell's Watcher takes, so
// that a misspelt role is a compile error.
type Role struct {
	name string
	// program is the command of a Program role ("" for a Go role), run
	// as root when privileged.
	program    string
	privileged bool
	// detector is a Detector role's spec, as given ("" for the others);
	// err says why it does not parse.
	detector string
	err      error
}

// Name is the name the role was registered under, a program's command, or
// a detector's spec.
func (r Role) Name() string { return r.name }

// Detector is one of halfopen's registered detectors as the watcher, by
// its spec, NAME[:key=value,...] ("keepalive-tuned:idle=1s,intvl=1s,cnt=3",
// "read-eof", "external:cmd=/path/to/prog"; `halfopen list` names them):
// the strategy a library would use, measured without writing a role. The
// spec goes through the one spec parser and is checked against the
// detector's parameters here; a bad one is not a panic but the error of
// the cell that uses it (Run, RunAll), or the failure of its entry's spec
// alone (a table). The detector's own peer answers it (halfopen's echo
// peer, which also answers its heart-beats) unless the Cell's Peer says
// Self or a Service, which the detector's peer parameter then names (only
// external takes one). A Detector's cell takes no Config: its parameters
// are in its spec.
func Detector(spec string) Role {
	r := Role{name: spec, detector: spec}
	if _, err := harness.CanonicalDetector(spec); err != nil {
		r.err = err
	}
	return r
}

// Program is a watcher role that is a program in any language speaking
// protocol v1 (docs/protocol.md): the gate file's watchers, in Go. cmd is
// the executable, absolute, relative to the test's directory, or found in
// PATH; it runs as nobody unless privileged. Its Peer Self is cmd again.
func Program(cmd string, privileged bool) Role {
	return Role{name: cmd, program: cmd, privileged: privileged}
}

// Register makes a Go role known by its name and returns its handle: a
// watcher, your client (or your server, for SideServer), whose Watch
// returns the moment your library gives up on its peer, with the reason;
// and, if it sets Peer, its own peer (the Cell's Peer Self). Call it from
// a package-level var or init; a duplicate name panics.
func Register(name string, w protocol.Watcher) Role {
	roles.Register(name, w)
	return Role{name: name}
}

// Peer is what a cell's watcher talks to: Echo (halfopen's built-in echo
// peer, the zero Peer), Self (the role's own Peer function), or a real
// server registered with Service.
type Peer struct{ name string }

// The built-in peers.
var (
	// Echo is halfopen's echo peer (the zero Peer): it accepts, echoes
	// what it reads and never writes first.
	Echo = Peer{name: "builtin"}
	// Self is the watcher role's own Peer (protocol.Watcher.Peer).
	Self = Peer{name: "self"}
)

// Name is the peer's name in specs and reports.
func (p Peer) Name() string {
	if p.name == "" {
		return Echo.name
	}
	return p.name
}

// Server is a real server run unmodified as the peer (redis-server,
// postgres, nats-server, a gRPC server binary), inside the peer host. Its
// address comes in placeholders in Args ({ip}, {port} = Port, {addr} =
// ip:port, {dir} = a fresh directory of the sample's own) and in the
// environment (HALFOPEN_ADDR, HALFOPEN_DIR). It is ready when its port
// accepts a TCP connection, or, with Protocol, when it prints "ready".
// Its output is kept per sample and its last lines are shown when a
// sample fails. It dies with its host on a host crash and starts again,
// with no memory, when a rebooted host returns.
type Server struct {
	// Name names the server in specs (peer=NAME), reports and messages: a
	// plain word.
	Name string
	// Path is the executable, absolute or found in PATH; Args follow it.
	Path string
	// Args are its arguments, placeholders replaced per sample.
	Args []string
	// Env is added to its environment (KEY=value).
	Env []string
	// Package is the Debian package that provides Path, named when it is
	// missing.
	Package string
	// User runs it as this system user (PostgreSQL refuses root).
	User string
	// Setup, when set, runs before each start with the sample's directory
	// (made and owned by User): initdb, a config file.
	Setup func(dir string) error
	// Protocol says the server prints protocol v1 "ready" when it listens.
	Protocol bool
	// ReadyTimeout bounds its start-up (0: 20 s).
	ReadyTimeout time.Duration
}

// Service registers a real server as a peer and returns its handle, the
// value a Cell's Peer takes. Call it from a package-level var or init; a
// duplicate or non-word name panics.
func Service(s Server) Peer {
	harness.RegisterService(harness.Service{Name: s.Name, Path: s.Path, Args: s.Args, Env: s.Env, Package: s.Package,
		User: s.User, Setup: s.Setup, Protocol: s.Protocol, ReadyTimeout: s.ReadyTimeout})
	return Peer{name: s.Name}
}

// Fault is a fault a cell injects, built by one of the constructors below
// (Blackhole, HostCrash, RouterRestart, ...) or parsed from its string
// form (ParseFault), the form gate files and the halfopen CLI take.
type Fault struct{ spec string }

// String is the fault's spec as given, in canonical order, e.g.
// "router-restart:outage=2s" (the report fills in its defaults).
func (f Fault) String() string { return f.spec }

// ParseFault parses a fault's string form, NAME[:key=value,...] (the form
// of gate files and `halfopen run --fault`), with the one spec parser,
// and checks it against the registered fault: its name, its parameters
// and their values.
func ParseFault(s string) (Fault, error) {
	if _, _, err := harness.NewFault(s); err != nil {
		return Fault{}, fmt.Errorf("gate: fault %q: %w", s, err)
	}
	c, err := spec.Canonical(s)
	if err != nil {
		return Fault{}, fmt.Errorf("gate: fault %q: %w", s, err)
	}
	return Fault{spec: c}, nil
}

// MustFault is ParseFault for package-level values: bad input panics.
func MustFault(s string) Fault {
	f, err := ParseFault(s)
	if err != nil {
		panic(err)
	}
	return f
}

// NewFault builds a registered fault from its name and parameters (values
// as the fault's spec takes them: "2s", "nat", "30") through the one spec
// parser, for a fault without a constructor of its own here.
func NewFault(name string, params map[string]string) (Fault, error) {
	return ParseFault(spec.Spec{Name: name, Params: params}.String())
}

// fault is a constructor's fault, checked at once: a constructor's
// parameters are typed, so a refusal is a bug here.
func fault(name string, kv ...string) Fault {
	p := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i]] = kv[i+1]
	}
	f, err := NewFault(name, p)
	if err != nil {
		panic(err)
	}
	return f
}

// Blackhole: the router silently drops every packet between peer and
// watcher, both ways, for good.
func Blackhole() Fault { return fault("blackhole") }

// HostCrash: the peer host vanishes: isolated, its processes killed, its
// namespace destroyed.
func HostCrash() Fault { return fault("host-crash") }

// HostReboot: the peer host crashes and returns after down with the same
// address and no memory, so it answers the next segment with an RST.
func HostReboot(down time.Duration) Fault { return fault("host-reboot", "down", down.String()) }

// RouterRestart: the router forwards nothing and forgets its conntrack
// state for outage, then recovers: a disturbance a healthy connection
// should survive.
func RouterRestart(outage time.Duration) Fault {
	return fault("router-restart", "outage", outage.String())
}

// Middlebox is the kind of middlebox MiddleboxStateLoss puts on the router.
type Middlebox string

// The middleboxes.
const (
	// Firewall is a stateful firewall: it drops the flow it forgot.
	Firewall Middlebox = "firewall"
	// NAT is a source NAT of the dialing end: it resets the flow it forgot.
	NAT Middlebox = "nat"
)

// Forget is what MiddleboxStateLoss's middlebox forgets.
type Forget string

// The scopes of a state loss.
const (
	// TheFlow: only the watched flow, as an idle-timeout eviction does.
	TheFlow Forget = "flow"
	// AllFlows: every flow, as a middlebox restart does.
	AllFlows Forget = "all"
)

// MiddleboxStateLoss: a stateful firewall or NAT on the router forgets
// the watched flow (or every flow). MiddleboxStateLoss(Firewall, TheFlow)
// is the fault's default, the spec "middlebox-state-loss".
func MiddleboxStateLoss(mode Middlebox, scope Forget) Fault {
	return fault("middlebox-state-loss", "mode", string(mode), "scope", string(scope))
}

// GracefulClose: the peer closes its end: a FIN crosses the router.
func GracefulClose() Fault { return fault("graceful-close") }

// AbortiveClose: the peer resets its connection (SO_LINGER 0 + close).
func AbortiveClose() Fault { return fault("abortive-close") }

// ProcessKill: the peer process is SIGKILLed; its kernel closes the socket.
func ProcessKill() Fault { return fault("process-kill") }

// PeerCablePull: the router's port to the peer goes down; the watcher's
// link stays up.
func PeerCablePull() Fault { return fault("peer-cable-pull") }

// LocalCablePull: the watcher's own cable is pulled: its link loses carrier.
func LocalCablePull() Fault { return fault("local-cable-pull") }

// Direction is the way OneWay drops packets.
type Direction string

// The directions of OneWay.
const (
	// ToWatcher drops what the peer sends: to the watcher it falls silent.
	ToWatcher Direction = "to-watcher"
	// ToPeer drops what the watcher sends.
	ToPeer Direction = "to-peer"
)

// OneWay: the router silently drops the packets going one way, for good.
func OneWay(d Direction) Fault { return fault("one-way", "direction", string(d)) }

// RandomLoss: the router drops percent % of the packets, both ways, at
// random.
func RandomLoss(percent int) Fault { return fault("random-loss", "percent", strconv.Itoa(percent)) }

// LongIdle: nothing fails; the connection stays idle for d.
func LongIdle(d time.Duration) Fault { return fault("long-idle", "for", d.String()) }
