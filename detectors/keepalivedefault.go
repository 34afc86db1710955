package detectors

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// KeepaliveDefault sets only SO_KEEPALIVE, so the watcher namespace's
// sysctls (net.ipv4.tcp_keepalive_time/intvl/probes) decide, and blocks in
// read. Its time, intvl and probes are those sysctls: left out, whatever
// the namespace has (the cell's --sysctl, or the kernel's 7200 s, 75 s and
// 9: 7875 s); given, they are written there. That is too long to measure in
// a quick run, so `scale` divides time and intvl (rounded up to whole
// seconds, at least 1; probes is a count and stays) and writes the results
// into the watcher's namespace instead. The values in force are recorded in
// the report.
type KeepaliveDefault struct {
	Time   int `param:"time" sysctl:"net.ipv4.tcp_keepalive_time" min:"1" max:"32767" help:"seconds of idle before the first probe: net.ipv4.tcp_keepalive_time (left out: the namespace's, kernel default 7200)"`
	Intvl  int `param:"intvl" sysctl:"net.ipv4.tcp_keepalive_intvl" min:"1" max:"32767" help:"seconds between probes: net.ipv4.tcp_keepalive_intvl (left out: the namespace's, kernel default 75)"`
	Probes int `param:"probes" sysctl:"net.ipv4.tcp_keepalive_probes" min:"1" max:"127" help:"unanswered probes before ETIMEDOUT: net.ipv4.tcp_keepalive_probes (left out: the namespace's, kernel default 9)"`
	Scale  int `param:"scale" default:"1" min:"1" max:"7200" help:"divide time and intvl by this in the watcher's namespace (1: measure them as they are)"`
}

func init() {
	harness.RegisterDetector("keepalive-default", "SO_KEEPALIVE with the namespace's sysctls (kernel defaults 7200 s/75 s/9: 7875 s), optionally scaled down", &KeepaliveDefault{})
}

// scaled returns the keepalive timers in force in the watcher's namespace.
func (d *KeepaliveDefault) scaled() (idle, intvl time.Duration, probes int) {
	div := func(seconds int) time.Duration {
		s := (seconds + d.Scale - 1) / d.Scale
		return time.Duration(max(s, 1)) * time.Second
	}
	return div(d.Time), div(d.Intvl), d.Probes
}

// Sysctls writes the scaled timers in the watcher's namespace when scale
// is not 1 (otherwise its sysctl-backed parameters are what is in force).
func (d *KeepaliveDefault) Sysctls() map[string]string {
	if d.Scale == 1 {
		return nil
	}
	idle, intvl, probes := d.scaled()
	return map[string]string{
		"net.ipv4.tcp_keepalive_time":   strconv.Itoa(int(idle / time.Second)),
		"net.ipv4.tcp_keepalive_intvl":  strconv.Itoa(int(intvl / time.Second)),
		"net.ipv4.tcp_keepalive_probes": strconv.Itoa(probes),
	}
}

// Predict gives the range of the values actually in force (the scaled
// ones, which the assertions use); the Rule states the unscaled one.
func (d *KeepaliveDefault) Predict() harness.Prediction {
	idle, intvl, probes := d.scaled()
	p := prediction(tcprules.KeepaliveRange(idle, intvl, probes), "ETIMEDOUT")
	p.Rule = fmt.Sprintf("unscaled, tcp_keepalive_time=%d, intvl=%d, probes=%d give at most %d s + %d·%d s = %d s; measured with tcp_keepalive_time=%d, intvl=%d, probes=%d in the watcher's namespace (scale=%d): %s",
		d.Time, d.Intvl, d.Probes, d.Time, d.Probes, d.Intvl, d.Time+d.Probes*d.Intvl, idle/time.Second, intvl/time.Second, probes, d.Scale, p.Rule)
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

// MaxSendGap: with its peer silent, a probe goes every intvl once time has
// passed since the last segment (the values in force).
func (d *KeepaliveDefault) MaxSendGap() time.Duration {
	idle, intvl, _ := d.scaled()
	return tcprules.WheelLate(max(idle, intvl))
}

// PredictSample: as keepalive-tuned, with the sysctls in force (scaled).
// Left out, time, intvl and probes are read from the watcher's namespace
// when the cell is resolved, so they are what the kernel uses.
func (d *KeepaliveDefault) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	idle, intvl, probes := d.scaled()
	return keepaliveSample(st, e, idle, intvl, probes, 0)
}

// PredictResetAfter: as keepalive-tuned's, with the sysctls in force.
func (d *KeepaliveDefault) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	idle, intvl, probes := d.scaled()
	return tcprules.KeepaliveResetAfter(st, idle, intvl, probes, 0, after), true
}
