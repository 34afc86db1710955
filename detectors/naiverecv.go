package detectors

import (
	"context"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/tcprules"
)

// NaiveRecv is select-recv without the reference text's EINTR check:
// select() or recv() returning -1, for whatever reason, is taken for a dead
// peer. A signal delivered to the thread blocked in select() makes it return
// EINTR even with SA_RESTART (signal(7): select is never restarted), so a
// signal storm produces false positives with reason "EINTR". It is here to
// measure the reference text's warning, not to be used.
type NaiveRecv struct {
	Timeout time.Duration `param:"timeout" default:"1s" min:"1ms" help:"bound of one select() wait; a timeout is idle, not dead"`
}

func init() {
	harness.RegisterDetector("naive-recv", "select() then recv(); recv()<=0 is dead with no EINTR check (the reference text's warning)", &NaiveRecv{})
}

// Predict: never, for a silent peer; signals make false positives.
func (d *NaiveRecv) Predict() harness.Prediction {
	return harness.Prediction{Never: true, Rule: "as select-recv, never for a silent peer; but a signal caught by the blocked thread makes select() fail with EINTR (signal(7): never restarted), which it takes for death: false positives under signals"}
}

// Watch runs the select/recv loop that treats EINTR as death.
func (d *NaiveRecv) Watch(ctx context.Context, w *harness.Watch) harness.Decision {
	return watchRaw(ctx, w.Conns[0], func(s *rawSocket) harness.Decision { return selectRecv(s, d.Timeout, false) })
}

// FooledBySignals: select() fails with EINTR under a caught signal, and
// naive-recv takes that for death.
func (d *NaiveRecv) FooledBySignals() {}

// PredictSample: a FIN or an RST at once; never on an idle silent peer;
// data in flight at the fault gives the kernel's retransmission give-up.
func (d *NaiveRecv) PredictSample(st tcprules.ConnState, e harness.Effect) (tcprules.Forecast, bool) {
	return readerSample(st, e)
}

// PredictResetAfter: only a resend of data in flight at the fault can
// meet a reset; idle, never.
func (d *NaiveRecv) PredictResetAfter(st tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	return readerResetAfter(st, after), true
}
