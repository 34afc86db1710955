package harness

import "fmt"

// Do runs fn on an OS thread set into the host's namespace and restored
// afterwards, so that sockets fn opens (a packet capture on the router's
// ports) live in the host. It follows the safe setns pattern: the thread
// is retired, not reused, if its namespace cannot be restored. fn must
// not start goroutines that open sockets: they would run elsewhere.
func (h *Host) Do(fn func() error) error {
	h.mu.Lock()
	gone := h.gone
	h.mu.Unlock()
	if gone {
		return fmt.Errorf("host %s is gone", h.Name)
	}
	if err := inNamespace(h.NS, fn); err != nil {
		return fmt.Errorf("in %s: %w", h.Name, err)
	}
	return nil
}
