package detectors

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// WriteProbe writes one byte every `every` (the echo peer sends it back)
// and reads: EPIPE, ECONNRESET or ETIMEDOUT from either is death. Against a
// silent peer it learns of death when the kernel stops retransmitting, after
// tcp_retries2 backoffs. retries2 is the watcher namespace's tcp_retries2:
// left out, whatever the namespace has (the cell's --sysctl, or the
// kernel's 15: 924.6 s); given, it is written there (quick runs lower it).
type WriteProbe struct {
	Every    time.Duration `param:"every" default:"200ms" min:"1ms" help:"interval of the 1-byte application write"`
	Retries2 int           `param:"retries2" sysctl:"net.ipv4.tcp_retries2" min:"1" max:"255" help:"net.ipv4.tcp_retries2 of the watcher's namespace (left out: the namespace's, kernel default 15)"`
}

func init() {
	harness.RegisterDetector("write-probe", "a 1-byte write every `every`; EPIPE/ECONNRESET/ETIMEDOUT is dead (retransmission timeout, tcp_retries2)", &WriteProbe{})
}

// Predict: the retransmission timeout after the first unacknowledged byte.
func (d *WriteProbe) Predict() harness.Prediction { return retransmitPrediction(d.Retries2, d.Every) }

// Watch writes and reads until one fails.
func (d *WriteProbe) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	c := w.Conns[0]
	return decideFirst(ctx,
		func(ctx context.Context) harness.Decision { return readUntilEnd(ctx, c, nil) },
		func(ctx context.Context) harness.Decision { return writeEvery(ctx, c, d.Every) },
	)
}

// WriteEvery is its 1-byte write's interval.
func (d *WriteProbe) WriteEvery() time.Duration { return d.Every }

// PredictLocalFailure: with its own link gone, see localFailurePrediction.
func (d *WriteProbe) PredictLocalFailure() harness.Prediction {
	return localFailurePrediction(d.Retries2, d.Every)
}

// PredictSample: tcp_retries2's give-up on the first write never
// acknowledged (tcprules.WriterRetransmission).
func (d *WriteProbe) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	return writerSample(st, e, d.Every, d.Retries2, 0)
}

// PredictResetAfter: its first write or resend at or after `after`, when
// the path resets from then on (tcprules.WriterResetAfter).
func (d *WriteProbe) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return tcprules.WriterResetAfter(st, d.Every, retries2(d.Retries2), tcprules.RTOMax, 0, after), true
}
