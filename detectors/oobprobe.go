package detectors

import (
	"context"
	"errors"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/agentcmd"
	"github.com/halfopen/halfopen/tcprules"
)

// OOBProbe is the reference text's netcheck(): every `every` it drains what
// the peer sent, then sends one urgent byte, send(fd, "\0", 1, MSG_OOB); a
// failed send, or a read failing, is death. Against a silent peer it is
// bound by the retransmission timeout like write-probe, with tcp_retries2
// set in the watcher's namespace. The urgent byte is part of the stream: a
// peer without SO_OOBINLINE that never reads it out of band closes with an
// RST instead of a FIN, and one with SO_OOBINLINE reads NUL bytes among its
// data (halfopen's echo peer sets SO_OOBINLINE and reports how many it saw).
type OOBProbe struct {
	Every    time.Duration `param:"every" default:"200ms" min:"1ms" help:"interval of the MSG_OOB probe"`
	Retries2 int           `param:"retries2" sysctl:"net.ipv4.tcp_retries2" min:"1" max:"255" help:"net.ipv4.tcp_retries2 of the watcher's namespace (left out: the namespace's, kernel default 15)"`
}

func init() {
	harness.RegisterDetector("oob-probe", "an urgent (MSG_OOB) byte every `every`, as the reference text's netcheck; a failed send is dead", &OOBProbe{})
}

// Predict: the retransmission timeout after the first unacknowledged probe.
func (d *OOBProbe) Predict() harness.Prediction { return retransmitPrediction(d.Retries2, d.Every) }

// Watch drains and probes until a probe or a read fails.
func (d *OOBProbe) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	c := w.Conns[0]
	return decideFirst(ctx,
		func(ctx context.Context) harness.Decision { return readUntilEnd(ctx, c, nil) },
		func(ctx context.Context) harness.Decision {
			return probeEvery(ctx, d.Every, func() error { return sendOOB(c) })
		},
	)
}

// sendOOB sends netcheck's probe. The reader goroutine is what drains the
// connection ("clear OOB data" in the reference text). A full send buffer
// skips the probe, as the C example does, rather than block.
func sendOOB(c *net.TCPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		for {
			serr = unix.Sendto(int(fd), []byte{0}, unix.MSG_OOB|unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT, nil)
			if !errors.Is(serr, unix.EINTR) {
				break
			}
		}
		if errors.Is(serr, unix.EAGAIN) {
			serr = nil
		}
	}); err != nil {
		return err
	}
	return serr
}

// PeerSaw asks halfopen's echo peer what it received: how many bytes, and
// how many of them NUL, which are netcheck's urgent probes read in band.
func (d *OOBProbe) PeerSaw(p *harness.Process) string {
	return peerStats(p)
}

// peerStats sends the echo peer a "stats" command and returns its answer,
// or why there is none.
func peerStats(p *harness.Process) string {
	if p == nil || p.Label != "peer" {
		return "no built-in peer to ask"
	}
	ev, err := p.Request(context.Background(), agentcmd.Command{Cmd: agentcmd.CmdStats}, agentcmd.EventStats)
	if err != nil {
		return "no answer: " + err.Error()
	}
	return ev.Msg
}

// WriteEvery is its urgent byte's interval.
func (d *OOBProbe) WriteEvery() time.Duration { return d.Every }

// PredictLocalFailure: with its own link gone, see localFailurePrediction.
func (d *OOBProbe) PredictLocalFailure() harness.Prediction {
	return localFailurePrediction(d.Retries2, d.Every)
}

// PredictSample: as write-probe; the urgent byte is a byte of the stream,
// retransmitted like any other.
func (d *OOBProbe) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	return writerSample(st, e, d.Every, d.Retries2, 0)
}

// PredictResetAfter: its first write or resend at or after `after`, when
// the path resets from then on (tcprules.WriterResetAfter).
func (d *OOBProbe) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return tcprules.WriterResetAfter(st, d.Every, retries2(d.Retries2), tcprules.RTOMax, 0, after), true
}
