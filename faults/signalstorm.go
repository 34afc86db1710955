package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// SignalStorm: the watcher process receives `rate` signals per second on
// every one of its threads, for `for`. Each round lists /proc/PID/task and
// sends the signal to each thread with tgkill(2): a process-directed kill(2)
// is delivered to one thread that does not block the signal, usually an
// idle one, and interrupts nothing, while the thread blocked in select() or
// recv() is the one the reference text's EINTR check is about. The network
// is untouched: it is a disturbance, every decision is a false positive.
//
// The watcher must catch the signal. A Go program does: the runtime installs
// a handler, with SA_RESTART, for SIGUSR1, SIGUSR2, SIGALRM and SIGWINCH and
// takes no action without signal.Notify (checked by this fault's test);
// SIGHUP, by contrast, ends a Go program, so it is not offered. A C or
// Python watcher must install handlers itself (SIGWINCH is ignored by
// default there, and an ignored signal interrupts nothing). With SA_RESTART a blocking recv()
// is restarted transparently, but select(), poll(), epoll_wait() and a
// recv() with SO_RCVTIMEO fail with EINTR (signal(7)).
type SignalStorm struct {
	Rate   int           `param:"rate" default:"200" min:"1" max:"10000" help:"signals per second sent to each thread of the watcher"`
	Signal string        `param:"signal" default:"SIGUSR1" enum:"SIGUSR1|SIGUSR2|SIGALRM|SIGWINCH" help:"the signal; the watcher must catch it (Go does; SIGHUP would end a Go program and is not offered)"`
	For    time.Duration `param:"for" default:"2s" min:"1ms" help:"how long the storm lasts"`

	mu   sync.Mutex
	sent map[int]int // tid -> signals sent
}

func init() {
	harness.RegisterFault("signal-storm", "tgkill `rate` signals per second to every thread of the watcher process for `for`", &SignalStorm{})
}

// signalNumber maps the enum to the signal.
func (f *SignalStorm) signalNumber() syscall.Signal {
	return map[string]syscall.Signal{
		"SIGUSR1": unix.SIGUSR1, "SIGUSR2": unix.SIGUSR2, "SIGALRM": unix.SIGALRM,
		"SIGWINCH": unix.SIGWINCH,
	}[f.Signal]
}

// Inject starts the storm on the watcher process; it stops at the heal,
// when the watcher exits, or when the lab closes, whichever comes first.
func (f *SignalStorm) Inject(ctx context.Context, lab *harness.Lab, conn *harness.Conn) (harness.Heal, int64, error) {
	w := conn.Agents[topo.Watcher]
	if w == nil {
		return nil, 0, errors.New("signal-storm needs a running watcher process")
	}
	pid := w.Pid()
	if _, err := threadsOf(pid); err != nil {
		return nil, 0, err
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var once sync.Once
	halt := func() int64 {
		once.Do(func() { close(stop) })
		<-done
		return protocol.Now()
	}
	lab.OnClose(func() error { halt(); return nil })
	sig := f.signalNumber()
	period := time.Second / time.Duration(f.Rate)
	at := protocol.Now()
	f.mu.Lock()
	f.sent = map[int]int{}
	f.mu.Unlock()
	go func() {
		defer close(done)
		f.storm(pid, sig, period, stop, w.Exited())
	}()
	return func(context.Context) (int64, error) { return halt(), nil }, at, nil
}

// storm signals every thread of pid once per period until stop or exited
// is closed.
func (f *SignalStorm) storm(pid int, sig syscall.Signal, period time.Duration, stop, exited <-chan struct{}) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		f.round(pid, sig)
		select {
		case <-stop:
			return
		case <-exited:
			return
		case <-t.C:
		}
	}
}

// round sends the signal once to every current thread of pid. tgkill checks
// that the thread still belongs to pid, so a thread that exited (and whose
// id was reused elsewhere) is never hit.
func (f *SignalStorm) round(pid int, sig syscall.Signal) {
	tids, err := threadsOf(pid)
	if err != nil {
		return
	}
	for _, tid := range tids {
		if unix.Tgkill(pid, tid, sig) == nil {
			f.mu.Lock()
			if f.sent == nil {
				f.sent = map[int]int{}
			}
			f.sent[tid]++
			f.mu.Unlock()
		}
	}
}

// Sent returns how many signals each thread was sent.
func (f *SignalStorm) Sent() map[int]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.sent)
}

// threadsOf lists the thread ids of a process.
func threadsOf(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil, fmt.Errorf("list the threads of the watcher (pid %d): %w", pid, err)
	}
	var tids []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// Effect: the network is untouched; the connection must survive.
func (f *SignalStorm) Effect() harness.Effect { return harness.EffectTransient }

// Window is how long the storm lasts.
func (f *SignalStorm) Window() time.Duration { return f.For }

// Note says what the storm does, for the report.
func (f *SignalStorm) Note(*harness.Lab, *harness.Conn) string {
	return fmt.Sprintf("tgkill(%s) %d/s to every thread of the watcher for %v", strings.ToUpper(f.Signal), f.Rate, f.For)
}

// SignalsWatcher: the storm's signals land on the watcher's threads.
func (f *SignalStorm) SignalsWatcher() {}
