package harness

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// onRestoredThread runs fn on a fresh goroutine locked to its OS thread,
// then sets the thread back into the namespace it started in. It follows the
// safe setns pattern: the thread is unlocked only if its namespace was
// restored; a thread whose restore failed stays locked and dies with its
// goroutine, so no other goroutine ever runs in a poisoned namespace.
func onRestoredThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("read this thread's namespace: %w", err)
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("restore this thread's namespace: %w (thread retired)", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// inNamespace runs fn on an OS thread set into ns, restored afterwards.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	return onRestoredThread(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter namespace: %w", err)
		}
		return fn()
	})
}

// newNamespace creates a named network namespace and runs setup while the
// creating thread is inside it (sockets it opens live there). The handle is
// returned whenever the namespace exists, even when setup failed, so that
// the caller can release it.
func newNamespace(name string, setup func() error) (netns.NsHandle, error) {
	h := netns.None()
	err := onRestoredThread(func() error {
		var err error
		if h, err = netns.NewNamed(name); err != nil {
			h = netns.None()
			return fmt.Errorf("create namespace %s: %w", name, err)
		}
		if err := setup(); err != nil {
			return fmt.Errorf("set up namespace %s: %w", name, err)
		}
		return nil
	})
	return h, err
}
