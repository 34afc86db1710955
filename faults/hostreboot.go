package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// HostReboot: the peer host crashes as in host-crash (isolated at the
// router, its processes SIGKILLed, its namespace destroyed) and returns
// after `down`: a new namespace with the same name, address and MAC (its
// neighbours' ARP caches stay right), no process and no memory of any
// connection; then the router's isolation is removed. The next segment the
// watcher sends after the return (a keepalive probe, a retransmission, a
// heart-beat) reaches a kernel with no socket for it, which answers with an
// RST (RFC 793 §3.4, "reset generation"): the watcher's read fails with
// ECONNRESET. A detector that never sends never learns. Injected at the
// instant the isolation was acknowledged.
type HostReboot struct {
	Down time.Duration `param:"down" default:"1s" min:"0s" help:"how long the peer host stays down before it returns"`

	mu       sync.Mutex
	rules    *ruleSet
	returned int64
	dropped  uint64
	err      error
}

func init() {
	harness.RegisterFault("host-reboot", "the peer host crashes and returns after `down` with the same address and no memory: RST on the next segment", &HostReboot{})
}

// Inject crashes the peer host and schedules its return.
func (f *HostReboot) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	// A cell's one fault value serves samples in parallel labs: each
	// sample's return removes its own lab's isolation.
	var rules *ruleSet
	at, err := crashPeer(lab, "host-reboot", &rules)
	if err != nil {
		return nil, 0, err
	}
	f.mu.Lock()
	f.rules, f.returned, f.dropped, f.err = rules, 0, 0, nil
	f.mu.Unlock()
	stop := make(chan struct{})
	done := make(chan struct{})
	// The lab must not close while the host is being made again, or the
	// new namespace would outlive it: Close waits for the return.
	lab.OnClose(func() error {
		close(stop)
		<-done
		return nil
	})
	go func() {
		defer close(done)
		t := time.NewTimer(time.Duration(at + int64(f.Down) - protocol.Now()))
		defer t.Stop()
		select {
		case <-stop:
			return
		case <-t.C:
		}
		dropped, _, _ := rules.counters()
		err := lab.RebootHost(topo.Peer)
		if err == nil {
			_, err = rules.remove()
		}
		f.mu.Lock()
		f.returned, f.err, f.dropped = protocol.Now(), err, dropped
		f.mu.Unlock()
		if err == nil {
			// Its services start after its kernel answers.
			if err := lab.Booted(topo.Peer); err != nil {
				f.mu.Lock()
				f.err = err
				f.mu.Unlock()
			}
		}
	}()
	return nil, at, nil
}

// Returned reports the instant the peer host of the last injection
// answered again, zero while it is still down, and the error if it could
// not return.
func (f *HostReboot) Returned() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, fmt.Errorf("host-reboot: the peer could not return: %w", f.err)
	}
	return f.returned, nil
}

// Effect: the path answers the watcher's next segment with an RST, once
// the host is back.
func (f *HostReboot) Effect() harness.Effect { return harness.EffectResetOnWrite }

// ResetAfter is how long the host stays down.
func (f *HostReboot) ResetAfter() time.Duration { return f.Down }

// Counters returns the packets the router dropped while the host was down
// (read just before the isolation is removed, once it has returned).
func (f *HostReboot) Counters() (uint64, uint64, error) {
	f.mu.Lock()
	rules, returned, dropped := f.rules, f.returned, f.dropped
	f.mu.Unlock()
	if rules == nil {
		return 0, 0, errors.New("host-reboot was not injected")
	}
	if returned != 0 {
		return dropped, 0, nil
	}
	return rules.counters()
}
