package detectors

import (
	"math"
	"strings"
	"testing"
	"time"

	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
)

// TestStrategySpecs checks the parameters and the predictions of the
// reference text's strategies, as the registry decodes them.
func TestStrategySpecs(t *testing.T) {
	for _, tc := range []struct {
		spec         string
		wantErr      string
		never        bool
		lo, hi       time.Duration
		ruleContains string
		sysctls      map[string]string
		conns        int
	}{
		{spec: "select-recv", never: true},
		{spec: "select-recv:timeout=0s", wantErr: "timeout must be at least 1ms"},
		{spec: "naive-recv:timeout=250ms", never: true, ruleContains: "EINTR"},
		{spec: "rdhup", never: true},
		{spec: "rdhup:x=1", wantErr: "takes no parameters"},
		{spec: "tcp-info:every=50ms", never: true},
		{spec: "keepalive-default", lo: 675 * time.Second, hi: 7875*time.Second + 7875*time.Second/8, ruleContains: "7875 s",
			sysctls: map[string]string{"net.ipv4.tcp_keepalive_time": "7200", "net.ipv4.tcp_keepalive_intvl": "75", "net.ipv4.tcp_keepalive_probes": "9"}},
		{spec: "keepalive-default:scale=3600", lo: 9 * time.Second, hi: 11*time.Second + 11*time.Second/8, ruleContains: "7875 s",
			sysctls: map[string]string{"net.ipv4.tcp_keepalive_time": "2", "net.ipv4.tcp_keepalive_intvl": "1", "net.ipv4.tcp_keepalive_probes": "9"}},
		{spec: "keepalive-default:scale=0", wantErr: "scale must be at least 1"},
		// The user timeout cuts 9 probes short: k = ⌈(3−1)/1⌉ = 2.
		{spec: "keepalive-user-timeout", lo: 2 * time.Second, hi: 3*time.Second + 3*time.Second/8, ruleContains: "ignoring cnt"},
		// ...or outlasts 2 probes: k = ⌈(4−1)/1⌉ = 3.
		{spec: "keepalive-user-timeout:cnt=2,timeout=4s", lo: 3 * time.Second, hi: 4*time.Second + 4*time.Second/8},
		// A user timeout shorter than idle still needs one probe out.
		{spec: "keepalive-user-timeout:idle=5s,timeout=1s", lo: 1 * time.Second, hi: 6*time.Second + 6*time.Second/8},
		{spec: "keepalive-user-timeout:idle=1500ms", wantErr: "whole number of seconds"},
		{spec: "write-probe", lo: 928692 * time.Millisecond, ruleContains: "924.6",
			sysctls: map[string]string{"net.ipv4.tcp_retries2": "15"}},
		{spec: "write-probe:retries2=2", lo: 3060 * time.Millisecond, hi: 7130 * time.Millisecond,
			sysctls: map[string]string{"net.ipv4.tcp_retries2": "2"}},
		{spec: "oob-probe:retries2=2,every=100ms", lo: 3060 * time.Millisecond, hi: 7030 * time.Millisecond},
		{spec: "write-probe:retries2=0", wantErr: "retries2 must be at least 1"},
		{spec: "heartbeat-dedicated", lo: 400 * time.Millisecond, hi: 620 * time.Millisecond, conns: 2},
		{spec: "phi-accrual", lo: 112243 * time.Microsecond, hi: 500608 * time.Microsecond, ruleContains: "Hayashibara"},
		{spec: "phi-accrual:window=1", wantErr: "window must be at least 2"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			d, _, err := harness.NewDetector(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := d.Predict()
			if p.Never != tc.never {
				t.Fatalf("Never = %v, want %v (%s)", p.Never, tc.never, p.Rule)
			}
			if !tc.never {
				if p.Lo != tc.lo.Round(time.Microsecond) && (p.Lo-tc.lo).Abs() > time.Millisecond {
					t.Errorf("Lo = %v, want %v", p.Lo, tc.lo)
				}
				if tc.hi != 0 && (p.Hi-tc.hi).Abs() > time.Millisecond {
					t.Errorf("Hi = %v, want %v", p.Hi, tc.hi)
				}
				if len(p.Reasons) == 0 {
					t.Errorf("no reasons")
				}
			}
			if !strings.Contains(p.Rule, tc.ruleContains) {
				t.Errorf("Rule %q does not contain %q", p.Rule, tc.ruleContains)
			}
			if tc.sysctls != nil {
				// What a cell writes in the watcher's namespace for it.
				c, err := harness.Resolve(harness.CellConfig{Detector: tc.spec, Fault: "blackhole"})
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.sysctls {
					if got := c.WatcherSysctls[k]; got != v {
						t.Errorf("watcher sysctl %s = %q, want %q", k, got, v)
					}
				}
			}
			if tc.conns != 0 {
				if cc, ok := d.(interface{ Conns() int }); !ok || cc.Conns() != tc.conns {
					t.Errorf("conns: want %d", tc.conns)
				}
			}
		})
	}
}

// TestTCPInfoPredictClose: tcp-info reacts to a FIN or an RST within one poll.
func TestTCPInfoPredictClose(t *testing.T) {
	d := &TCPInfo{Every: 100 * time.Millisecond}
	for e, want := range map[harness.Effect][]string{
		harness.EffectFIN: {"CLOSE_WAIT"}, harness.EffectRST: {"ECONNRESET"}, harness.EffectFINOrRST: {"CLOSE_WAIT", "ECONNRESET"},
	} {
		p := d.PredictClose(e)
		if p.Never || p.Hi != 150*time.Millisecond || strings.Join(p.Reasons, ",") != strings.Join(want, ",") {
			t.Errorf("%s: %+v", e, p)
		}
	}
	if !d.PredictClose(harness.EffectResetOnWrite).Never {
		t.Errorf("a detector that never writes cannot see a reset-on-write path")
	}
}

// TestPhi checks φ against values computed by hand from the paper's
// formula φ = −log10(1 − F(Δ)), F the normal CDF: 1 − F(μ) = 1/2, and
// 1 − F(μ + kσ) is the normal tail Q(k): Q(1) = 0.158655, Q(2) = 0.0227501,
// Q(3) = 0.00134990, Q(−1) = 0.841345.
func TestPhi(t *testing.T) {
	for _, tc := range []struct {
		delta, mean, std, want float64
	}{
		{200, 200, 20, 0.301030},  // log10(2)
		{220, 200, 20, 0.799546},  // −log10(0.158655)
		{240, 200, 20, 1.643012},  // −log10(0.0227501)
		{260, 200, 20, 2.869666},  // −log10(0.00134990)
		{180, 200, 20, 0.074997},  // −log10(0.841345)
		{1.5, 1, 0.25, 1.643012},  // units do not matter
		{424.48, 200, 40, 8.0000}, // z(8) = 5.612 (Q(5.612) = 1e-8): μ + 5.612·σ
	} {
		if got := phi(tc.delta, tc.mean, tc.std); math.Abs(got-tc.want) > 1e-4 {
			t.Errorf("phi(%v; %v, %v) = %.6f, want %.6f", tc.delta, tc.mean, tc.std, got, tc.want)
		}
	}
	if z := phiQuantile(8); math.Abs(z-5.612) > 1e-3 {
		t.Errorf("phiQuantile(8) = %v, want 5.612", z)
	}
	if z := phiQuantile(1); math.Abs(z-1.28155) > 1e-4 {
		t.Errorf("phiQuantile(1) = %v, want 1.28155 (1 − F = 0.1)", z)
	}
	if math.IsNaN(phi(1e6, 0, 1)) {
		t.Errorf("phi is NaN far in the tail")
	}
}

// TestPhiHistory drives the detector's state with injected instants.
func TestPhiHistory(t *testing.T) {
	ms := func(n float64) int64 { return int64(n * 1e6) }
	h := newPhiHistory(4, 200*time.Millisecond, 0)
	// Seeds only: mean 200 ms, σ 50 ms.
	if m, s := h.stats(); m != 200e6 || s != 50e6 {
		t.Fatalf("seeded stats = %v, %v", m, s)
	}
	if got := h.phi(ms(200)); math.Abs(got-0.30103) > 1e-4 {
		t.Errorf("phi at the mean = %v", got)
	}
	// Perfectly regular beats push the seeds out and σ to its floor, 20 ms.
	for i := 1; i <= 6; i++ {
		h.heard(ms(200 * float64(i)))
	}
	if m, s := h.stats(); m != 200e6 || s != 20e6 {
		t.Fatalf("regular stats = %v, %v", m, s)
	}
	last := ms(1200)
	if got := h.phi(last + ms(240)); math.Abs(got-1.643012) > 1e-4 {
		t.Errorf("phi 2σ late = %v, want 1.643", got)
	}
	want := last + ms(200) + int64(phiQuantile(8)*20e6)
	if got := h.deadline(8); (got-want) > 1 || (want-got) > 1 {
		t.Errorf("deadline = %d, want %d", got, want)
	}
	// A beat that goes back in time is ignored.
	h.heard(ms(100))
	if h.last != last {
		t.Errorf("last moved back")
	}
}
