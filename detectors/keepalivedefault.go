package detectors

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
)

// Linux's keepalive defaults (include/net/tcp.h): TCP_KEEPALIVE_TIME,
// TCP_KEEPALIVE_INTVL, TCP_KEEPALIVE_PROBES.
const (
	defaultKeepaliveTime   = 7200 * time.Second
	defaultKeepaliveIntvl  = 75 * time.Second
	defaultKeepaliveProbes = 9
)

// KeepaliveDefault sets only SO_KEEPALIVE, so the namespace's sysctls
// (net.ipv4.tcp_keepalive_time/intvl/probes) decide, and blocks in read.
// Their defaults make it 7200 + 9·75 = 7875 s: too long to measure in a
// quick run, so the detector writes them into the watcher's namespace
// divided by `scale` (time and intvl rounded up to whole seconds, at least
// 1; probes is a count and stays 9). scale=1 writes the kernel's defaults
// themselves and measures the real thing. Either way the values are
// recorded in the report.
type KeepaliveDefault struct {
	Scale int `param:"scale" default:"1" min:"1" max:"7200" help:"divide tcp_keepalive_time/intvl by this in the watcher's namespace (1: the real 7200 s/75 s/9)"`
}

func init() {
	harness.RegisterDetector("keepalive-default", "SO_KEEPALIVE with the namespace's sysctls (7200 s/75 s/9: 7875 s), optionally scaled down", &KeepaliveDefault{})
}

// scaled returns the sysctl values the detector writes.
func (d *KeepaliveDefault) scaled() (idle, intvl time.Duration, probes int) {
	div := func(v time.Duration) time.Duration {
		s := (int64(v/time.Second) + int64(d.Scale) - 1) / int64(d.Scale)
		return time.Duration(max(s, 1)) * time.Second
	}
	return div(defaultKeepaliveTime), div(defaultKeepaliveIntvl), defaultKeepaliveProbes
}

// Sysctls writes the (scaled) keepalive defaults in the watcher's namespace.
func (d *KeepaliveDefault) Sysctls() map[string]string {
	idle, intvl, probes := d.scaled()
	return map[string]string{
		"net.ipv4.tcp_keepalive_time":   strconv.Itoa(int(idle / time.Second)),
		"net.ipv4.tcp_keepalive_intvl":  strconv.Itoa(int(intvl / time.Second)),
		"net.ipv4.tcp_keepalive_probes": strconv.Itoa(probes),
	}
}

// Predict gives the range of the values actually in force (the scaled
// ones, which the assertions use); the Rule states the real 7875 s.
func (d *KeepaliveDefault) Predict() harness.Prediction {
	idle, intvl, probes := d.scaled()
	p := keepalivePrediction(idle, intvl, probes)
	p.Rule = fmt.Sprintf("unscaled, the kernel's defaults give 7200 s + 9·75 s = 7875 s (at most; at least 9·75 s = 675 s); measured with tcp_keepalive_time=%d, intvl=%d, probes=%d in the watcher's namespace (scale=%d): %s",
		idle/time.Second, intvl/time.Second, probes, d.Scale, p.Rule)
	return p
}

// Watch turns SO_KEEPALIVE on (nothing else) and reads until it fails.
func (d *KeepaliveDefault) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	if err := setSockoptInt(w.Conns[0], unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
		return harness.Decide("error: " + err.Error())
	}
	return readUntilEnd(ctx, w.Conns[0], nil)
}

// setSockoptInt sets an integer socket option on a connection.
func setSockoptInt(c *net.TCPConn, level, opt, value int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("raw connection: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, value) }); err != nil {
		return fmt.Errorf("raw connection: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("setsockopt(%d, %d): %w", level, opt, serr)
	}
	return nil
}
