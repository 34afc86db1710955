package report

import (
	"strings"
	"testing"

	"github.com/halfopen/halfopen/capture"
	"github.com/halfopen/halfopen/tcprules"
)

// TestTimelineShowsStateAndForecast: a sample's timeline says the state at
// the fault and draws its forecast band when it fits the plot; a forecast
// far off the plot is named, not drawn.
func TestTimelineShowsStateAndForecast(t *testing.T) {
	const s = int64(1e9)
	events := []capture.Event{
		{Ns: 9 * s, Iface: "to-watcher", Src: "198.18.1.2:7000", Dst: "198.18.2.2:40000", Kind: capture.KindData, Flags: "PA", Len: 40},
		{Ns: 12 * s, Iface: "to-watcher", Src: "198.18.2.2:40000", Dst: "198.18.1.2:7000", Kind: capture.KindKeepalive, Flags: "A"},
	}
	secs, res := 3.2, 0.02
	smp := Sample{Detected: true, Seconds: &secs, Reason: "ETIMEDOUT", InjectedNs: 10 * s, DecidedNs: 13*s + s/5, ResidualS: &res,
		State:    &tcprules.ConnState{TCPState: "ESTABLISHED", SinceDataRecvS: 1, SinceDataSentS: 2, RTOS: 0.204, Source: "tcp_info+capture"},
		Forecast: &tcprules.Forecast{AtS: 3.18, LoS: 3.1, HiS: 3.3, Rule: "keepalive after idle"}}
	svg := string(timelinePlot(events, smp, "t"))
	for _, want := range []string{"at the fault: ESTABLISHED, 0 unacknowledged, last data received 1 s", "tcp_info+capture", "forecast +3.18 s", `class="band"`, "keepalive after idle"} {
		if !strings.Contains(svg, want) {
			t.Errorf("timeline lacks %q:\n%s", want, svg)
		}
	}
	smp.Forecast = &tcprules.Forecast{AtS: 924, LoS: 900, HiS: 950, Rule: "tcp_retries2"}
	svg = string(timelinePlot(events, smp, "t"))
	if strings.Contains(svg, `class="band"`) || !strings.Contains(svg, "forecast +15 min 24 s") {
		t.Errorf("a 924 s forecast was drawn on a 4 s plot, or not named:\n%s", svg)
	}
}
