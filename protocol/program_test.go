package protocol

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// running is a Run in the test's process, with its output as events.
type running struct {
	t      *testing.T
	events chan Event
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, env Env, w Watcher) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &running{t: t, events: make(chan Event, 64), cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := Run(ctx, env, w, pw)
		pw.Close()
		r.done <- err
	}()
	go func() {
		defer close(r.events)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var ev Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.TNs <= 0 {
				ev = Event{Event: "not protocol: " + sc.Text()}
			}
			r.events <- ev
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return 5 s after its context ended")
		}
	})
	return r
}

// next waits for the next event, which must be want.
func (r *running) next(want string) Event {
	r.t.Helper()
	select {
	case ev, ok := <-r.events:
		if !ok {
			r.t.Fatalf("output ended, want %s", want)
		}
		if ev.Event != want {
			r.t.Fatalf("got %+v, want %s", ev, want)
		}
		return ev
	case <-time.After(10 * time.Second):
		r.t.Fatalf("no %s within 10 s", want)
	}
	return Event{}
}

// stop ends the run as SIGTERM would and returns what Run returned.
func (r *running) stop() error {
	r.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(time.Second):
		r.t.Fatal("Run did not return within 1 s of its context ending")
	}
	return nil
}

// readUntilError is the simplest watcher: a blocking read.
func readUntilError(ctx context.Context, s *Session) (string, error) {
	c, err := s.Connect(ctx)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 1024)
	for {
		if _, err := c.Read(buf); err != nil {
			return Reason(err), nil
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// otherEnd is the test's end of the connection: it listens when the program
// dials, and dials when the program listens.
type otherEnd struct {
	t    *testing.T
	ln   net.Listener
	addr string
}

func newOtherEnd(t *testing.T, programListens bool) *otherEnd {
	o := &otherEnd{t: t}
	if programListens {
		o.addr = freeAddr(t)
		return o
	}
	var err error
	if o.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.ln.Close() })
	o.addr = o.ln.Addr().String()
	return o
}

// connect makes one connection with the program (after its ready).
func (o *otherEnd) connect() net.Conn {
	o.t.Helper()
	var (
		c   net.Conn
		err error
	)
	if o.ln != nil {
		c, err = o.ln.Accept()
	} else {
		c, err = net.DialTimeout("tcp", o.addr, 5*time.Second)
	}
	if err != nil {
		o.t.Fatal(err)
	}
	o.t.Cleanup(func() { c.Close() })
	return c
}

func TestRunWatcher(t *testing.T) {
	for _, side := range []Side{SideServer, SideClient} {
		for _, reconnect := range []bool{false, true} {
			name := string(side)
			if reconnect {
				name += "/reconnect"
			}
			t.Run(name, func(t *testing.T) {
				env := Env{Role: RoleWatcher, Side: side, Config: Config{}, Reconnect: reconnect}
				other := newOtherEnd(t, env.Listens())
				env.Addr = other.addr
				r := start(t, env, Watcher{Name: "reader", Predicted: &Range{Lo: time.Second, Hi: 2 * time.Second}, Watch: readUntilError})
				hello := r.next(EventHello)
				if hello.Name != "reader" || hello.Protocol != 1 || hello.PredictedS == nil || *hello.PredictedS != [2]float64{1, 2} {
					t.Fatalf("hello %+v", hello)
				}
				ready := r.next(EventReady)
				c := other.connect()
				connected := r.next(EventConnected)
				closedAt := Now()
				c.Close()
				dead := r.next(EventDead)
				if dead.Reason != "EOF" {
					t.Errorf("dead because %q, want EOF", dead.Reason)
				}
				if !(hello.TNs < ready.TNs && ready.TNs < connected.TNs && connected.TNs < closedAt && closedAt < dead.TNs) {
					t.Errorf("stamps out of order: hello %d ready %d connected %d closed %d dead %d", hello.TNs, ready.TNs, connected.TNs, closedAt, dead.TNs)
				}
				if reconnect {
					other.connect()
					r.next(EventConnected)
				}
				if err := r.stop(); err != nil {
					t.Fatalf("Run after the end: %v", err)
				}
				select {
				case ev, ok := <-r.events:
					if ok {
						t.Fatalf("after the last expected event: %+v", ev)
					}
				case <-time.After(time.Second):
					t.Fatal("output not closed")
				}
			})
		}
	}
}

// TestRunLibraryDialsItself: a library that dials by itself reports
// connected through Session.Connected; giving up before that is an error,
// or, with reconnect, one more try.
func TestRunLibraryDialsItself(t *testing.T) {
	tests := []struct {
		name      string
		report    bool // the watcher calls s.Connected
		reconnect bool
		want      []string
		wantErr   string
	}{
		{"connected then dead", true, false, []string{EventHello, EventReady, EventConnected, EventDead}, ""},
		{"gave up before connected", false, false, []string{EventHello, EventReady, EventLog}, "watch gave up (EOF) before it reported connected"},
		{"gave up before connected, tries again", false, true, []string{EventHello, EventReady, EventLog, EventLog}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := newOtherEnd(t, false)
			go func() {
				for {
					c, err := other.ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			env := Env{Role: RoleWatcher, Side: SideClient, Addr: other.addr, Config: Config{}, Reconnect: tt.reconnect}
			r := start(t, env, Watcher{Name: "self-dialer", Watch: func(ctx context.Context, s *Session) (string, error) {
				var d net.Dialer
				c, err := d.DialContext(ctx, "tcp", s.Addr)
				if err != nil {
					return "", err
				}
				defer c.Close()
				if tt.report {
					s.Connected()
					s.Connected() // once per session
				}
				_, err = c.Read(make([]byte, 1))
				return Reason(err), nil
			}})
			for _, want := range tt.want {
				r.next(want)
			}
			if tt.wantErr == "" {
				if err := r.stop(); err != nil {
					t.Fatal(err)
				}
				return
			}
			select {
			case err := <-r.done:
				r.done <- err
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Run: %v, want %q", err, tt.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not end")
			}
		})
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	env := Env{Role: RoleWatcher, Side: SideServer, Addr: "127.0.0.1:1", Config: Config{"idle": "x"}}
	watch := func(context.Context, *Session) (string, error) { return "", nil }
	tests := []struct {
		name    string
		role    Role
		w       Watcher
		wantErr string
	}{
		{"no name", RoleWatcher, Watcher{Watch: watch}, "the Watcher has no Name"},
		{"no watch", RoleWatcher, Watcher{Name: "w"}, "w has no Watch function"},
		{"no peer role", RolePeer, Watcher{Name: "w", Watch: watch}, "w has no peer role: run it with peer=builtin"},
		{"backwards range", RoleWatcher, Watcher{Name: "w", Watch: watch, Predicted: &Range{Lo: 2 * time.Second, Hi: time.Second}}, "w predicts [2s, 1s], which is not a range with 0 <= lo <= hi"},
		{"close fails", RoleWatcher, Watcher{Name: "w", Watch: watch, Close: func(c Config) (Close, error) {
			_, err := c.Duration("idle", 0)
			return Close{}, err
		}}, `config key idle="x" is not a Go duration such as 200ms, 1.5s or 1m30s`},
		{"negative poll", RoleWatcher, Watcher{Name: "w", Watch: watch, Close: func(Config) (Close, error) {
			return Close{Every: -time.Second}, nil
		}}, "w looks at its connection every -1s, which is negative"},
		{"kernel fails", RoleWatcher, Watcher{Name: "w", Watch: watch, Kernel: func(c Config) (*Kernel, error) {
			_, err := c.Int("idle", 0)
			return nil, err
		}}, `config key idle="x" is not a whole number`},
		{"sub-second keepalive", RoleWatcher, Watcher{Name: "w", Watch: watch, Kernel: func(Config) (*Kernel, error) {
			return &Kernel{KeepIdle: 500 * time.Millisecond, KeepIntvl: time.Second, KeepCnt: 3}, nil
		}}, "w: keepalive idle=500ms intvl=1s: the kernel takes whole seconds >= 1 s"},
		{"negative user timeout", RoleWatcher, Watcher{Name: "w", Watch: watch, Kernel: func(Config) (*Kernel, error) {
			return &Kernel{UserTimeout: -time.Second}, nil
		}}, "w: kernel settings {KeepIdle:0s KeepIntvl:0s KeepCnt:0 UserTimeout:-1s Retries2:0 RTOMax:0s Slack:0s}: none may be negative"},
		{"empty reason", RoleWatcher, Watcher{Name: "w", Watch: watch, Reasons: []string{"EOF", ""}}, "w declares an empty reason"},
		{"predict fails", RoleWatcher, Watcher{Name: "w", Watch: watch, Predict: func(c Config) (*Range, error) {
			_, err := c.Duration("idle", 0)
			return nil, err
		}}, `config key idle="x" is not a Go duration such as 200ms, 1.5s or 1m30s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			env := env
			env.Role = tt.role
			err := Run(context.Background(), env, tt.w, &out)
			if err == nil || err.Error() != tt.wantErr || !errors.As(err, new(*badInput)) {
				t.Fatalf("Run: %v, want bad input %q", err, tt.wantErr)
			}
			if out.Len() != 0 {
				t.Fatalf("printed %q before refusing", out.String())
			}
		})
	}
}

// TestRunFailures: errors after hello are not bad input, and are logged.
func TestRunFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name    string
		env     Env
		watch   func(context.Context, *Session) (string, error)
		wantErr string
	}{
		{"address in use", Env{Role: RoleWatcher, Side: SideServer, Addr: busy.Addr().String()},
			readUntilError, "address already in use"},
		{"watch fails", Env{Role: RoleWatcher, Side: SideClient, Addr: busy.Addr().String()},
			func(context.Context, *Session) (string, error) { return "", errors.New("no pool") }, "watch: no pool"},
		{"watch says nothing", Env{Role: RoleWatcher, Side: SideClient, Addr: busy.Addr().String()},
			func(context.Context, *Session) (string, error) { return "", nil }, "watch returned neither a reason nor an error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := Run(context.Background(), tt.env, Watcher{Name: "w", Watch: tt.watch}, &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.As(err, new(*badInput)) {
				t.Fatalf("Run: %v, want a failure containing %q", err, tt.wantErr)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			var last Event
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Event != EventLog || !strings.Contains(last.Msg, tt.wantErr) {
				t.Fatalf("last line %q, want a log of the error", lines[len(lines)-1])
			}
		})
	}
}

// TestSessionSockets reads back from the kernel what the sockets the SDK
// makes are: plain TCP (not Go's default MPTCP listener) without keepalive
// (not Go's default 15 s).
func TestSessionSockets(t *testing.T) {
	for _, side := range []Side{SideServer, SideClient} {
		t.Run(string(side), func(t *testing.T) {
			env := Env{Role: RoleWatcher, Side: side, Config: Config{}}
			other := newOtherEnd(t, env.Listens())
			env.Addr = other.addr
			type socket struct {
				what             string
				keepalive, proto int
			}
			got := make(chan []socket, 1)
			r := start(t, env, Watcher{Name: "sockets", Watch: func(ctx context.Context, s *Session) (string, error) {
				c, err := s.Connect(ctx)
				if err != nil {
					return "", err
				}
				var socks []socket
				ka, proto, err := sockopts(c.(syscall.Conn))
				if err != nil {
					return "", err
				}
				socks = append(socks, socket{"connection", ka, proto})
				if ln := s.Listener(); ln != nil {
					_, proto, err := sockopts(ln.(syscall.Conn))
					if err != nil {
						return "", err
					}
					socks = append(socks, socket{"listener", 0, proto})
				}
				got <- socks
				<-ctx.Done()
				return "", ctx.Err()
			}})
			r.next(EventHello)
			r.next(EventReady)
			other.connect()
			r.next(EventConnected)
			select {
			case socks := <-got:
				if want := 1 + btoi(env.Listens()); len(socks) != want {
					t.Fatalf("%d sockets, want %d", len(socks), want)
				}
				for _, s := range socks {
					if s.keepalive != 0 {
						t.Errorf("%s: SO_KEEPALIVE is %d, want 0", s.what, s.keepalive)
					}
					if s.proto != unix.IPPROTO_TCP {
						t.Errorf("%s: SO_PROTOCOL is %d, want IPPROTO_TCP (%d)", s.what, s.proto, unix.IPPROTO_TCP)
					}
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the watcher did not read its sockets' options")
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sockopts reads SO_KEEPALIVE and SO_PROTOCOL of a socket.
func sockopts(c syscall.Conn) (keepalive, proto int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var kaErr, protoErr error
	if err := rc.Control(func(fd uintptr) {
		keepalive, kaErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		proto, protoErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
	}); err != nil {
		return 0, 0, err
	}
	return keepalive, proto, errors.Join(kaErr, protoErr)
}

// TestEchoPeer runs the Echo peer role on both sides: it echoes, reads
// urgent bytes in band, and connects again: listening, it serves a second
// connection while the first is still open; dialing, it dials again after
// its connection ended.
func TestEchoPeer(t *testing.T) {
	for _, side := range []Side{SideServer, SideClient} {
		t.Run(string(side), func(t *testing.T) {
			env := Env{Role: RolePeer, Side: side, Config: Config{}, Reconnect: true}
			other := newOtherEnd(t, env.Listens())
			env.Addr = other.addr
			r := start(t, env, Watcher{Name: "echo", Watch: readUntilError, Peer: Echo})
			if hello := r.next(EventHello); hello.PredictedS != nil {
				t.Errorf("a peer predicts %v", *hello.PredictedS)
			}
			r.next(EventReady)
			first := other.connect()
			roundTrip(t, first, false)
			if !env.Listens() {
				first.Close() // the peer dials again after its connection ends
			}
			second := other.connect() // when listening, with the first still open
			roundTrip(t, second, true)
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// roundTrip writes "ping" (with an urgent byte in the middle when oob) and
// reads it back.
func roundTrip(t *testing.T, c net.Conn, oob bool) {
	t.Helper()
	if _, err := c.Write([]byte("pi")); err != nil {
		t.Fatal(err)
	}
	if oob {
		rc, err := c.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var sendErr error
		if err := rc.Write(func(fd uintptr) bool {
			sendErr = unix.Send(int(fd), []byte{'!'}, unix.MSG_OOB)
			return true
		}); err != nil || sendErr != nil {
			t.Fatal(err, sendErr)
		}
	}
	if _, err := c.Write([]byte("ng")); err != nil {
		t.Fatal(err)
	}
	want := "ping"
	if oob {
		want = "pi!ng"
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("echo: %q, %v; want %q", got, err, want)
	}
}

// TestDeclarations: what a watcher declares for a config, read back as
// theory reads it (CloseFor, KernelFor), defaults included.
func TestDeclarations(t *testing.T) {
	every := func(c Config) (Close, error) {
		d, err := c.Duration("every", 2*time.Second)
		return Close{Every: d}, err
	}
	keepalive := func(c Config) (*Kernel, error) {
		if c.Get("deadline", "") != "" {
			return nil, nil // a deadline of the library's own decides
		}
		u, err := c.Duration("usertimeout", 0)
		return &Kernel{KeepIdle: time.Second, KeepIntvl: time.Second, KeepCnt: 4, UserTimeout: u}, err
	}
	tests := []struct {
		name       string
		w          Watcher
		config     Config
		wantClose  Close
		wantKernel *Kernel
	}{
		{"nothing declared: at once, no kernel rule", Watcher{Name: "w"}, nil, Close{}, nil},
		{"a poller", Watcher{Name: "w", Close: every}, Config{"every": "200ms"}, Close{Every: 200 * time.Millisecond}, nil},
		{"a poller's default", Watcher{Name: "w", Close: every}, Config{}, Close{Every: 2 * time.Second}, nil},
		{"never reads", Watcher{Name: "w", Close: func(Config) (Close, error) { return Close{NeverReads: true}, nil }}, nil, Close{NeverReads: true}, nil},
		{"keepalive and a user timeout", Watcher{Name: "w", Kernel: keepalive}, Config{"usertimeout": "5s"}, Close{},
			&Kernel{KeepIdle: time.Second, KeepIntvl: time.Second, KeepCnt: 4, UserTimeout: 5 * time.Second}},
		{"a library deadline: no kernel rule", Watcher{Name: "w", Kernel: keepalive}, Config{"deadline": "4s"}, Close{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := tt.w.CloseFor(tt.config)
			if err != nil || cl != tt.wantClose {
				t.Errorf("CloseFor = %+v, %v; want %+v", cl, err, tt.wantClose)
			}
			k, err := tt.w.KernelFor(tt.config)
			if err != nil || (k == nil) != (tt.wantKernel == nil) || k != nil && *k != *tt.wantKernel {
				t.Errorf("KernelFor = %+v, %v; want %+v", k, err, tt.wantKernel)
			}
		})
	}
}

// TestUndeclaredReasonIsLogged: a watcher that gives up with a reason it
// did not declare still says dead, and then logs that the reason is not
// among its declared ones; a declared reason is not logged.
func TestUndeclaredReasonIsLogged(t *testing.T) {
	for _, tt := range []struct {
		reasons []string
		wantLog bool
	}{
		{[]string{"EOF"}, false},
		{[]string{"ETIMEDOUT", "stale connection"}, true},
		{nil, false},
	} {
		t.Run(strings.Join(tt.reasons, ","), func(t *testing.T) {
			env := Env{Role: RoleWatcher, Side: SideClient, Config: Config{}}
			other := newOtherEnd(t, env.Listens())
			env.Addr = other.addr
			r := start(t, env, Watcher{Name: "reader", Reasons: tt.reasons, Watch: readUntilError})
			r.next(EventHello)
			r.next(EventReady)
			c := other.connect()
			r.next(EventConnected)
			c.Close()
			if dead := r.next(EventDead); dead.Reason != "EOF" {
				t.Fatalf("dead because %q, want EOF", dead.Reason)
			}
			if tt.wantLog {
				ev := r.next(EventLog)
				if want := `reader: gave up with "EOF", which is not among its declared reasons`; !strings.Contains(ev.Msg, want) {
					t.Fatalf("log %q, want it to contain %q", ev.Msg, want)
				}
			}
			if err := r.stop(); err != nil {
				t.Fatalf("Run after the end: %v", err)
			}
			select {
			case ev, ok := <-r.events:
				if ok {
					t.Fatalf("after the last expected event: %+v", ev)
				}
			case <-time.After(time.Second):
				t.Fatal("output not closed")
			}
		})
	}
}
