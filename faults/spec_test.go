package faults

import (
	"strings"
	"testing"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// TestSpecs checks, without root, that every fault of the catalogue decodes
// its parameters and refuses bad ones with one sentence naming what is
// allowed.
func TestSpecs(t *testing.T) {
	cases := []struct {
		spec    string
		wantErr string // a fragment of the error, "" for success
		effect  harness.Effect
	}{
		{spec: "local-cable-pull", effect: harness.EffectSilent},
		{spec: "local-cable-pull:for=2s", effect: harness.EffectTransient},
		{spec: "local-cable-pull:for=-1s", wantErr: "for must be at least 1ms"},
		{spec: "one-way", effect: harness.EffectSilent},
		{spec: "one-way:direction=to-peer,for=1s", effect: harness.EffectTransient},
		{spec: "one-way:direction=sideways", wantErr: "direction is one of to-watcher, to-peer"},
		{spec: "random-loss", effect: harness.EffectTransient},
		{spec: "random-loss:percent=150", wantErr: "percent must be at most 100"},
		{spec: "random-loss:percent=-1", wantErr: "percent must be at least 0"},
		{spec: "random-loss:percent=ten", wantErr: "not a whole number"},
		{spec: "host-reboot", effect: harness.EffectResetOnWrite},
		{spec: "host-reboot:down=-2s", wantErr: "down must be at least 0s"},
		{spec: "host-reboot:uptime=1s", wantErr: "its parameters are down"},
		{spec: "router-restart:outage=300ms", effect: harness.EffectTransient},
		{spec: "router-restart:outage=-1s", wantErr: "outage must be at least 1ms"},
		{spec: "router-restart:outage=soon", wantErr: "not a duration"},
		{spec: "half-open", effect: harness.EffectSilent},
		{spec: "half-open:for=1s", wantErr: "takes no parameters"},
		{spec: "middlebox-state-loss", effect: harness.EffectSilent},
		{spec: "middlebox-state-loss:mode=nat", effect: harness.EffectResetOnWrite},
		{spec: "middlebox-state-loss:mode=nat,scope=all", effect: harness.EffectResetOnWrite},
		{spec: "middlebox-state-loss:mode=bridge", wantErr: "mode is one of firewall, nat"},
		{spec: "middlebox-state-loss:scope=some", wantErr: "scope is one of flow, all"},
		{spec: "long-idle:for=5s", effect: harness.EffectTransient},
		{spec: "toxiproxy-latency:latency=100ms,jitter=10ms,for=1s", effect: harness.EffectTransient},
		{spec: "toxiproxy-latency:latency=-5ms", wantErr: "latency must be at least 0s"},
		{spec: "toxiproxy-latency:stream=sideways", wantErr: "stream is one of upstream, downstream"},
		{spec: "toxiproxy-latency:toxicity=2", wantErr: "toxicity must be at most 1"},
		{spec: "toxiproxy-bandwidth:rate=0", wantErr: "rate must be at least 1"},
		{spec: "toxiproxy-slicer:average_size=10,size_variation=5,delay=1ms", effect: harness.EffectTransient},
		{spec: "toxiproxy-slicer:average_size=4,size_variation=4", wantErr: "size_variation must be smaller than average_size"},
		{spec: "toxiproxy-slow-close:delay=500ms", effect: harness.EffectFIN},
		{spec: "toxiproxy-timeout", effect: harness.EffectSilent},
		{spec: "toxiproxy-timeout:timeout=-1s", wantErr: "timeout must be at least 0s"},
		{spec: "toxiproxy-reset-peer:timeout=100ms", effect: harness.EffectRST},
		{spec: "toxiproxy-limit-data:bytes=10", effect: harness.EffectFINOrRST},
		{spec: "toxiproxy-limit-data:bytes=-1", wantErr: "bytes must be at least 0"},
		{spec: "toxiproxy-down", effect: harness.EffectFINOrRST},
		{spec: "toxiproxy-down:for=1s", effect: harness.EffectTransient},
		{spec: "toxiproxy-host-crash", effect: harness.EffectSilent},
		{spec: "toxiproxy-jitter", wantErr: "no fault is called"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			f, _, err := harness.NewFault(tc.spec)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("NewFault(%q) succeeded, want an error containing %q", tc.spec, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewFault(%q) = %q, want it to contain %q", tc.spec, err, tc.wantErr)
				}
				if strings.Count(strings.TrimSuffix(err.Error(), "."), ". ") > 0 {
					t.Errorf("NewFault(%q) = %q, want one sentence", tc.spec, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewFault(%q): %v", tc.spec, err)
			}
			if got := f.Effect(); got != tc.effect {
				t.Errorf("%s: effect %s, want %s", tc.spec, got, tc.effect)
			}
			if tc.effect == harness.EffectTransient {
				w, ok := f.(harness.Windowed)
				if !ok || w.Window() <= 0 {
					t.Errorf("%s: a disturbance must say its window", tc.spec)
				}
			}
		})
	}
}

// TestTheory checks the expectations the catalogue's faults give, without
// root: rst-on-write, and the proxy answering for the peer.
func TestTheory(t *testing.T) {
	cases := []struct {
		detector, fault string
		expect          report.Expectation
		lo, hi          float64 // seconds, when expect is "detect"
		reason          string  // one reason that must be allowed
	}{
		{"read-eof", "host-reboot:down=1s", "never", 0, 0, ""},
		{"keepalive-tuned:idle=1s,intvl=1s,cnt=3", "host-reboot:down=1s", "detect", 1, -1, "ECONNRESET"},
		{"heartbeat-inband:interval=200ms,misses=3", "host-reboot:down=1s", "detect", 0.4, -1, "heartbeat"},
		{"read-eof", "middlebox-state-loss:mode=nat", "never", 0, 0, ""},
		{"user-timeout", "middlebox-state-loss:mode=nat", "detect", 0, -1, "ECONNRESET"},
		{"keepalive-tuned:idle=1s,intvl=1s,cnt=3", "toxiproxy-host-crash", "never", 0, 0, ""},
		{"user-timeout", "toxiproxy-timeout", "never", 0, 0, ""},
		{"heartbeat-inband:interval=200ms,misses=3", "toxiproxy-host-crash", "detect", 0.4, -1, "heartbeat"},
		{"read-eof", "toxiproxy-reset-peer:timeout=500ms", "detect", 0.5, 0.55, "ECONNRESET"},
		{"read-eof", "toxiproxy-slow-close:delay=1s", "detect", 1, 1.05, "EOF"},
		// A poller sees the proxy's close at its next poll, as a state.
		{"tcp-info:every=100ms", "toxiproxy-slow-close:delay=1s", "detect", 1, 1.2, "CLOSE_WAIT"},
		// The disabling request's round trip bounds when the close comes.
		{"read-eof", "toxiproxy-down", "detect", 0, 0.3, "EOF"},
		// The forgotten flow is the data one; dedicated heart-beats go on.
		{"heartbeat-dedicated", "middlebox-state-loss", "never", 0, 0, ""},
		{"heartbeat-inband", "middlebox-state-loss", "detect", 0.4, -1, "heartbeat"},
		// Its own link gone, write-probe's retransmissions fail locally:
		// tcp_model_timeout(2) = 1.4 s, re-armed every ≤ 500 ms.
		{"write-probe:retries2=2", "local-cable-pull", "detect", 1.4, 2.15, "ETIMEDOUT"},
		{"heartbeat-inband:interval=200ms,misses=3", "toxiproxy-slow-close:delay=1s", "detect", 0.4, -1, "heartbeat"},
	}
	for _, tc := range cases {
		t.Run(tc.detector+"×"+tc.fault, func(t *testing.T) {
			c, err := harness.Resolve(harness.CellConfig{Detector: tc.detector, Fault: tc.fault})
			if err != nil {
				t.Fatal(err)
			}
			if c.Expect != tc.expect {
				t.Fatalf("expect %q, want %q (%s)", c.Expect, tc.expect, c.Prediction.Rule)
			}
			if tc.expect != "detect" {
				return
			}
			if got := c.Prediction.Lo.Seconds(); got != tc.lo {
				t.Errorf("lo %v s, want %v s (%s)", got, tc.lo, c.Prediction.Rule)
			}
			if got := c.Prediction.Hi.Seconds(); tc.hi >= 0 && got != tc.hi {
				t.Errorf("hi %v s, want %v s (%s)", got, tc.hi, c.Prediction.Rule)
			}
			found := false
			for _, r := range c.Prediction.Reasons {
				found = found || r == tc.reason
			}
			if !found {
				t.Errorf("reasons %v do not allow %s", c.Prediction.Reasons, tc.reason)
			}
		})
	}
}
