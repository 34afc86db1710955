package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/halfopen/halfopen/internal/labenv"
)

// Run owns every lab made by one orchestrator process. Its ID is
// "<pid>p<random>", so that `halfopen gc` can tell a live run's namespaces
// from those a killed run left behind.
type Run struct {
	ID string

	mu      sync.Mutex
	labs    map[*Lab]struct{}
	nextLab atomic.Int64
	closed  atomic.Bool

	// reaper sweeps the run's labs if the process dies without closing
	// them (see reaper.go); started by the first lab.
	reaperOnce sync.Once
	reaper     *reaper
	reaperErr  error

	// idle is the run's PM QoS request (cpuidle.go), made with its first
	// lab and released by Close.
	idleMu sync.Mutex
	idle   *idlePoll

	// frozen is the run's empty frozen cgroup (cgroup.go), made with its
	// first lab where labs are killed through a v1 freezer, removed by
	// Close.
	frozenOnce sync.Once
	frozen     *frozenCgroup
	// noFrozenCgroup leaves the frozen cgroup out, for the benchmark that
	// measures what it saves.
	noFrozenCgroup bool
}

// NewRun starts a run with a fresh ID.
func NewRun() *Run {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Run{
		ID:   strconv.Itoa(os.Getpid()) + "p" + hex.EncodeToString(b[:]),
		labs: map[*Lab]struct{}{},
	}
}

// NewLab builds a fresh three-host lab owned by the run. The lab is
// registered for cleanup before its first namespace exists.
func (r *Run) NewLab(ctx context.Context) (*Lab, error) {
	if r.closed.Load() {
		return nil, errors.New("run is shutting down")
	}
	id := fmt.Sprintf("%s%s-%d", namespacePrefix, r.ID, r.nextLab.Add(1))
	if err := r.startReaper(); err != nil {
		return nil, fmt.Errorf("lab %s: %w", id, err)
	}
	r.CPUIdle()
	r.frozenOnce.Do(func() {
		if r.noFrozenCgroup {
			return
		}
		var err error
		if r.frozen, err = freezeEmptyCgroup(r.ID); err != nil {
			// Only speed is lost: each lab's teardown rewrites the
			// kernel's freezer key, as it did before.
			fmt.Fprintf(os.Stderr, "halfopen: %v: each lab's teardown turns the kernel's freezer key on and off\n", err)
		}
	})
	return newLab(ctx, r, id)
}

// CPUIdle makes the run's request that idle CPUs poll rather than halt, if
// it is not made yet, and says how the run's idle CPUs wait: the text a
// report records (report.Environment.CPUIdle).
func (r *Run) CPUIdle() string {
	r.idleMu.Lock()
	defer r.idleMu.Unlock()
	if r.idle == nil {
		if r.closed.Load() {
			return "halting (the run is closed)"
		}
		p := holdIdlePoll()
		r.idle = &p
	}
	return r.idle.note
}

// startReaper starts the run's reaper once, before its first namespace
// exists, unless EnvNoReaper is set.
func (r *Run) startReaper() error {
	r.reaperOnce.Do(func() {
		if os.Getenv(labenv.EnvNoReaper) == "1" {
			return
		}
		r.reaper, r.reaperErr = startReaper(r.ID)
	})
	return r.reaperErr
}

// watchNamespace hands the reaper a namespace of the run (its identity and
// a duplicate of the handle ns) the moment it exists.
func (r *Run) watchNamespace(id nsID, ns int) error {
	if r.reaper == nil {
		return nil
	}
	return r.reaper.watch(id, ns)
}

// forgetNamespace tells the reaper that nothing lives in a namespace any
// more, so that it lets go of it.
func (r *Run) forgetNamespace(id nsID) {
	if r.reaper != nil {
		_ = r.reaper.forget(id)
	}
}

// remember registers a lab before its first namespace exists; it refuses
// once the run is closing, so that no lab escapes Close's sweep.
func (r *Run) remember(l *Lab) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return errors.New("run is shutting down")
	}
	r.labs[l] = struct{}{}
	return nil
}

func (r *Run) forget(l *Lab) {
	r.mu.Lock()
	delete(r.labs, l)
	r.mu.Unlock()
}

// Close tears down every lab of the run and refuses new ones.
func (r *Run) Close() error {
	r.mu.Lock()
	r.closed.Store(true)
	labs := make([]*Lab, 0, len(r.labs))
	for l := range r.labs {
		labs = append(labs, l)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(labs))
	for i, l := range labs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Close()
		}()
	}
	wg.Wait()
	// After its own teardown the run closes its reaper's socket: the reaper
	// sweeps, finds nothing, and exits. A start still under way finishes
	// first, so no reaper is left waiting for a run that has ended.
	r.reaperOnce.Do(func() { r.reaperErr = errors.New("run is shutting down") })
	if r.reaper != nil {
		r.reaper.close()
	}
	r.idleMu.Lock()
	if r.idle != nil {
		r.idle.release()
	}
	r.idleMu.Unlock()
	r.frozenOnce.Do(func() {}) // none is made once Close has begun
	errs = append(errs, r.frozen.remove())
	return errors.Join(errs...)
}

// CloseOnSignal, when the process receives SIGINT, SIGTERM or SIGHUP, first
// calls interrupted (which cancels the work using the run), then tears the
// run down. Whoever closes the run afterwards waits for that teardown, so
// the process cannot exit half-way through it. It returns a function that
// stops watching.
func (r *Run) CloseOnSignal(interrupted func(os.Signal)) (stop func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			interrupted(sig)
			_ = r.Close()
		case <-done:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
