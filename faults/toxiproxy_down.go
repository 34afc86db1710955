package faults

import (
	"context"
	"fmt"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// ToxiproxyDown: the proxy is disabled through the API ("enabled": false):
// Toxiproxy closes its listener and every connection through it, so the
// watcher reads end of stream (a FIN, or an RST with unread data) at once,
// and dials fail until it is enabled again. With `for` it is enabled again
// after that long: a disturbance in which every decision is a false
// positive that a real proxy restart would cause too.
type ToxiproxyDown struct {
	proxied
	For time.Duration `param:"for" optional:"" min:"1ms" help:"enable the proxy again after this long (absent: permanent)"`
}

func init() {
	harness.RegisterFault("toxiproxy-down", "the proxy is disabled: Toxiproxy closes every connection through it", &ToxiproxyDown{})
}

// Inject disables the proxy.
func (f *ToxiproxyDown) Inject(ctx context.Context, lab *harness.Lab, _ *harness.Conn) (harness.Heal, int64, error) {
	st, err := f.prepared(lab)
	if err != nil {
		return nil, 0, err
	}
	at := protocol.Now()
	if err := st.api.setEnabled(ctx, false); err != nil {
		return nil, 0, err
	}
	return func(ctx context.Context) (int64, error) {
		err := st.api.setEnabled(ctx, true)
		return protocol.Now(), err
	}, at, nil
}

// Effect is the proxy's close, or a disturbance with `for`.
func (f *ToxiproxyDown) Effect() harness.Effect {
	if f.For > 0 {
		return harness.EffectTransient
	}
	return harness.EffectFINOrRST
}

// Window is how long the proxy stays disabled.
func (f *ToxiproxyDown) Window() time.Duration { return f.For }

// Expect: every detector reads the proxy's close. The fault's instant is
// taken as the API request leaves and Toxiproxy closes the connections
// while it handles it, so the close may come as late as the request's
// round trip (apiRoundTrip).
func (f *ToxiproxyDown) Expect(det harness.Detector) (harness.Prediction, report.Expectation) {
	p, expect := proxiedExpect(det, true, 0, []string{"EOF", "ECONNRESET"}, "the disabled proxy closes every connection through it")
	if expect == report.ExpectDetect {
		p.Hi += apiRoundTrip
		p.Rule += fmt.Sprintf("; the close comes while Toxiproxy handles the disabling request, within its round trip (%v)", apiRoundTrip)
	}
	return p, expect
}

// apiRoundTrip bounds a Toxiproxy API request's round trip from the
// orchestrator to the agent in the router: about 1 ms on an idle machine,
// 200 ms measured with a load average of 14 on 2 cores.
const apiRoundTrip = 250 * time.Millisecond
