package detectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
)

// External is any executable speaking the detector protocol, version 1
// (docs/protocol.md): started inside the watcher host with HALFOPEN_ROLE,
// HALFOPEN_SIDE, HALFOPEN_ADDR and HALFOPEN_CONFIG (every key of the spec
// but cmd, peer and privileged, as a JSON object of strings), it prints
// JSON lines (hello, ready, connected, dead, log) stamped with its
// CLOCK_MONOTONIC. Its peer is halfopen's echo peer (peer=builtin), the same
// program as peer (peer=self), or another one (peer=PATH). It runs as
// nobody unless privileged=true.
//
// Its prediction is the one its hello declares. halfopen learns it before
// any lab exists, by starting cmd once as a watcher in a harness.Probe: a
// network namespace of its own that holds nothing but a loopback that is
// down (so it can reach nothing), in a cgroup of its own, under a reaper of
// its own, torn down with everything in it as labs are. The program never
// runs on the host's namespace. It is killed, with whatever it forked, as
// soon as hello arrives. hello must therefore come first and depend only on
// HALFOPEN_CONFIG.
type External struct {
	Cmd        string            `param:"cmd" help:"the executable (absolute, relative to the working directory, or found in PATH)"`
	Peer       string            `param:"peer" default:"builtin" help:"builtin (halfopen's echo peer), self (cmd again as peer), a path, or service:NAME (a real server, harness.RegisterService)"`
	Privileged bool              `param:"privileged" default:"false" help:"run as root instead of nobody"`
	Config     map[string]string `param:"*" help:"passed to the program in HALFOPEN_CONFIG"`

	path, peerPath string
	service        *harness.Service
	hello          *protocol.Event
}

func init() {
	harness.RegisterDetector("external", "any executable speaking the detector protocol v1 (docs/protocol.md); other keys go to HALFOPEN_CONFIG", &External{})
}

// Validate resolves cmd (and a peer path), checks that the user who will
// run them can, and reads the program's hello.
func (d *External) Validate() error {
	if d.Cmd == "" {
		return errors.New("cmd is missing; write external:cmd=PATH")
	}
	var err error
	if d.path, err = d.resolve(d.Cmd); err != nil {
		return err
	}
	switch svc, isService := strings.CutPrefix(d.Peer, "service:"); {
	case d.Peer == "builtin" || d.Peer == "":
	case d.Peer == "self":
		d.peerPath = d.path
	case isService:
		s, ok := harness.LookupService(svc)
		if !ok {
			return fmt.Errorf("peer=service:%s: no service is called %q; the known services are %v (a gate file or harness.RegisterService defines them)", svc, svc, harness.ServiceNames())
		}
		if err := s.Check(); err != nil {
			return err
		}
		d.service = &s
	default:
		if d.peerPath, err = d.resolve(d.Peer); err != nil {
			return fmt.Errorf("peer: %w", err)
		}
	}
	if os.Geteuid() == 0 {
		ev, err := readHello(d.path, d.configJSON(), !d.Privileged)
		if err != nil {
			return fmt.Errorf("%s: %w", d.Cmd, err)
		}
		d.hello = &ev
	}
	return nil
}

// resolve finds an executable and checks that the user who runs it can.
func (d *External) resolve(name string) (string, error) {
	p := name
	if !strings.Contains(name, "/") {
		lp, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("cmd %q is not in PATH: %w", name, err)
		}
		p = lp
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("cmd %q: %w", name, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("cmd %q cannot be found: %w", name, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("cmd %s is not an executable file (mode %s)", abs, fi.Mode())
	}
	if d.Privileged {
		return abs, nil
	}
	// nobody needs the execute bit for others, and to search every directory
	// above (a script also needs to be readable).
	if fi.Mode().Perm()&0o001 == 0 {
		return "", fmt.Errorf("cmd %s is not executable by the unprivileged user nobody that runs it (mode %s); chmod o+rx it, or pass privileged=true", abs, fi.Mode())
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return "", fmt.Errorf("cmd %s: %w", abs, err)
		}
		if di.Mode().Perm()&0o001 == 0 {
			return "", fmt.Errorf("cmd %s is out of reach of the unprivileged user nobody that runs it: directory %s is not searchable by others (mode %s); copy it under /tmp, or pass privileged=true", abs, dir, di.Mode())
		}
		if dir == "/" {
			break
		}
	}
	return abs, nil
}

// configJSON is HALFOPEN_CONFIG: the keys the harness does not take itself.
func (d *External) configJSON() string {
	keys := make([]string, 0, len(d.Config))
	for k := range d.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		m[k] = d.Config[k]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// Predict returns the range the program's hello declares; predicted_s null
// means it declares none, which the harness takes as "never".
func (d *External) Predict() harness.Prediction {
	reasons := []string{"ETIMEDOUT", "EHOSTUNREACH", "ECONNRESET", "EPIPE", "EOF", "heartbeat"}
	switch {
	case d.hello == nil:
		return harness.Prediction{Never: true, Rule: "declared by the program's hello, which is read only when halfopen runs as root"}
	case d.hello.PredictedS == nil:
		return harness.Prediction{Never: true, Rule: fmt.Sprintf("declared by %s's hello: predicted_s null (no range: a silent peer is never detected)", d.hello.Name)}
	}
	p := d.hello.PredictedS
	return harness.Prediction{
		Lo: time.Duration(p[0] * float64(time.Second)), Hi: time.Duration(p[1] * float64(time.Second)),
		Reasons: reasons,
		Rule:    fmt.Sprintf("declared by %s's hello: predicted_s [%g, %g]", d.hello.Name, p[0], p[1]),
	}
}

// Watch is never called: the program is the watcher.
func (d *External) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	return harness.Decide("error: the external detector's watcher is its program, not halfopen's agent")
}

func (d *External) spec(path, role string, side protocol.Side, addr string) harness.ProcSpec {
	// "peer" is the built-in peer's label, which faults that command the
	// peer (graceful-close, abortive-close) look for: a foreign peer must
	// not answer to it, so that they fail at once instead of waiting.
	label := role
	if role == "peer" {
		label = "peer program"
	}
	return harness.ForeignProc(path, label, d.Privileged,
		"HALFOPEN_ROLE="+role, "HALFOPEN_ADDR="+addr, "HALFOPEN_CONFIG="+d.configJSON())
}

// PeerService returns the real server that is the peer, for
// peer=service:NAME.
func (d *External) PeerService() (harness.Service, bool) {
	if d.service == nil {
		return harness.Service{}, false
	}
	return *d.service, true
}

// WatcherProgram starts cmd as the watcher.
func (d *External) WatcherProgram(side protocol.Side, addr string) harness.ProcSpec {
	return d.spec(d.path, "watcher", side, addr)
}

// PeerProgram starts cmd (peer=self) or another program as the peer, or
// leaves the peer to halfopen's echo peer.
func (d *External) PeerProgram(side protocol.Side, addr string) (harness.ProcSpec, bool) {
	if d.peerPath == "" {
		return harness.ProcSpec{}, false
	}
	return d.spec(d.peerPath, "peer", side, addr), true
}

var helloCache sync.Map // path + config -> protocol.Event

// helloWithin is how long a program has to say hello once started.
const helloWithin = 2 * time.Second

// readHello starts the program as a watcher in a harness.Probe (a network
// namespace of its own whose loopback is down, a cgroup of its own, a
// reaper of its own) and returns its first line, which must be a protocol
// v1 hello. The probe, and whatever the program left in it, is torn down as
// soon as the line arrives, or after helloWithin: the program never runs on
// the host, and nothing it forks outlives the probe.
func readHello(path, config string, unprivileged bool) (ev protocol.Event, err error) {
	key := path + "\x00" + config
	if ev, ok := helloCache.Load(key); ok {
		return ev.(protocol.Event), nil
	}
	probe, err := harness.NewProbe(context.Background())
	if err != nil {
		return protocol.Event{}, fmt.Errorf("make a namespace of its own to read its hello in: %w", err)
	}
	defer func() {
		if cerr := probe.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("after reading its hello: %w", cerr))
		}
	}()
	p, err := probe.Host.Start(harness.ForeignProc(path, "its hello", !unprivileged,
		"HALFOPEN_PROTOCOL=1", "HALFOPEN_ROLE=watcher", "HALFOPEN_SIDE=server", "HALFOPEN_ADDR=127.0.0.1:7000", "HALFOPEN_CONFIG="+config))
	if err != nil {
		return protocol.Event{}, fmt.Errorf("start it to read its hello: %w", err)
	}
	timeout := time.NewTimer(helloWithin)
	defer timeout.Stop()
	// A line that breaks the protocol yields no event, only ProtocolErr:
	// look for one while waiting.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-p.Events():
			if perr := p.ProtocolErr(); perr != nil {
				return protocol.Event{}, fmt.Errorf("its first line breaks protocol v1: %w", perr)
			}
			if !ok {
				// Its output ended: wait for it, and for its last words.
				select {
				case <-p.Exited():
				case <-timeout.C:
				}
				if last := lastLine(p.Stderr()); last != "" {
					return protocol.Event{}, fmt.Errorf("it exited before its hello, saying: %s", last)
				}
				return protocol.Event{}, errors.New("it printed nothing before exiting, where protocol v1 wants a hello first")
			}
			if e.Event != protocol.EventHello {
				return protocol.Event{}, fmt.Errorf("its first line is %q, where protocol v1 wants hello", e.Event)
			}
			helloCache.Store(key, e)
			return e, nil
		case <-tick.C:
			if perr := p.ProtocolErr(); perr != nil {
				return protocol.Event{}, fmt.Errorf("its first line breaks protocol v1: %w", perr)
			}
		case <-timeout.C:
			return protocol.Event{}, fmt.Errorf("it said no hello within %v of starting", helloWithin)
		}
	}
}

// lastLine is the last non-empty line of text.
func lastLine(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
