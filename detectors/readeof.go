package detectors

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// ReadEOF blocks in read: 0 bytes (a FIN) or an error (an RST) is death;
// EINTR is retried. It sends nothing, so a silent peer is never detected.
type ReadEOF struct{}

func init() {
	harness.RegisterDetector("read-eof", "blocking read; 0 bytes or an error means dead; EINTR retried", &ReadEOF{})
}

// Predict: never, for a silent peer.
func (d *ReadEOF) Predict() harness.Prediction {
	return harness.Prediction{Never: true, Rule: "an idle TCP connection exchanges no segment (TCP/IP Illustrated vol. 1 §23.1): without a FIN or RST a blocked read waits forever"}
}

// Watch reads until the stream ends.
func (d *ReadEOF) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	return readUntilEnd(ctx, w.Conns[0], nil)
}

// PredictSample: a FIN or an RST at once; never on an idle silent peer;
// data in flight at the fault gives the kernel's retransmission give-up.
func (d *ReadEOF) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	return readerSample(st, e)
}

// PredictResetAfter: only a resend of data in flight at the fault can
// meet a reset; idle, never.
func (d *ReadEOF) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return readerResetAfter(st, after), true
}
