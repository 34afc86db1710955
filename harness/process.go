package harness

import (
	"bufio"
	"bytes"
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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/protocol"
)

// ProcSpec describes a process to start inside a lab host; AgentProc and
// ForeignProc (procspec.go) build the two kinds a lab runs.
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
	// Realtime runs the process at real-time priority 1 while its lab
	// measures (Lab.Measuring): the agents and detector programs that
	// stamp instants, not a service.
	Realtime bool
}

// Process is a child process living in a lab host's namespace. Its standard
// output is read as protocol events; standard error is kept (the last 4 KiB)
// for error messages, and with its log events and marks as the
// diagnostics a sample's log keeps.
type Process struct {
	Label string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	events chan protocol.Event
	// protoErr holds the first protocol violation, if any.
	protoErr error

	mu     sync.Mutex
	stderr tailBuffer
	exited chan struct{}
	// abandon is closed when the process has exited and its reader gave
	// up waiting for the orchestrator to take its events.
	abandon chan struct{}
	waitErr error
	killed  bool
	// realtime is ProcSpec.Realtime; lab is the lab whose Measuring
	// promotes it, spoke is set at its first line, and promoted once it
	// was moved to real-time priority (promote).
	realtime bool
	lab      *Lab
	spoke    atomic.Bool
	promoted sync.Once
	// droppedLogs counts log lines dropped while the event queue was full.
	droppedLogs int
	// diag is the process's diagnostics, kept for the sample's log: its
	// log events, marks and standard error lines (the last maxDiagLines);
	// diagDropped counts older lines let go. marks are its mark events.
	diag        []diagLine
	diagDropped int
	partial     []byte // a standard error line not yet ended
	marks       []protocol.Event
}

// diagLine is one line of a program's diagnostics: a log event, a mark or
// a line of its standard error, at the CLOCK_MONOTONIC instant it carries
// (a standard error line: when halfopen read it).
type diagLine struct {
	TNs        int64
	Kind, Text string
}

// Bounds on a process's diagnostics, however much it prints.
const (
	maxDiagLines = 2000
	maxDiagText  = 2048
	maxMarks     = 256
)

// addDiag keeps one line of diagnostics; p.mu is held.
func (p *Process) addDiag(tns int64, kind, text string) {
	if len(text) > maxDiagText {
		text = text[:maxDiagText] + "…"
	}
	if len(p.diag) >= maxDiagLines {
		n := copy(p.diag, p.diag[len(p.diag)/4:])
		p.diagDropped += len(p.diag) - n
		p.diag = p.diag[:n]
	}
	p.diag = append(p.diag, diagLine{TNs: tns, Kind: kind, Text: text})
}

// diagnostics returns a copy of what the process said besides its
// protocol (log events, marks, standard error), oldest first, and how many
// older lines were let go.
func (p *Process) diagnostics() ([]diagLine, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.diag)
	if len(p.partial) > 0 {
		out = append(out, diagLine{TNs: protocol.Now(), Kind: "stderr", Text: string(p.partial)})
	}
	return out, p.diagDropped
}

// markEvents returns the process's marks, in the order it printed them.
func (p *Process) markEvents() []protocol.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.marks)
}

// stderrWriter keeps a process's standard error: its last 4 KiB for error
// messages, and each line in its diagnostics.
type stderrWriter struct{ p *Process }

// Write keeps b under the process's lock.
func (w stderrWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.stderr.Write(b)
	now := protocol.Now()
	rest := b
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := append(p.partial, rest[:i]...)
		p.partial = nil
		p.addDiag(now, "stderr", strings.TrimRight(string(line), "\r"))
		rest = rest[i+1:]
	}
	if len(p.partial)+len(rest) > maxDiagText {
		p.addDiag(now, "stderr", string(append(p.partial, rest...)))
		p.partial = nil
	} else {
		p.partial = append(p.partial, rest...)
	}
	return len(b), nil
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Events delivers the process's protocol events in order; it is closed when
// the process's standard output ends.
func (p *Process) Events() <-chan protocol.Event { return p.events }

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
func (p *Process) WaitEvent(ctx context.Context, names ...string) (protocol.Event, error) {
	for {
		select {
		case <-ctx.Done():
			return protocol.Event{}, fmt.Errorf("%s: waiting for %s: %w", p.Label, strings.Join(names, " or "), context.Cause(ctx))
		case ev, ok := <-p.events:
			if !ok {
				return protocol.Event{}, p.endedError("before saying " + strings.Join(names, " or "))
			}
			if ev.Event == agentcmd.EventError {
				return protocol.Event{}, fmt.Errorf("%s: %s", p.Label, ev.Msg)
			}
			if slices.Contains(names, ev.Event) {
				return ev, nil
			}
		}
	}
}

// endedError explains why a process's output ended: its protocol error, its
// exit status and the tail of its standard error. A process whose output
// ended but that is still running ProgramGrace later (it closed its
// standard output, as a daemon does) will never say anything again: it is
// killed, and said so.
func (p *Process) endedError(when string) error {
	select {
	case <-p.exited:
	case <-time.After(programGrace):
		kerr := p.Kill()
		msg := fmt.Sprintf("%s closed its standard output %s but kept running, and was killed", p.Label, when)
		if kerr != nil {
			msg += " (" + kerr.Error() + ")"
		}
		return errors.New(msg)
	}
	msg := fmt.Sprintf("%s ended %s", p.Label, when)
	if err := p.ProtocolErr(); err != nil {
		msg += "; it printed a " + err.Error()
	}
	if err := p.ExitErr(); err != nil {
		msg += fmt.Sprintf(" (%v)", err)
		if realtimeKilled(err) {
			msg += fmt.Sprintf(", which the kernel sends a process at real-time priority that runs %v without sleeping (RLIMIT_RTTIME; %v: SIGKILL)", realtimeRunLimit, realtimeKillLimit)
		}
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

// realtimeKilled says whether a process's exit error is SIGXCPU, which
// only RLIMIT_RTTIME sends here (realtimePriority).
func realtimeKilled(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGXCPU
}

// Send writes one command line to the process's standard input.
func (p *Process) Send(c agentcmd.Command) error {
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
	p.signalKill()
	select {
	case <-p.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not die within 5 s of SIGKILL", p.Label, p.Pid())
	}
}

// promote moves a Realtime process to real-time priority, once, if it has
// started (printed its first line) and is still running. Started, not
// before: a program's start is the longest it runs without sleeping (a
// Python interpreter's imports take about 0.5 s of CPU on machine C),
// which at real-time priority would hold a CPU from every lab's
// orchestrator and run past realtimeRunLimit.
func (p *Process) promote() {
	if !p.realtime || !p.spoke.Load() {
		return
	}
	p.promoted.Do(func() {
		select {
		case <-p.exited:
		default:
			realtimePriority(p.cmd.Process.Pid)
		}
	})
}

// leaveRealtime moves a running process back to normal priority: it is
// about to be stopped, and its shutdown, measured by no one, must not run
// ahead of the labs still measuring.
func (p *Process) leaveRealtime() {
	select {
	case <-p.exited:
	default:
		normalPriority(p.cmd.Process.Pid)
	}
}

// signalKill SIGKILLs the process and its group without waiting.
func (p *Process) signalKill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.leaveRealtime()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
}

// Stop asks the process to end with SIGTERM, then kills it after grace.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.leaveRealtime()
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
	asUserInUserNamespace(cmd.SysProcAttr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", spec.Label, h.Name, err)
	}
	// Standard output is a pipe of our own, not cmd.StdoutPipe: Wait must
	// not close it under the reader, and the process's exit must not wait
	// for a descendant that escaped with a copy of it.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", spec.Label, h.Name, err)
	}
	cmd.Stdout = stdoutW
	// A descendant that keeps standard error open (a daemon that did not
	// close it) holds Wait up for at most this long after the exit.
	cmd.WaitDelay = outputGrace
	p := &Process{Label: spec.Label, cmd: cmd, stdin: stdin, events: make(chan protocol.Event, eventQueue), exited: make(chan struct{}), abandon: make(chan struct{}), realtime: spec.Realtime, lab: h.lab}
	cmd.Stderr = stderrWriter{p}
	if spec.Output != nil {
		cmd.Stderr = io.MultiWriter(cmd.Stderr, spec.Output)
	}
	// The child is born in the lab's cgroup (cgroup.go), which it cannot
	// leave: however it detaches, teardown kills it there.
	var cg *labCgroup
	if h.lab != nil {
		cg = h.lab.cg
	}
	cg.prepare(cmd.SysProcAttr)
	err = inNamespace(h.NS, func() error { return cg.fork(cmd.Start) })
	stdoutW.Close()
	if err != nil {
		stdout.Close()
		return nil, fmt.Errorf("start %s in %s: %w", spec.Label, h.Name, err)
	}
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(p.events)
		if spec.Output != nil {
			_, _ = io.Copy(io.MultiWriter(spec.Output, stderrWriter{p}), stdout)
			return
		}
		p.read(stdout, spec.Strict)
	}()
	go func() {
		err := cmd.Wait()
		if errors.Is(err, exec.ErrWaitDelay) {
			// It exited with status 0; a descendant kept its standard
			// error open, which teardown deals with.
			err = nil
		}
		// Everything the process printed is read before Exited closes,
		// so its protocol error is final by then; a descendant still
		// holding the pipe after outputGrace is cut off.
		select {
		case <-readDone:
		case <-time.After(outputGrace):
			close(p.abandon)
			stdout.Close()
			<-readDone
		}
		stdout.Close()
		p.mu.Lock()
		p.waitErr = err
		_ = p.stdin.Close()
		p.stdin = nil
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

// Bounds on what a process's output may cost, however much it prints.
const (
	// maxLineBytes is the longest protocol line read; a longer one is a
	// protocol error and its process is killed.
	maxLineBytes = 1 << 20
	// eventQueue events wait for the orchestrator; beyond it, log lines are
	// dropped (and counted) and other events wait.
	eventQueue = 1024
	// outputGrace is how long the output of an exited process may stay
	// open (held by a descendant) before it is closed.
	outputGrace = 250 * time.Millisecond
)

// read parses the process's standard output into events until it ends.
// Memory is bounded: one line of at most MaxLineBytes, eventQueue events.
func (p *Process) read(stdout io.Reader, strict bool) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), maxLineBytes)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !p.spoke.Swap(true) && p.lab != nil && p.lab.measuring.Load() {
			// Started while its lab measures (a rebooted host's): it
			// has started now.
			p.promote()
		}
		ev, err := protocol.ParseEvent(line, strict)
		if err != nil {
			p.setProtoErr(err)
			continue
		}
		switch ev.Event {
		case protocol.EventLog:
			p.mu.Lock()
			p.addDiag(ev.TNs, "log", ev.Msg)
			p.mu.Unlock()
		case protocol.EventMark:
			// A mark is kept here, not queued: no step of a sample waits
			// for one, and it is read with the sample's result.
			p.mu.Lock()
			p.addDiag(ev.TNs, "mark", ev.Name)
			if len(p.marks) < maxMarks {
				p.marks = append(p.marks, ev)
			}
			p.mu.Unlock()
			continue
		}
		if ev.Event == protocol.EventLog {
			// A program that floods its log must not hold up its own
			// decision behind it, nor grow the queue.
			select {
			case p.events <- ev:
			default:
				p.mu.Lock()
				p.droppedLogs++
				p.mu.Unlock()
			}
			continue
		}
		select {
		case p.events <- ev:
		case <-p.abandon:
			// The process is gone and nobody took its events for
			// outputGrace: the orchestrator has moved on.
			return
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d bytes, and was killed", maxLineBytes)
			p.setProtoErr(err)
			// Nobody reads its output any more: it would block for ever.
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			_ = p.cmd.Process.Kill()
			return
		}
		p.setProtoErr(fmt.Errorf("reading its output: %w", err))
	}
}

// setProtoErr keeps the first protocol violation.
func (p *Process) setProtoErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.protoErr == nil {
		p.protoErr = err
	}
}

// DroppedLogs returns how many log lines were dropped because the
// orchestrator was not reading them as fast as the process printed them.
func (p *Process) DroppedLogs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.droppedLogs
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
