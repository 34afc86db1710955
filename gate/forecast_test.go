package gate

import (
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/tcprules"
)

func decided(s float64, phase tcprules.Phase, f *tcprules.Forecast) report.Sample {
	return report.Sample{Detected: true, Seconds: &s, Reason: "EOF", Phase: phase, Forecast: f}
}

func censored(phase tcprules.Phase, f *tcprules.Forecast) report.Sample {
	return report.Sample{Reason: "budget", Phase: phase, Forecast: f}
}

// TestForecastMatchers: a sample is held to its own forecast, whatever the
// cell aimed at; the in-flight finding needs a sample that met the request
// in flight, and none of those deciding; an errored or missing sample
// fails both, negated or not.
func TestForecastMatchers(t *testing.T) {
	retries := &tcprules.Forecast{AtS: 938.7, LoS: 937.7, HiS: 939.7}
	keepalive := &tcprules.Forecast{AtS: 5.06, LoS: 5.03, HiS: 5.08}
	tests := []struct {
		name        string
		samples     []report.Sample
		wantFollow  bool
		wantNever   bool
		wantErrPart string // Match returns an error containing it
	}{
		{"in flight, censored long before the kernel gives up", []report.Sample{censored(tcprules.PhaseInFlight, retries), censored(tcprules.PhaseInFlight, retries)}, true, true, ""},
		{"one sample came after the ACK and met the idle rule", []report.Sample{decided(5.048, tcprules.PhaseIdle, keepalive), censored(tcprules.PhaseInFlight, retries)}, true, true, ""},
		{"an in-flight sample that decided is no finding", []report.Sample{decided(5.5, tcprules.PhaseInFlight, retries)}, false, false, ""},
		{"no sample met the request in flight", []report.Sample{decided(5.06, tcprules.PhaseIdle, keepalive)}, true, false, ""},
		{"a decision off its forecast", []report.Sample{decided(5.3, tcprules.PhaseIdle, keepalive)}, false, false, ""},
		{"censored although the forecast fell within the budget", []report.Sample{censored(tcprules.PhaseIdle, keepalive)}, false, false, ""},
		{"no forecast", []report.Sample{censored(tcprules.PhaseInFlight, nil)}, false, true, ""},
		{"an errored sample", []report.Sample{{Reason: "error", Error: "inject failed"}}, false, false, "sample 0 could not be measured: inject failed"},
		{"nothing measured", nil, false, false, "measured no sample"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fromRecord(Cell{}, "role:name=w,peer=builtin × blackhole × client", 60*time.Second, report.Cell{Kind: report.KindDetection, Expect: report.ExpectDetect, BudgetS: 60, Samples: tt.samples})
			for _, m := range []struct {
				name string
				ok   bool
				m    interface {
					Match(any) (bool, error)
				}
			}{{"FollowForecast", tt.wantFollow, FollowForecast()}, {"NeverDetectInPhase", tt.wantNever, NeverDetectInPhase(tcprules.PhaseInFlight)}} {
				ok, err := m.m.Match(r)
				if tt.wantErrPart != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErrPart) {
						t.Errorf("%s: Match = %t, %v; want an error containing %q", m.name, ok, err, tt.wantErrPart)
					}
					continue
				}
				if err != nil || ok != m.ok {
					t.Errorf("%s: Match = %t, %v; want %t", m.name, ok, err, m.ok)
				}
			}
		})
	}
}
