package harness

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNamespace runs fn on an OS thread set into ns and restores the thread's
// namespace afterwards. It follows the safe setns pattern: a fresh goroutine
// locked to its thread, the thread unlocked only if its namespace was restored;
// a thread whose restore failed stays locked and dies with its goroutine, so
// no other goroutine ever runs in a poisoned namespace.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("read this thread's namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("restore namespace after work: %w (thread retired)", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// newNamespaces creates one named network namespace per name, all on one
// locked thread, runs setup(i) while the thread is inside the i-th new
// namespace (sockets it opens live there), and returns the handles in order.
// The thread is restored to its original namespace before it is released.
func newNamespaces(names []string, setup func(i int) error) ([]netns.NsHandle, error) {
	type result struct {
		handles []netns.NsHandle
		err     error
	}
	resc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			resc <- result{err: fmt.Errorf("read this thread's namespace: %w", err)}
			return
		}
		defer orig.Close()
		var handles []netns.NsHandle
		var nerr error
		for _, name := range names {
			h, err := netns.NewNamed(name)
			if err != nil {
				nerr = fmt.Errorf("create namespace %s: %w", name, err)
				break
			}
			handles = append(handles, h)
			if err := setup(len(handles) - 1); err != nil {
				nerr = fmt.Errorf("set up namespace %s: %w", name, err)
				break
			}
		}
		if err := netns.Set(orig); err != nil {
			resc <- result{handles: handles, err: fmt.Errorf("restore namespace: %w (thread retired)", err)}
			return
		}
		runtime.UnlockOSThread()
		resc <- result{handles: handles, err: nerr}
	}()
	r := <-resc
	return r.handles, r.err
}
