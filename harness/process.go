package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcSpec describes a process to start inside a lab host.
type ProcSpec struct {
	// Path and Args (Args excludes argv[0]).
	Path string
	Args []string
	// Env is added to a minimal environment (PATH, HOME).
	Env []string
	// Dir is the working directory; empty means the current one.
	Dir string
	// Unprivileged runs the process as nobody (uid/gid 65534).
	Unprivileged bool
	// Strict accepts only protocol v1 events (for foreign programs).
	Strict bool
	// Label names the process in messages ("watcher", "peer", "toxiproxy").
	Label string
	// ExtraFiles are passed to the child as fds 3, 4, ...
	ExtraFiles []*os.File
	// Output, when set, receives the process's standard output and error
	// as they are, unparsed: a real server (a Service) speaks no protocol.
	// Its events channel is closed when the output ends.
	Output io.Writer
	// User runs the process as this system user (PostgreSQL refuses root).
	User string
}

// Process is a child process living in a lab host's namespace. Its standard
// output is read as protocol events; standard error is kept (the last 4 KiB)
// for error messages.
type Process struct {
	Label string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	events chan Event
	// protoErr holds the first protocol violation, if any.
	protoErr error

	mu      sync.Mutex
	stderr  tailBuffer
	exited  chan struct{}
	waitErr error
	killed  bool
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Events delivers the process's protocol events in order; it is closed when
// the process's standard output ends.
func (p *Process) Events() <-chan Event { return p.events }

// Exited is closed when the process has exited and been reaped.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr returns how the process ended (after Exited is closed).
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// ProtocolErr returns the first line that broke the protocol, if any.
func (p *Process) ProtocolErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.protoErr
}

// Stderr returns the tail of the process's standard error.
func (p *Process) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.TrimSpace(p.stderr.String())
}

// WaitEvent consumes the process's events until one named in names arrives,
// the process ends, or ctx ends. Log lines are kept for error messages.
func (p *Process) WaitEvent(ctx context.Context, names ...string) (Event, error) {
	for {
		select {
		case <-ctx.Done():
			return Event{}, fmt.Errorf("%s: waiting for %s: %w", p.Label, strings.Join(names, " or "), context.Cause(ctx))
		case ev, ok := <-p.events:
			if !ok {
				return Event{}, p.endedError("before saying " + strings.Join(names, " or "))
			}
			if ev.Event == EventError {
				return Event{}, fmt.Errorf("%s: %s", p.Label, ev.Msg)
			}
			if slices.Contains(names, ev.Event) {
				return ev, nil
			}
		}
	}
}

// endedError explains why a process's output ended: its protocol error, its
// exit status and the tail of its standard error.
func (p *Process) endedError(when string) error {
	<-p.exited
	msg := fmt.Sprintf("%s ended %s", p.Label, when)
	if err := p.ProtocolErr(); err != nil {
		msg += "; it printed a " + err.Error()
	}
	if err := p.ExitErr(); err != nil {
		msg += fmt.Sprintf(" (%v)", err)
	} else {
		msg += " (exit status 0)"
	}
	if tail := p.Stderr(); tail != "" {
		if i := strings.LastIndexByte(tail, '\n'); i >= 0 {
			tail = tail[i+1:]
		}
		msg += ": " + tail
	}
	return errors.New(msg)
}

// Send writes one command line to the process's standard input.
func (p *Process) Send(c Command) error {
	b, _ := json.Marshal(c)
	b = append(b, '\n')
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stdin == nil {
		return fmt.Errorf("%s: standard input is closed", p.Label)
	}
	if _, err := p.stdin.Write(b); err != nil {
		return fmt.Errorf("%s: send %s: %w", p.Label, c.Cmd, err)
	}
	return nil
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// Kill SIGKILLs the process's group and waits until it is reaped.
func (p *Process) Kill() error {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not die within 5 s of SIGKILL", p.Label, p.Pid())
	}
}

// Stop asks the process to end with SIGTERM, then kills it after grace.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		return p.Kill()
	}
}

// Start starts a process inside the host's namespace. The child is forked
// from a thread set into the namespace, so it and all its threads live
// there. It is tracked by the host and killed when the host goes.
func (h *Host) Start(spec ProcSpec) (*Process, error) {
	h.mu.Lock()
	gone := h.gone
	h.mu.Unlock()
	if gone {
		return nil, fmt.Errorf("host %s is gone", h.Name)
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	// HALFOPEN_RUN tags every process of a run, so that leak checks and
	// `halfopen gc` can find them by run.
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", envRun + "=" + h.runID}, spec.Env...)
	cmd.ExtraFiles = spec.ExtraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if spec.Unprivileged {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
		cmd.Env = append(cmd.Env, "HOME=/")
	}
	if spec.User != "" {
		cred, err := credentialOf(spec.User)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", spec.Label, err)
		}
		cmd.SysProcAttr.Credential = cred
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &Process{Label: spec.Label, cmd: cmd, stdin: stdin, events: make(chan Event, 1024), exited: make(chan struct{})}
	cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	if spec.Output != nil {
		cmd.Stderr = io.MultiWriter(cmd.Stderr, spec.Output)
	}
	if err := inNamespace(h.NS, cmd.Start); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", spec.Label, h.Name, err)
	}
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()

	var readDone sync.WaitGroup
	readDone.Add(1)
	go func() {
		defer readDone.Done()
		defer close(p.events)
		if spec.Output != nil {
			_, _ = io.Copy(io.MultiWriter(spec.Output, &lockedWriter{mu: &p.mu, w: &p.stderr}), stdout)
			return
		}
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Bytes()
			if len(strings.TrimSpace(string(line))) == 0 {
				continue
			}
			ev, err := ParseEvent(line, spec.Strict)
			if err != nil {
				p.mu.Lock()
				if p.protoErr == nil {
					p.protoErr = err
				}
				p.mu.Unlock()
				continue
			}
			p.events <- ev
		}
		if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
			p.mu.Lock()
			if p.protoErr == nil {
				p.protoErr = fmt.Errorf("reading its output: %w", err)
			}
			p.mu.Unlock()
		}
	}()
	go func() {
		// Wait only after the output is drained: cmd.Wait closes the pipe.
		readDone.Wait()
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		_ = p.stdin.Close()
		p.stdin = nil
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

// Write keeps p, dropping what falls out of the last 4 KiB.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - 4096; over > 0 {
		t.b = append([]byte(nil), t.b[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *tailBuffer) String() string { return string(t.b) }

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

// Write writes p under the lock.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
