package gate_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
	gtypes "github.com/onsi/gomega/types"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// result is a measured cell as Measure returns it, without a lab.
func result(t *testing.T, fault string, kind report.Kind, samples ...report.Sample) *gate.Result {
	t.Helper()
	c, err := harness.Resolve(harness.CellConfig{Detector: "keepalive-tuned:idle=1s,intvl=1s,cnt=3", Fault: fault, Side: protocol.SideClient, Samples: 3})
	if err != nil {
		t.Fatal(err)
	}
	return gate.ResultOf(c.Describe(), 8*time.Second, report.Cell{Detector: c.DetSpec.String(), Fault: fault, Kind: kind, Expect: c.Expect, BudgetS: 8, Samples: samples})
}

func secs(v float64) *float64 { return &v }

// TestMatchersFailUnmeasured shows that a matcher over a cell with an
// errored sample, or none, fails whether or not it is negated, with the
// sentence that says why: Match returns an error, which Gomega never
// takes for a mismatch.
func TestMatchersFailUnmeasured(t *testing.T) {
	errored := report.Sample{Error: "peer never said connected"}
	tests := []struct {
		name    string
		res     *gate.Result
		matcher func() gtypes.GomegaMatcher
		want    string
	}{
		{"errored, NotTo(Survive())", result(t, "router-restart:outage=1s", report.KindDisturbance, errored), gate.Survive, "sample 0 could not be measured: peer never said connected"},
		{"errored, NotTo(NeverDetect())", result(t, "blackhole", report.KindDetection, errored, errored), gate.NeverDetect, "could not be measured"},
		{"nothing measured, NotTo(DetectWithin())", result(t, "blackhole", report.KindDetection), func() gtypes.GomegaMatcher { return gate.DetectWithin(time.Second) }, "measured no sample"},
		{"nothing measured, NotTo(AgreeWithTheory())", result(t, "blackhole", report.KindDetection), gate.AgreeWithTheory, "measured no sample"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, negate := range []bool{false, true} {
				var failure string
				g := gomega.NewGomega(func(msg string, _ ...int) { failure = msg })
				if negate {
					g.Expect(tt.res).NotTo(tt.matcher())
				} else {
					g.Expect(tt.res).To(tt.matcher())
				}
				if !strings.Contains(failure, tt.want) {
					t.Errorf("negated=%v: failure %q, want one saying %q", negate, failure, tt.want)
				}
			}
		})
	}
}

// TestMatchersShareTheBudgetChecker checks DetectWithin against report's
// budget rule: a censored sample ranks past every budget.
func TestMatchersShareTheBudgetChecker(t *testing.T) {
	res := result(t, "blackhole", report.KindDetection,
		report.Sample{Detected: true, Seconds: secs(3.6), Reason: "ETIMEDOUT"}, report.Sample{Reason: "budget"})
	ok, err := gate.DetectWithin(5 * time.Second).Match(res)
	if err != nil || ok {
		t.Fatalf("Match = %v, %v; want a mismatch", ok, err)
	}
	m := gate.DetectWithin(5 * time.Second)
	m.Match(res)
	if msg := m.FailureMessage(res); !strings.Contains(msg, "p95 is > 8s (censored), allowed 5s") {
		t.Errorf("failure message %q", msg)
	}
}

// TestBadEntryFailsAlone re-runs this test binary's gate suite with a
// table whose one entry names a detector that does not parse: that
// entry's spec fails with the parser's sentence, and the other entry is
// measured and passes.
func TestBadEntryFailsAlone(t *testing.T) {
	if os.Getenv("HALFOPEN_TEST_BAD_ENTRY") != "" || os.Getenv("HALFOPEN_TEST_PREFLIGHT") != "" {
		t.Skip("already the re-executed suite")
	}
	if err := harness.Preflight(); err != nil {
		t.Skip(err) // the good entry is measured in a lab
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGate$", "-ginkgo.no-color", "-ginkgo.label-filter=bad-input")
	cmd.Env = append(os.Environ(), "HALFOPEN_TEST_BAD_ENTRY=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed:\n%s", out)
	}
	for _, want := range []string{
		`entry "a misspelt detector": gate cell no-such-detector:x=1 × graceful-close: no detector is called "no-such-detector"`,
		"measuring 2 of 2 entries together: a misspelt detector; read-eof sees a FIN\n",
		"1 Passed | 1 Failed",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestMeasuredNothing shows that a suite whose filters chose no measuring
// spec fails with a sentence saying so, and one that measured passes.
func TestMeasuredNothing(t *testing.T) {
	empty := ginkgo.Report{SuiteSucceeded: true, PreRunStats: types.PreRunStats{TotalSpecs: 4, SpecsThatWillRun: 0}}
	if why := gate.MeasuredNothing(empty); !strings.Contains(why, "measured no cell (0 of 4 specs") {
		t.Errorf("empty suite: %q", why)
	}
	measured := empty
	measured.SpecReports = types.SpecReports{{ReportEntries: types.ReportEntries{{Name: "halfopen gate: measured"}}}}
	if why := gate.MeasuredNothing(measured); why != "" {
		t.Errorf("a suite that measured: %q", why)
	}
}

// TestGateFailsUnmeasured re-runs this test binary's gate suite twice: on
// a machine whose preflight fails, Measure fails the spec with the
// preflight's sentence (it used to skip, and the suite passed); with a
// label filter that chooses no spec, the suite fails saying it measured
// nothing.
func TestGateFailsUnmeasured(t *testing.T) {
	if os.Getenv("HALFOPEN_TEST_PREFLIGHT") != "" {
		t.Skip("already the re-executed suite")
	}
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"preflight fails", []string{"-ginkgo.focus=notices a dead server within its keepalive budget"}, "HALFOPEN_TEST_PREFLIGHT=halfopen needs root: run it with sudo", "cannot measure, so the gate fails rather than pass unmeasured: halfopen needs root"},
		{"filter chooses nothing", []string{"-ginkgo.label-filter=no-such-label"}, "", "the suite measured no cell (0 of"},
		{"a label filter chooses the table's entries", []string{"-ginkgo.label-filter=table && (host-crash || router-restart)"}, "HALFOPEN_TEST_PREFLIGHT=halfopen needs root: run it with sudo",
			"gate keepalive 1/1/3 as a table: measuring 2 of 3 entries together: notices a host crash; survives a 1 s router restart\n"},
		// Each entry is labelled with its cell's fault (and family) and side.
		{"the cell's own labels choose", []string{"-ginkgo.label-filter=table && host && client"}, "HALFOPEN_TEST_PREFLIGHT=halfopen needs root: run it with sudo",
			"gate keepalive 1/1/3 as a table: measuring 1 of 3 entries together: notices a host crash\n"},
		{"a shard measures every n-th chosen entry", []string{"-ginkgo.label-filter=table"}, "HALFOPEN_TEST_PREFLIGHT=halfopen needs root: run it with sudo\x00HALFOPEN_SHARD=1/2",
			"gate keepalive 1/1/3 as a table: measuring 2 of 3 entries (shard 1/2) together: notices a blackhole; survives a 1 s router restart\n"},
		// A claim chosen alone measures the entries it reads.
		{"a claim measures what it reads", []string{"-ginkgo.focus=gives up when"}, "HALFOPEN_TEST_PREFLIGHT=halfopen needs root: run it with sudo",
			"gate keepalive 1/1/3, a role and halfopen's detector: measuring 2 of 2 entries together: the role; keepalive-tuned\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestGate$", "-ginkgo.no-color"}, tt.args...)...)
			cmd.Env = append(os.Environ(), strings.Split(tt.env, "\x00")...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed:\n%s", out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
			if strings.Contains(string(out), "[SKIPPED]") {
				t.Errorf("a spec was skipped:\n%s", out)
			}
		})
	}
}
