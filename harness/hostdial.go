package harness

import (
	"context"
	"fmt"
	"net"
	"time"
)

// DialContext opens a connection from inside the host's namespace, for the
// orchestrator to reach a service of the lab (the Toxiproxy API on the
// router). The socket is made on a thread set into the namespace and stays
// there; the thread is restored before it is released.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	h.mu.Lock()
	gone := h.gone
	h.mu.Unlock()
	if gone {
		return nil, fmt.Errorf("host %s is gone", h.Name)
	}
	var c net.Conn
	err := inNamespace(h.NS, func() error {
		// A single IPv4 address is dialed on this goroutine, so the socket
		// is created on this locked thread.
		// No keepalive, like every socket of the lab.
		d := net.Dialer{KeepAlive: -1, Timeout: 3 * time.Second}
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s in %s: %w", addr, h.Name, err)
	}
	return c, nil
}
