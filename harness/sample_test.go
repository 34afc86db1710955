package harness

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/tcprules"
)

// TestJudge decides samples from fabricated instants: no clock, no sleep.
func TestJudge(t *testing.T) {
	const s = int64(time.Second)
	win := decisionWindow{start: 10 * s, at: 20 * s, end: 25 * s}
	for _, tc := range []struct {
		name           string
		stamp, arrived int64
		wantSeconds    float64 // when detected
		wantReason     string
		wantErr        string
	}{
		{name: "inside the budget", stamp: 22 * s, arrived: 22*s + 1000, wantSeconds: 2, wantReason: "ETIMEDOUT"},
		{name: "at the budget's end", stamp: 25 * s, arrived: 25 * s, wantSeconds: 5, wantReason: "ETIMEDOUT"},
		{name: "after the budget", stamp: 25*s + 1, arrived: 26 * s, wantReason: "budget"},
		{name: "before the fault", stamp: 19 * s, arrived: 19 * s, wantErr: "before the fault"},
		{name: "before the watcher started", stamp: 9 * s, arrived: 21 * s, wantErr: "before it was started"},
		{name: "in the future", stamp: 3600 * s, arrived: 22 * s, wantErr: "after halfopen received it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := win.judge(protocol.Event{Event: protocol.EventDead, TNs: tc.stamp, Reason: "ETIMEDOUT"}, tc.arrived, report.Sample{Seed: 7})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "ETIMEDOUT") {
					t.Fatalf("judge = %+v, %v; want an error naming the decision and %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Reason != tc.wantReason || got.Seed != 7 {
				t.Fatalf("judge = %+v, want reason %q and the base sample's seed", got, tc.wantReason)
			}
			if tc.wantReason == "budget" {
				if got.Detected || got.Seconds != nil {
					t.Errorf("a censored sample has a time: %+v", got)
				}
				return
			}
			if !got.Detected || got.Seconds == nil || *got.Seconds != tc.wantSeconds || got.DecidedNs != tc.stamp {
				t.Errorf("judge = %+v, want detected after %v s at its own stamp", got, tc.wantSeconds)
			}
		})
	}
}

// TestDisturbanceLog turns a watcher's events into false positives and
// mistakes on the sample's time line.
func TestDisturbanceLog(t *testing.T) {
	const s = int64(time.Second)
	l := disturbanceLog{at: 100 * s, sample: report.Sample{Seed: 3}}
	for _, ev := range []protocol.Event{
		{Event: protocol.EventLog, TNs: 100*s + 1},
		{Event: protocol.EventDead, TNs: 101 * s, Reason: "EINTR"},
		{Event: protocol.EventConnected, TNs: 101*s + s/2},
		{Event: protocol.EventDead, TNs: 103 * s, Reason: "EINTR"},
	} {
		l.event(ev)
	}
	got, mistakes := l.close(110 * s)
	if got.FalsePositives != 2 || !got.Detected || *got.Seconds != 1 || got.Reason != "EINTR" || got.WindowS != 10 {
		t.Errorf("sample %+v: want 2 false positives, the first after 1 s, a 10 s window", got)
	}
	want := []report.Mistake{{StartS: 1, EndS: 1.5}, {StartS: 3, EndS: 10}}
	if len(mistakes) != 2 || mistakes[0] != want[0] || mistakes[1] != want[1] {
		t.Errorf("mistakes %+v, want %+v (the open one lasts until the end)", mistakes, want)
	}

	quiet := disturbanceLog{at: 100 * s}
	got, mistakes = quiet.close(102 * s)
	if got.Reason != "survived" || got.Detected || len(mistakes) != 0 {
		t.Errorf("a quiet window gave %+v, %v; want survived", got, mistakes)
	}
}

// resetAt is a detector whose first segment after `after` goes at the next
// multiple of 800 ms: a ResetForecaster in miniature.
type resetAt struct{ ReadEOF0 }

// ReadEOF0 stands in for a detector's other methods.
type ReadEOF0 struct{}

func (ReadEOF0) Predict() Prediction                    { return Prediction{Never: true} }
func (ReadEOF0) Watch(context.Context, *Watch) Decision { return Decision{} }
func (resetAt) PredictResetAfter(_ tcprules.ConnState, after time.Duration) (tcprules.Forecast, bool) {
	next := (after/(800*time.Millisecond) + 1) * 800 * time.Millisecond
	return tcprules.Forecast{AtS: next.Seconds(), LoS: next.Seconds(), HiS: next.Seconds(), Rule: "next segment"}, true
}

// returnedAt is a host-reboot in miniature: down for 1 s, back at a
// stamped instant.
type returnedAt struct {
	Fault
	back int64
}

func (r returnedAt) Returned() (int64, error)  { return r.back, nil }
func (r returnedAt) ResetAfter() time.Duration { return time.Second }

// TestForecastFromAReturn: a rebooted host's forecast counts from its
// stamped return; when a segment due within returnBlur of the stamp may
// have met the returned host or been lost before it, the window holds both
// outcomes.
func TestForecastFromAReturn(t *testing.T) {
	c := &Cell{Detector: resetAt{}, Effect: EffectResetOnWrite}
	st := tcprules.ConnState{Source: "tcp_info"}
	const inj = int64(10 * time.Second)
	tests := []struct {
		name       string
		back       time.Duration // after the fault
		lo, at, hi float64
	}{
		{"far from a segment", 1300 * time.Millisecond, 1.6, 1.6, 1.6},
		{"a segment just before the stamp", 1610 * time.Millisecond, 1.6, 2.4, 2.4},
		{"a segment just after the stamp", 1590 * time.Millisecond, 1.6, 1.6, 2.4},
		{"still down: from its stated delay", 0, 1.6, 1.6, 1.6},
	}
	for _, tt := range tests {
		back := int64(0)
		if tt.back > 0 {
			back = inj + int64(tt.back)
		}
		fc := forecastSample(c, returnedAt{back: back}, topo.PathDirect, st, inj)
		if fc == nil || fc.LoS != tt.lo || fc.AtS != tt.at || fc.HiS != tt.hi {
			t.Errorf("%s: forecast %+v, want [%v, %v] at %v", tt.name, fc, tt.lo, tt.hi, tt.at)
		}
	}
}
