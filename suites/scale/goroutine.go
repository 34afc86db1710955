package scale

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/halfopen/halfopen/harness"
)

// harnessDialer and listenConfig turn off Go's default 15 s keepalive, so
// that only a detector that asks for keepalive gets it, and the MPTCP Go
// asks for on listeners by default, as the harness's own agents do: the
// suite measures plain TCP.
func harnessDialer() *net.Dialer { return &net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second} }

var listenConfig = func() net.ListenConfig {
	lc := net.ListenConfig{KeepAlive: -1}
	lc.SetMultipathTCP(false)
	return lc
}()

// serveGoroutines is the reference text's design in Go: one goroutine per
// connection, blocked in halfopen's detector (the same code the watcher
// agent runs), which frees the connection when the detector decides. Go's
// listener takes its backlog from the namespace's net.core.somaxconn.
func serveGoroutines(ctx context.Context, det harness.Detector, addr string, rec *recorder) (func() error, error) {
	ln, err := listenConfig.Listen(ctx, "tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	done := make(chan error, 1)
	// watching counts the goroutines still holding a connection, so that
	// the server exits only once each has reset its own.
	var watching sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if ctx.Err() == nil {
					done <- fmt.Errorf("accept: %w", err)
				}
				return
			}
			rec.accepted1()
			tc := c.(*net.TCPConn)
			watching.Add(1)
			go func() {
				defer watching.Done()
				d := det.Watch(ctx, &harness.Watch{Conns: []*net.TCPConn{tc}, Log: rec.em.Logf})
				if ctx.Err() != nil {
					// Told to end: reset rather than leave an orphan.
					_ = tc.SetLinger(0)
					tc.Close()
					return
				}
				tc.Close()
				rec.free(d.Reason)
			}()
		}
	}()
	return func() error {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
		}
		watching.Wait()
		return nil
	}, nil
}
