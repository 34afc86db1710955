// Package roles holds the Go roles of gate suites: watchers and peers
// written in Go against a library, registered by name, run as their own
// processes (the test binary re-executed inside a lab host), and the "role"
// detector that names one in a cell: role:name=NAME,peer=builtin|self|SERVICE.
// Package gate is its Ginkgo API; the halfopen command imports this package
// so that budgets and reports may name role cells.
package roles

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/tcprules"
)

// envRole names the registered role a re-executed test binary runs.
const envRole = "HALFOPEN_GATE_ROLE"

var roles = struct {
	sync.Mutex
	byName map[string]protocol.Watcher
}{byName: map[string]protocol.Watcher{}}

// Register makes a Go role known by its name: a watcher, your client, whose
// Watch returns the moment your library gives up on its peer, with the
// reason; and, if it sets Peer, its own peer (your server). Call it from
// init or TestMain, before RunIfRole; a duplicate name panics.
func Register(name string, w protocol.Watcher) {
	roles.Lock()
	defer roles.Unlock()
	if _, dup := roles.byName[name]; dup {
		panic(fmt.Sprintf("roles: role %q registered twice", name))
	}
	if w.Name == "" {
		w.Name = name
	}
	roles.byName[name] = w
}

func lookupRole(name string) (protocol.Watcher, bool) {
	roles.Lock()
	defer roles.Unlock()
	w, ok := roles.byName[name]
	return w, ok
}

func roleNames() []string {
	roles.Lock()
	defer roles.Unlock()
	out := make([]string, 0, len(roles.byName))
	for n := range roles.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// roleDetector is a registered Go role as a detector: the test binary
// re-executed inside the watcher host (and, for peer=self, the peer host),
// speaking protocol v1 through package protocol.
//
//	[peer: echo peer, the role's own Peer, or a Service] ==veth== [router] ==veth== [watcher: the role's Watch]
type roleDetector struct {
	Name   string            `param:"name" help:"a role registered with gate.Register"`
	Peer   string            `param:"peer" default:"builtin" help:"builtin (halfopen's echo peer), self (the role's own Peer) or the name of a service"`
	Config map[string]string `param:"*" help:"passed to the role in HALFOPEN_CONFIG"`

	watcher protocol.Watcher
	service *harness.Service
}

func init() {
	harness.RegisterDetector("role", "a Go role registered with gate.Register, run as its own process (the test binary re-executed); other keys go to HALFOPEN_CONFIG", &roleDetector{})
}

// Validate finds the role and its peer.
func (d *roleDetector) Validate() error {
	w, ok := lookupRole(d.Name)
	if !ok {
		return fmt.Errorf("no role is called %q; the registered roles are %v (roles.Register, gate.Register)", d.Name, roleNames())
	}
	d.watcher = w
	if _, err := w.Environ(); err != nil {
		return fmt.Errorf("role %s: %w", d.Name, err)
	}
	switch d.Peer {
	case "builtin":
	case "self":
		if w.Peer == nil {
			return fmt.Errorf("role %s has no Peer, so peer=self has nothing to run", d.Name)
		}
	default:
		svc, ok := harness.LookupService(d.Peer)
		if !ok {
			return fmt.Errorf("peer %q is neither builtin, self nor a service; the services are %v (gate.Service, harness.RegisterService)", d.Peer, harness.ServiceNames())
		}
		if err := svc.Check(); err != nil {
			return err
		}
		d.service = &svc
	}
	if d.watcher.Predict != nil {
		if _, err := d.watcher.Predict(d.config()); err != nil {
			return fmt.Errorf("role %s: %w", d.Name, err)
		}
	}
	if _, err := d.watcher.CloseFor(d.config()); err != nil {
		return fmt.Errorf("role %s: %w", d.Name, err)
	}
	if _, err := d.watcher.KernelFor(d.config()); err != nil {
		return fmt.Errorf("role %s: %w", d.Name, err)
	}
	switch ph := d.config().Get(protocol.PhaseKey, ""); tcprules.Phase(ph) {
	case "", tcprules.PhaseIdle, tcprules.PhaseInFlight:
	default:
		return fmt.Errorf("role %s: phase=%s is neither %s nor %s", d.Name, ph, tcprules.PhaseIdle, tcprules.PhaseInFlight)
	}
	return nil
}

// Predict is the role's own prediction for a silent peer, with the
// reasons it declares (protocol.Watcher.Reasons: its library's words, and
// errno names only if it lists them).
//
// A cell aimed at a request in flight (protocol.PhaseKey) of a role that
// declares its socket's kernel settings is predicted by the kernel's
// retransmission rule instead (see inFlight): keepalive, which a role's
// own range usually assumes, is inert then.
func (d *roleDetector) Predict() harness.Prediction {
	if d.config().InFlight() {
		if p, ok := d.inFlight(); ok {
			return p
		}
	}
	r := d.watcher.Predicted
	if d.watcher.Predict != nil {
		r, _ = d.watcher.Predict(d.config())
	}
	reasons := slices.Clone(d.watcher.Reasons)
	if r == nil {
		return harness.Prediction{Never: true, Reasons: reasons, Rule: fmt.Sprintf("declared by role %s: it never notices a silent peer", d.Name)}
	}
	return harness.Prediction{Lo: r.Lo, Hi: r.Hi, Reasons: reasons, Rule: fmt.Sprintf("declared by role %s: [%v, %v]", d.Name, r.Lo, r.Hi)}
}

// delackMax is TCP_DELACK_MAX (include/net/tcp.h, 200 ms): a request
// still unacknowledged at the fault was sent at most this long before it,
// or the peer's delayed ACK would have come.
const delackMax = 200 * time.Millisecond

// inFlight is the cell range of a role with its request unacknowledged at
// the fault, from the per-sample rule (PredictSample) over the states the
// fault can meet: the request sent from 0 to delackMax before it, on a
// fast link (tcpi_rto tcprules.RTOFast, 204 ms at HZ 250). false when the
// role declares no kernel settings for its config.
func (d *roleDetector) inFlight() (harness.Prediction, bool) {
	var p harness.Prediction
	for i, sent := range []time.Duration{0, delackMax} {
		st := tcprules.ConnState{TCPState: "ESTABLISHED", Unacked: 1, RTOS: tcprules.RTOFast().Seconds(),
			SinceDataSentS: sent.Seconds(), SinceDataRecvS: sent.Seconds(), SinceAckRecvS: sent.Seconds()}
		f, ok := d.PredictSample(st, harness.EffectSilent)
		if !ok {
			return p, false
		}
		if f.Never {
			return harness.Prediction{Never: true, Reasons: slices.Clone(d.watcher.Reasons), Rule: "with a request in flight, " + f.Rule}, true
		}
		lo, hi := time.Duration(f.LoS*float64(time.Second)), time.Duration(f.HiS*float64(time.Second))
		if i == 0 {
			p.Lo, p.Hi, p.Rule = lo, hi, f.Rule
		}
		p.Lo, p.Hi = min(p.Lo, lo), max(p.Hi, hi)
	}
	p.Reasons = slices.Clone(d.watcher.Reasons)
	p.Rule = fmt.Sprintf("with a request in flight, sent 0–%v before the fault (TCP_DELACK_MAX: else it would have been acknowledged): [%v, %v]; %s", delackMax, p.Lo.Round(time.Millisecond), p.Hi.Round(time.Millisecond), p.Rule)
	return p, true
}

// closeSlack is what a read blocked on the connection takes to return
// once a FIN or RST arrives, as harness.EffectTheory allows it: tens of µs
// over two veth hops, 50 ms on a loaded 2-core machine.
const closeSlack = 50 * time.Millisecond

// OwnReasons are the reasons the role declares, in its library's own
// words: the cell's reasons under every fault (harness theory's worder).
func (d *roleDetector) OwnReasons() []string { return slices.Clone(d.watcher.Reasons) }

// PredictClose is how the role meets a FIN or an RST, as it declares it
// (protocol.Watcher.Close): at once when a read is always blocked on its
// connection, within its period when it looks at the connection only
// every so often, never when it never reads it.
func (d *roleDetector) PredictClose(e harness.Effect) harness.Prediction {
	cl, _ := d.watcher.CloseFor(d.config())
	what := map[harness.Effect]string{harness.EffectFIN: "a FIN", harness.EffectRST: "an RST"}[e]
	if what == "" {
		what = "a FIN or an RST"
	}
	p := harness.Prediction{Reasons: slices.Clone(d.watcher.Reasons)}
	switch {
	case cl.NeverReads:
		p.Never = true
		p.Rule = fmt.Sprintf("declared by role %s: it never reads its connection, so %s goes unnoticed", d.Name, what)
	case cl.Every > 0:
		p.Hi = cl.Every + closeSlack
		p.Rule = fmt.Sprintf("declared by role %s: it looks at its connection every %v, so it meets %s at its next look (%v allowed for a loaded machine)", d.Name, cl.Every, what, closeSlack)
	default:
		p.Hi = closeSlack
		p.Rule = fmt.Sprintf("declared by role %s: a read is always blocked on its connection and returns when %s arrives (%v allowed for a loaded machine)", d.Name, what, closeSlack)
	}
	return p
}

// PredictSample predicts one sample of a silent fault from the watched
// connection's state at the fault, with the kernel's rules (package
// tcprules, the ones the built-in detectors use) applied to the kernel
// settings the role declares (protocol.Watcher.Kernel): while a request is
// unacknowledged the retransmission timer (tcp_retries2, or
// TCP_USER_TIMEOUT), otherwise keepalive; the library's declared Slack
// widens the upper bound. false when the role declares no kernel settings
// for its config (a timer of its library's own decides) or the fault is
// not silent.
func (d *roleDetector) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	if e != harness.EffectSilent {
		return tcprules.Forecast{}, false
	}
	k, err := d.watcher.KernelFor(d.config())
	if err != nil || k == nil {
		return tcprules.Forecast{}, false
	}
	retries2, rtoMax := k.Retries2, k.RTOMax
	if retries2 == 0 {
		retries2 = tcprules.DefaultRetries2
	}
	if rtoMax == 0 {
		rtoMax = tcprules.RTOMax
	}
	var f tcprules.Forecast
	switch {
	case st.InFlight():
		f = tcprules.Retransmission(st, retries2, rtoMax, k.UserTimeout)
		if k.KeepCnt > 0 {
			f.Rule = "keepalive is inert while data is in flight (tcp_timer.c tcp_keepalive_timer L817–821): " + f.Rule
		}
	case k.KeepCnt > 0:
		f = tcprules.Keepalive(st, k.KeepIdle, k.KeepIntvl, k.KeepCnt, k.UserTimeout)
	default:
		f = tcprules.Never("no keepalive and nothing in flight: no kernel timer runs on the idle connection")
	}
	if k.Slack > 0 && !f.Never {
		f.HiS += k.Slack.Seconds()
		f.Rule += fmt.Sprintf("; the library reports it within %v", k.Slack)
	}
	f.Rule = fmt.Sprintf("declared by role %s (its socket's kernel settings): %s", d.Name, f.Rule)
	return f, true
}

// config is the role's HALFOPEN_CONFIG.
func (d *roleDetector) config() protocol.Config { return protocol.Config(d.Config) }

// Watch is never called: the role's own process is the watcher.
func (d *roleDetector) Watch(context.Context, *harness.Watch) harness.Decision {
	return harness.Decide("error: a role's watcher is its own process")
}

// WatcherProgram re-executes this binary as the role's watcher.
func (d *roleDetector) WatcherProgram(side protocol.Side, addr string) harness.ProcSpec {
	return d.program("watcher", addr)
}

// PeerProgram re-executes this binary as the role's own peer (peer=self).
func (d *roleDetector) PeerProgram(side protocol.Side, addr string) (harness.ProcSpec, bool) {
	if d.Peer != "self" {
		return harness.ProcSpec{}, false
	}
	return d.program("peer", addr), true
}

// PeerService is the real server that is the peer, if any.
func (d *roleDetector) PeerService() (harness.Service, bool) {
	if d.service == nil {
		return harness.Service{}, false
	}
	return *d.service, true
}

func (d *roleDetector) program(role, addr string) harness.ProcSpec {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cfg, _ := json.Marshal(d.Config)
	label := role
	if role == "peer" {
		// Not "peer": faults that command halfopen's echo peer look for it.
		label = "peer role"
	}
	// The test binary lives where go test built it, often out of reach of
	// an unprivileged user: roles run as root.
	// The role's own variables first: the protocol's, after them, win
	// (Validate refuses a role that sets one).
	env, _ := d.watcher.Environ()
	return harness.ProcSpec{
		Path: exe, Label: label, Strict: true,
		Env: append(env, envRole+"="+d.Name, protocol.EnvRole+"="+role, protocol.EnvAddr+"="+addr, protocol.EnvConfig+"="+string(cfg)),
	}
}

// RunIfRole runs this process as a registered role if the harness started
// it as one, and exits; otherwise it returns. Call it first in TestMain.
func RunIfRole() {
	name := os.Getenv(envRole)
	if name == "" {
		return
	}
	w, ok := lookupRole(name)
	if !ok {
		fmt.Fprintf(os.Stderr, "roles: this binary has no role %q; it has %v\n", name, roleNames())
		os.Exit(2)
	}
	protocol.Main(w)
}
