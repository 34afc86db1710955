package protocol

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestRedial dials a library's way against a listener that comes up late,
// one that never comes (Redial gives up after its patience, saying so) and,
// with HALFOPEN_RECONNECT=1, keeps trying until ctx ends.
func TestRedial(t *testing.T) {
	tests := []struct {
		name      string
		reconnect bool
		listenAt  time.Duration // -1: never
		patience  time.Duration // >0: retry with this patience, not Redial's 5 s
		timeout   time.Duration
		wantErr   string
	}{
		{name: "listener comes up late", listenAt: 150 * time.Millisecond, timeout: 5 * time.Second},
		{name: "nobody listens: patience runs out", listenAt: -1, patience: 300 * time.Millisecond, timeout: 5 * time.Second, wantErr: "connection refused"},
		{name: "reconnect: until ctx ends", reconnect: true, listenAt: -1, timeout: 400 * time.Millisecond, wantErr: context.DeadlineExceeded.Error()},
		{name: "reconnect: listener back after an outage", reconnect: true, listenAt: 600 * time.Millisecond, timeout: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A free port on loopback, closed until listenAt.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			if tt.listenAt >= 0 {
				go func() {
					time.Sleep(tt.listenAt)
					l, err := net.Listen("tcp", addr)
					if err != nil {
						t.Error(err)
						return
					}
					t.Cleanup(func() { l.Close() })
					c, err := l.Accept()
					if err == nil {
						c.Close()
					}
				}()
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			s := newSession(ctx, Env{Role: RoleWatcher, Side: SideClient, Addr: addr, Reconnect: tt.reconnect}, NewEmitter(&bytes.Buffer{}), nil)
			defer s.close()
			attempts := 0
			dial := func(ctx context.Context) (net.Conn, error) {
				attempts++
				var d net.Dialer
				return d.DialContext(ctx, "tcp", addr)
			}
			start := time.Now()
			var c net.Conn
			if tt.patience > 0 {
				c, err = retry(ctx, addr, tt.patience, dial)
			} else {
				c, err = Redial(ctx, s, dial)
			}
			took := time.Since(start)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Redial: %v after %d attempts", err, attempts)
				}
				c.Close()
				if took < tt.listenAt || attempts < 2 {
					t.Errorf("connected after %v in %d attempts, before the listener came up at %v", took, attempts, tt.listenAt)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Redial error = %v, want one saying %q", err, tt.wantErr)
			}
			if tt.reconnect && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("with reconnect, the error is ctx's: %v", err)
			}
			if !tt.reconnect && (took < tt.patience || took > tt.patience+time.Second) {
				t.Errorf("gave up after %v, want about its patience %v", took, tt.patience)
			}
		})
	}
}

// TestSessionMark: a mark is printed as a v1 line that strict parsing
// takes back with its name; an empty name prints nothing.
func TestSessionMark(t *testing.T) {
	var buf bytes.Buffer
	s := newSession(context.Background(), Env{}, NewEmitter(&buf), nil)
	defer s.close()
	s.Mark("")
	s.Mark("redial")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines: %q", len(lines), buf.String())
	}
	ev, err := ParseEvent([]byte(lines[0]), true)
	if err != nil || ev.Event != EventMark || ev.Name != "redial" || ev.TNs <= 0 {
		t.Fatalf("mark line %s parsed as %+v, %v", lines[0], ev, err)
	}
}
