package suites

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// header is what the report records of a resolved cell before its
// samples: the theory the judge reads.
func header(c *harness.Cell) report.Cell {
	return report.Cell{
		Detector: c.DetSpec.String(), Fault: c.FaultSpec.String(), Side: string(c.Config.Side), Kind: c.Kind,
		BudgetS: c.Budget.Seconds(), PredictedS: c.Prediction.Seconds(), PredictedRule: c.Prediction.Rule,
		Expect: c.Expect, Reasons: c.Prediction.Reasons,
	}
}

// TestFormerFalseReds resolves, with the harness's real theory, the twin
// cells that the suites passed and the overview marked red, gives them the
// samples make test-faults measured, and checks that the one judge now
// says what the kernel's rules say, for the suite and the overview alike.
func TestFormerFalseReds(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skip(err) // an external program's hello is read in a namespace
	}
	examples, err := filepath.Abs("../examples")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("make", "-C", filepath.Join(examples, "c")).CombinedOutput(); err != nil {
		t.Fatalf("make -C examples/c: %v: %s", err, out)
	}
	c := func(name string) string { return "external:cmd=" + filepath.Join(examples, "c", "bin", name) }
	py := "external:cmd=" + filepath.Join(examples, "python", "keepalive_watcher.py") + ",idle=1s,intvl=1s,cnt=3"
	at := func(s float64, reason string) report.Sample {
		return report.Sample{Detected: true, Seconds: &s, Reason: reason}
	}
	censored := report.Sample{Reason: "budget"}
	r2 := map[string]string{"net.ipv4.tcp_retries2": "2"}
	tests := []struct {
		name     string
		cfg      harness.CellConfig
		samples  []report.Sample
		agrees   bool
		outcome  report.Outcome
		contains string
	}{
		// The kernel gives up retransmitting netcheck's unanswered urgent
		// probes after tcp_retries2 (ETIMEDOUT, tcp_write_timeout()): with
		// retries2 in its config its hello declares that range.
		{"netcheck × blackhole, retries2 declared", harness.CellConfig{Detector: c("netcheck") + ",every=200ms,retries2=2", Fault: "blackhole", Sysctls: r2},
			[]report.Sample{at(3.4, "ETIMEDOUT"), at(3.38, "ETIMEDOUT"), at(3.43, "ETIMEDOUT")}, true, report.OutcomeWithin, "inside the predicted 3.06–7.55 s"},
		// Its old hello, null, says "never": the kernel contradicts it, and
		// the judge says so (the suite used to judge it by its twin's range).
		{"netcheck × blackhole, null hello", harness.CellConfig{Detector: c("netcheck") + ",every=200ms", Fault: "blackhole", Sysctls: r2},
			[]report.Sample{at(3.4, "ETIMEDOUT")}, false, report.OutcomeOutside, "where theory says never"},
		// A FIN moves the socket to CLOSE_WAIT (tcp_fin()), which
		// SocketConnected() reports by its name.
		{"socket_connected × graceful-close", harness.CellConfig{Detector: c("socket_connected") + ",every=100ms", Fault: "graceful-close"},
			[]report.Sample{at(0.09, "CLOSE_WAIT"), at(0.02, "CLOSE_WAIT")}, true, report.OutcomeWithin, "inside the predicted 0–50 ms"},
		// The proxy's kernel acknowledges every keepalive probe
		// (tcp_keepalive_timer() counts only unanswered ones): theory makes
		// no claim for a foreign program, and a censored sample is measured.
		{"python keepalive × toxiproxy-host-crash", harness.CellConfig{Detector: py, Fault: "toxiproxy-host-crash"},
			[]report.Sample{censored, censored, censored}, true, report.OutcomeMeasured, "theory makes no claim"},
		{"python keepalive × toxiproxy-timeout", harness.CellConfig{Detector: py, Fault: "toxiproxy-timeout"},
			[]report.Sample{censored, censored, censored}, true, report.OutcomeMeasured, "theory makes no claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Side, tt.cfg.Samples = protocol.SideClient, len(tt.samples)
			hc, err := harness.Resolve(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			rec := header(hc)
			rec.Samples = tt.samples
			for i, s := range rec.Samples {
				if v := rec.JudgeSample(s); v.Agrees != tt.agrees {
					t.Errorf("sample %d: %v agrees=%v (%s), want agrees=%v", i, v.Class, v.Agrees, v.Why, tt.agrees)
				}
			}
			v := rec.Judge()
			if v.Outcome != tt.outcome || !strings.Contains(v.Why, tt.contains) {
				t.Errorf("Judge() = %v (%s), want %v containing %q", v.Outcome, v.Why, tt.outcome, tt.contains)
			}
		})
	}
}
