package detectors

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// UserTimeout sets TCP_USER_TIMEOUT (RFC 5482) and writes one byte every
// `every`, so that there is always data in flight to time out; the echo
// peer sends each byte back. A read or write failing is death.
type UserTimeout struct {
	Timeout time.Duration `param:"timeout" default:"2s" min:"1ms" max:"596h" help:"TCP_USER_TIMEOUT: how long sent data may stay unacknowledged"`
	Every   time.Duration `param:"every" default:"200ms" min:"1ms" help:"interval of the 1-byte application write"`
}

func init() {
	harness.RegisterDetector("user-timeout", "TCP_USER_TIMEOUT with a periodic 1-byte write", &UserTimeout{})
}

// Predict is tcprules.UserTimeoutRange: [timeout, timeout + every + 600 ms]
// (measured on this kernel: 2 s → 2.50–2.52 s with 200 ms writes).
func (d *UserTimeout) Predict() harness.Prediction {
	return prediction(tcprules.UserTimeoutRange(d.Timeout, d.Every), "ETIMEDOUT")
}

// Watch sets the option, then writes and reads until one fails.
func (d *UserTimeout) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	c := w.Conns[0]
	if err := setUserTimeout(c, d.Timeout); err != nil {
		return harness.Decide("error: " + err.Error())
	}
	return decideFirst(ctx,
		func(ctx context.Context) harness.Decision { return readUntilEnd(ctx, c, nil) },
		func(ctx context.Context) harness.Decision { return writeEvery(ctx, c, d.Every) },
	)
}

// setUserTimeout sets TCP_USER_TIMEOUT in milliseconds.
func setUserTimeout(c syscall.Conn, timeout time.Duration) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(timeout.Milliseconds()))
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set TCP_USER_TIMEOUT: %w", err)
	}
	return nil
}

// writeEvery writes one byte every interval until a write fails.
func writeEvery(ctx context.Context, c interface{ Write([]byte) (int, error) }, every time.Duration) harness.Decision {
	return probeEvery(ctx, every, func() error {
		_, err := c.Write([]byte{'.'})
		return err
	})
}

// probeEvery calls send every interval until it fails, and names the failure.
func probeEvery(ctx context.Context, every time.Duration, send func() error) harness.Decision {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return harness.Decision{}
		case <-t.C:
			if err := send(); err != nil {
				if ctx.Err() != nil {
					return harness.Decision{}
				}
				return writeErr(err)
			}
		}
	}
}

// WriteEvery is its 1-byte write's interval.
func (d *UserTimeout) WriteEvery() time.Duration { return d.Every }

// PredictSample: the user timeout counted from the first RTO resend of
// the first write never acknowledged (tcprules.WriterRetransmission).
func (d *UserTimeout) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	return writerSample(st, e, d.Every, 0, d.Timeout)
}

// PredictResetAfter: its first write or resend at or after `after`, when
// the path resets from then on (tcprules.WriterResetAfter).
func (d *UserTimeout) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return tcprules.WriterResetAfter(st, d.Every, tcprules.DefaultRetries2, tcprules.RTOMax, d.Timeout, after), true
}
