package harness_test

import (
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// TestResolveSysctls: a detector's kernel parameter that the spec leaves
// out is what the namespace has (the cell's sysctls, or the kernel's
// default); one given twice with different values is refused.
func TestResolveSysctls(t *testing.T) {
	const retries2 = "net.ipv4.tcp_retries2"
	for _, tc := range []struct {
		name        string
		detector    string
		sysctls     map[string]string
		wantSpec    string
		wantWatcher map[string]string
		wantErr     string
	}{
		{name: "the kernel's default", detector: "write-probe:every=100ms",
			wantSpec: "write-probe:every=100ms,retries2=15", wantWatcher: map[string]string{retries2: "15"}},
		{name: "the cell's sysctl", detector: "write-probe:every=100ms", sysctls: map[string]string{retries2: "5"},
			wantSpec: "write-probe:every=100ms,retries2=5", wantWatcher: map[string]string{retries2: "5"}},
		{name: "given once in each, alike", detector: "oob-probe:retries2=5", sysctls: map[string]string{retries2: "5"},
			wantSpec: "oob-probe:every=200ms,retries2=5", wantWatcher: map[string]string{retries2: "5"}},
		{name: "given once in each, differently", detector: "write-probe:retries2=8", sysctls: map[string]string{retries2: "5"},
			wantErr: "sets net.ipv4.tcp_retries2=8 in the watcher's namespace, but the cell's sysctls (--sysctl) set net.ipv4.tcp_retries2=5"},
		{name: "keepalive-default reads the namespace", detector: "keepalive-default", sysctls: map[string]string{"net.ipv4.tcp_keepalive_time": "10"},
			wantSpec: "keepalive-default:intvl=75,probes=9,scale=1,time=10"},
		{name: "keepalive-default's scale against a sysctl", detector: "keepalive-default:scale=3600", sysctls: map[string]string{"net.ipv4.tcp_keepalive_time": "600"},
			wantErr: "sets net.ipv4.tcp_keepalive_time=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := harness.Resolve(harness.CellConfig{Detector: tc.detector, Fault: "blackhole", Sysctls: tc.sysctls})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve = %v; want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.DetSpec.String(); got != tc.wantSpec {
				t.Errorf("spec %q, want %q", got, tc.wantSpec)
			}
			for k, v := range tc.wantWatcher {
				if c.WatcherSysctls[k] != v {
					t.Errorf("watcher sysctls %v, want %s=%s", c.WatcherSysctls, k, v)
				}
			}
		})
	}
}

// TestResolvePredictsFromTheNamespace: the prediction follows the value in
// force, not a default the user did not give.
func TestResolvePredictsFromTheNamespace(t *testing.T) {
	fast, err := harness.Resolve(harness.CellConfig{Detector: "write-probe:every=100ms", Fault: "blackhole", Sysctls: map[string]string{"net.ipv4.tcp_retries2": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := harness.Resolve(harness.CellConfig{Detector: "write-probe:every=100ms", Fault: "blackhole"})
	if err != nil {
		t.Fatal(err)
	}
	// tcp_retries2=5: the model timeout is (2^6−1)·0.2 s = 12.6 s, counted
	// from the first retransmission, 204 ms after the first unacknowledged
	// write: Cloudflare's method measured 13.32–13.37 s here.
	if fast.Prediction.Lo > 13300*time.Millisecond || fast.Prediction.Hi < 13400*time.Millisecond || fast.Prediction.Hi > time.Minute {
		t.Errorf("retries2=5 predicts [%v, %v], which should hold 13.3–13.4 s", fast.Prediction.Lo, fast.Prediction.Hi)
	}
	if slow.Prediction.Lo < 900*time.Second {
		t.Errorf("retries2=15 predicts from %v, want the kernel's 924.6 s model", slow.Prediction.Lo)
	}
	if fast.Expect != report.ExpectDetect || fast.Budget < fast.Prediction.Hi {
		t.Errorf("expect %s, budget %v", fast.Expect, fast.Budget)
	}
}

// TestDisturbanceTheory: what theory claims of a disturbance follows from
// what the fault and the detector declare, and says nothing where the
// bounds do not decide.
func TestDisturbanceTheory(t *testing.T) {
	for _, tc := range []struct {
		detector, fault string
		want            report.Expectation
	}{
		{"naive-recv", "signal-storm", report.ExpectFalsePositives},
		{"select-recv", "signal-storm", report.ExpectSurvive},
		{"read-eof", "router-restart:outage=5s", report.ExpectSurvive},
		// 1 s of silence is past a 200 ms × 3 heart-beat's deadline (≤ 620 ms).
		{"heartbeat-inband:interval=200ms,misses=3", "router-restart:outage=1s", report.ExpectFalsePositives},
		// A write lost at most 200 ms into a 1 s silence is resent 1.428 s
		// after it, before a 2 s user timeout.
		{"user-timeout:timeout=2s,every=200ms", "router-restart:outage=1s", report.ExpectSurvive},
		// ...not surely before a 1 s one, nor surely after: no claim.
		{"user-timeout:timeout=1s,every=200ms", "router-restart:outage=900ms", report.ExpectUnknown},
		// A probe goes within 1.125 s of the heal, long before 3 probes fail.
		{"keepalive-tuned:idle=1s,intvl=1s,cnt=3", "router-restart:outage=1s", report.ExpectSurvive},
		// Random loss may silence the whole window, or nothing.
		{"keepalive-tuned:idle=1s,intvl=1s,cnt=3", "random-loss:percent=5,for=2s", report.ExpectUnknown},
		{"heartbeat-inband:interval=200ms,misses=6", "toxiproxy-latency:latency=200ms,jitter=50ms,for=1s", report.ExpectSurvive},
	} {
		c, err := harness.Resolve(harness.CellConfig{Detector: tc.detector, Fault: tc.fault})
		if err != nil {
			t.Fatal(err)
		}
		if c.Kind != report.KindDisturbance || c.Expect != tc.want {
			t.Errorf("%s × %s: %s cell expecting %q, want a disturbance expecting %q (%s)", tc.detector, tc.fault, c.Kind, c.Expect, tc.want, c.Prediction.Rule)
		}
	}
}
