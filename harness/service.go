package harness

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/halfopen/halfopen/protocol"
)

// Service is a real server run unmodified as the peer (redis-server,
// postgres, nats-server, a gRPC server binary), inside the peer host:
//
//	[peer: the service, listening] ==veth== [router] ==veth== [watcher: the library's client]
//
// Its address comes in placeholders in its arguments ({ip}, {port},
// {addr} = ip:port, {dir} = a fresh directory of the sample's own) and in
// the environment (HALFOPEN_ADDR, HALFOPEN_DIR). It is ready when its port
// accepts a TCP connection, or, for a program that speaks protocol v1
// (Protocol), when it prints "ready"; it never owes "connected", the
// watcher's is enough. Its output is kept per sample and its last lines are
// shown when a sample fails. It dies with its host on host-crash and is
// started again when a rebooted host returns, with no memory of any
// connection.
type Service struct {
	// Name names the service in specs (peer=NAME), reports and messages.
	Name string
	// Path is the executable, absolute or found in PATH; Args follow it.
	Path string
	Args []string
	Env  []string
	// Package is the Debian package that provides Path, named when it is
	// missing.
	Package string
	// User runs it as this system user (PostgreSQL refuses root).
	User string
	// Setup, when set, runs before each start as the orchestrator, with
	// the sample's directory (made and owned by User): initdb, a config file.
	Setup func(dir string) error
	// Protocol says the service prints protocol v1 "ready" when it listens.
	Protocol bool
	// ReadyTimeout bounds its start-up (default 20 s).
	ReadyTimeout time.Duration
}

var services = struct {
	sync.Mutex
	byName map[string]Service
}{byName: map[string]Service{}}

// RegisterService makes a service known by its name, for specs
// (external:...,peer=NAME) and gates. A duplicate name panics.
func RegisterService(s Service) {
	services.Lock()
	defer services.Unlock()
	if s.Name == "" || strings.ContainsAny(s.Name, ",:= ") {
		panic(fmt.Sprintf("halfopen: service name %q must be a plain word", s.Name))
	}
	if _, dup := services.byName[s.Name]; dup {
		panic(fmt.Sprintf("halfopen: service %q registered twice", s.Name))
	}
	services.byName[s.Name] = s
}

// LookupService returns a registered service.
func LookupService(name string) (Service, bool) {
	services.Lock()
	defer services.Unlock()
	s, ok := services.byName[name]
	return s, ok
}

// ServiceNames lists the registered services.
func ServiceNames() []string {
	services.Lock()
	defer services.Unlock()
	out := make([]string, 0, len(services.byName))
	for n := range services.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Check refuses, before any lab exists, a service whose program or user
// this machine does not have, in one sentence naming what provides it.
func (s Service) Check() error {
	if _, err := exec.LookPath(s.Path); err != nil {
		if s.Package != "" {
			return fmt.Errorf("service %s needs %s, which is not installed: apt-get install %s", s.Name, s.Path, s.Package)
		}
		return fmt.Errorf("service %s needs %s, which cannot be found: %w", s.Name, s.Path, err)
	}
	if s.User != "" {
		if _, err := credentialOf(s.User); err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
	}
	return nil
}

// procSpec returns how to start the service for an address and a
// directory, placeholders replaced: a real server, run as its User, its
// output kept unparsed (it speaks no protocol), not realtime.
func (s Service) procSpec(addr netip.AddrPort, dir string) ProcSpec {
	r := strings.NewReplacer("{ip}", addr.Addr().String(), "{port}", strconv.Itoa(int(addr.Port())), "{addr}", addr.String(), "{dir}", dir)
	args := make([]string, len(s.Args))
	for i, a := range s.Args {
		args[i] = r.Replace(a)
	}
	env := append([]string{envAddr + "=" + addr.String(), "HALFOPEN_DIR=" + dir}, s.Env...)
	return ProcSpec{Path: s.Path, Args: args, Env: env, Label: "service " + s.Name, User: s.User}
}

// waitReady waits until the service accepts a TCP connection on addr, from
// inside its own host (or prints "ready", for a protocol program), or
// fails with its last output lines.
func (s Service) waitReady(ctx context.Context, h *Host, p *Process, addr netip.AddrPort) error {
	timeout := s.ReadyTimeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if s.Protocol {
		_, err := p.WaitEvent(ctx, protocol.EventReady)
		return err
	}
	for {
		c, err := h.DialContext(ctx, "tcp", addr.String())
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("service %s exited before accepting on %s (%v): %s", s.Name, addr, p.ExitErr(), lastLines(p.Stderr(), 5))
		case <-ctx.Done():
			return fmt.Errorf("service %s did not accept on %s within %v: %s", s.Name, addr, timeout, lastLines(p.Stderr(), 5))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lastLines returns the last n lines of text, or a word saying there are none.
func lastLines(text string, n int) string {
	text = strings.TrimSpace(text)
	if text == "" {
		return "(it printed nothing)"
	}
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// credentialOf returns the uid and gid of a system user.
func credentialOf(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %s does not exist on this machine: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s has a uid %q or gid %q that is not a number", name, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
