package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildExample builds examples/go/keepalive once for the tests that run it.
var buildExample = sync.OnceValues(func() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "protocol-example-")
	if err != nil {
		return "", err
	}
	exe := filepath.Join(dir, "keepalive")
	out, err := exec.Command(goTool, "build", "-o", exe, "../examples/go/keepalive").CombinedOutput()
	if err != nil {
		return "", errors.New("go build ../examples/go/keepalive: " + strings.TrimSpace(string(out)))
	}
	return exe, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if exe, err := buildExample(); err == nil {
		os.RemoveAll(filepath.Dir(exe))
	}
	os.Exit(code)
}

// program is the example running as a process, its stdout read as events.
type program struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr bytes.Buffer
	events chan Event
	exited chan error
}

func startProgram(t *testing.T, env ...string) *program {
	t.Helper()
	exe, err := buildExample()
	if err != nil {
		t.Fatal(err)
	}
	p := &program{t: t, events: make(chan Event, 64), exited: make(chan error, 1)}
	p.cmd = exec.Command(exe)
	p.cmd.Env = env
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.events <- strictEvent(sc.Bytes())
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("stderr of %s:\n%s", p.cmd.Path, p.stderr.String())
		}
	})
	return p
}

// strictEvent parses a line as the harness does: a JSON object with a known
// event and a positive t_ns; anything else becomes an event named for the
// problem, which no test expects.
func strictEvent(line []byte) Event {
	var raw map[string]any
	var ev Event
	if err := json.Unmarshal(line, &raw); err != nil {
		return Event{Event: "not JSON: " + string(line)}
	}
	if err := json.Unmarshal(line, &ev); err != nil || ev.TNs <= 0 {
		return Event{Event: "no positive t_ns: " + string(line)}
	}
	switch ev.Event {
	case EventHello:
		if _, ok := raw["predicted_s"]; !ok || ev.Protocol != Version || ev.Name == "" {
			return Event{Event: "bad hello: " + string(line)}
		}
	case EventDead:
		if ev.Reason == "" {
			return Event{Event: "dead without a reason: " + string(line)}
		}
	case EventReady, EventConnected, EventLog:
	default:
		return Event{Event: "unknown event: " + string(line)}
	}
	return ev
}

// next waits for the next event other than log, which must be want.
func (p *program) next(want string) Event {
	p.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				p.t.Fatalf("output ended, want %s", want)
			}
			if ev.Event == EventLog && want != EventLog {
				continue
			}
			if ev.Event != want {
				p.t.Fatalf("got %+v, want %s", ev, want)
			}
			return ev
		case <-timeout:
			p.t.Fatalf("no %s within 10 s", want)
		}
	}
}

// terminate sends SIGTERM and checks that the program exits with status 0
// within the protocol's 2 s.
func (p *program) terminate() {
	p.t.Helper()
	go func() { p.exited <- p.cmd.Wait() }()
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			p.t.Fatalf("after SIGTERM: %v, want exit status 0", err)
		}
		if d := time.Since(sent); d > 2*time.Second {
			p.t.Fatalf("exited %v after SIGTERM, more than the protocol's 2 s", d)
		}
	case <-time.After(3 * time.Second):
		p.t.Fatal("still running 3 s after SIGTERM")
	}
}

func protocolEnv(role Role, side Side, addr string, extra ...string) []string {
	return append([]string{
		"HALFOPEN_PROTOCOL=1", "HALFOPEN_ROLE=" + string(role), "HALFOPEN_SIDE=" + string(side),
		"HALFOPEN_ADDR=" + addr, `HALFOPEN_CONFIG={"idle":"1s","intvl":"1s","cnt":"3"}`,
	}, extra...)
}

// TestExampleWatcher runs the Go keepalive example as a watcher against an
// echo peer in the test, on loopback, on both sides: the peer closes, the
// watcher says dead with EOF, and SIGTERM ends it with status 0.
func TestExampleWatcher(t *testing.T) {
	for _, side := range []Side{SideServer, SideClient} {
		for _, reconnect := range []bool{false, true} {
			name := string(side)
			var extra []string
			if reconnect {
				name += "/reconnect"
				extra = append(extra, EnvReconnect+"=1")
			}
			t.Run(name, func(t *testing.T) {
				other := newOtherEnd(t, side == SideServer)
				begin := Now()
				p := startProgram(t, protocolEnv(RoleWatcher, side, other.addr, extra...)...)
				hello := p.next(EventHello)
				if hello.Name != "go-keepalive" || hello.PredictedS == nil || *hello.PredictedS != [2]float64{3, 4.5} {
					t.Errorf("hello %+v, want go-keepalive predicting [3, 4.5] (the timer wheel late by up to 1/8)", hello)
				}
				ready := p.next(EventReady)
				c := other.connect()
				go func() { _, _ = io.Copy(c, c) }()
				connected := p.next(EventConnected)
				closedAt := Now()
				c.Close()
				dead := p.next(EventDead)
				if dead.Reason != "EOF" {
					t.Errorf("dead because %q, want EOF", dead.Reason)
				}
				stamps := []int64{begin, hello.TNs, ready.TNs, connected.TNs, closedAt, dead.TNs, Now()}
				for i := 1; i < len(stamps); i++ {
					if stamps[i] <= stamps[i-1] {
						t.Errorf("stamps out of order (start, hello, ready, connected, closed, dead, now): %v", stamps)
						break
					}
				}
				if d := time.Duration(dead.TNs - closedAt); d > time.Second {
					t.Errorf("dead %v after the close, want at once", d)
				}
				if reconnect {
					c := other.connect()
					go func() { _, _ = io.Copy(c, c) }()
					if again := p.next(EventConnected); again.TNs <= dead.TNs {
						t.Errorf("connected again at %d, before dead at %d", again.TNs, dead.TNs)
					}
				}
				p.terminate()
			})
		}
	}
}

// TestExampleWithItselfAsPeer runs the example twice, watcher and peer
// (peer=self), and kills the peer: its kernel closes the connection, and the
// watcher says EOF.
func TestExampleWithItselfAsPeer(t *testing.T) {
	for _, side := range []Side{SideServer, SideClient} {
		t.Run(string(side), func(t *testing.T) {
			addr := freeAddr(t)
			first, second := RolePeer, RoleWatcher // the listening end starts first
			if side == SideServer {
				first, second = second, first
			}
			procs := map[Role]*program{}
			for _, role := range []Role{first, second} {
				p := startProgram(t, protocolEnv(role, side, addr)...)
				if hello := p.next(EventHello); role == RolePeer && hello.PredictedS != nil {
					t.Errorf("the peer predicts %v", *hello.PredictedS)
				}
				p.next(EventReady)
				procs[role] = p
			}
			procs[RoleWatcher].next(EventConnected)
			procs[RolePeer].next(EventConnected)
			if err := procs[RolePeer].cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			if dead := procs[RoleWatcher].next(EventDead); dead.Reason != "EOF" {
				t.Errorf("dead because %q, want EOF", dead.Reason)
			}
			procs[RoleWatcher].terminate()
		})
	}
}

// TestExampleBadInput: a wrong environment or config is one sentence on
// stderr, status 2, and nothing on stdout.
func TestExampleBadInput(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		wantErr string
	}{
		{"not started by halfopen", nil, "keepalive: HALFOPEN_PROTOCOL is not set"},
		{"another protocol", append(protocolEnv(RoleWatcher, SideClient, "127.0.0.1:9"), "HALFOPEN_PROTOCOL=2"), `keepalive: HALFOPEN_PROTOCOL is "2", but this program speaks protocol 1`},
		{"bad duration", append(protocolEnv(RoleWatcher, SideClient, "127.0.0.1:9"), `HALFOPEN_CONFIG={"idle":"soon"}`), `keepalive: config key idle="soon" is not a Go duration`},
		{"cnt out of range", append(protocolEnv(RoleWatcher, SideClient, "127.0.0.1:9"), `HALFOPEN_CONFIG={"cnt":"0"}`), "keepalive: config key cnt=0 is out of TCP_KEEPCNT's range 1..127"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exe, err := buildExample()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe)
			cmd.Env = tt.env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Errorf("exit: %v, want status 2", err)
			}
			if msg := stderr.String(); !strings.HasPrefix(msg, tt.wantErr) || strings.Count(msg, "\n") != 1 {
				t.Errorf("stderr %q, want one line starting %q", msg, tt.wantErr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// TestExampleCannotConnect: a watcher that cannot reach its peer exits with
// status 1 after 5 s of retries, having said why in a log line and on
// stderr.
func TestExampleCannotConnect(t *testing.T) {
	p := startProgram(t, protocolEnv(RoleWatcher, SideClient, freeAddr(t))...)
	p.next(EventHello)
	p.next(EventReady)
	var last Event
	for ev := range p.events {
		last = ev
	}
	err := p.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	const want = "connect: connection refused (tried for 5s)"
	if last.Event != EventLog || !strings.Contains(last.Msg, want) {
		t.Errorf("last line %+v, want a log saying %q", last, want)
	}
	if msg := p.stderr.String(); !strings.Contains(msg, want) || strings.Count(msg, "\n") != 1 {
		t.Errorf("stderr %q, want one line saying %q", msg, want)
	}
}
