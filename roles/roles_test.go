package roles

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/tcprules"
)

func watchNothing(context.Context, *protocol.Session) (string, error) { return "", nil }

// The roles of these tests, registered once: a blocked reader, a poller
// whose period comes from its config, a role that never reads, and one
// that declares nothing but its range.
func init() {
	Register("test-reader", protocol.Watcher{
		Predicted: &protocol.Range{Lo: 4 * time.Second, Hi: 5 * time.Second},
		Reasons:   []string{"EOF", "stale connection"}, Watch: watchNothing,
	})
	Register("test-poller", protocol.Watcher{
		Predicted: &protocol.Range{Lo: time.Second, Hi: 2 * time.Second},
		Reasons:   []string{"i/o timeout", "ECONNRESET"}, Watch: watchNothing,
		Close: func(c protocol.Config) (protocol.Close, error) {
			d, err := c.Duration("every", 2*time.Second)
			return protocol.Close{Every: d}, err
		},
	})
	Register("test-deaf", protocol.Watcher{
		Reasons: []string{"EPIPE"}, Watch: watchNothing,
		Close: func(protocol.Config) (protocol.Close, error) { return protocol.Close{NeverReads: true}, nil },
	})
	Register("test-kernel", protocol.Watcher{
		Predicted: &protocol.Range{Lo: 4 * time.Second, Hi: 5 * time.Second}, Watch: watchNothing,
		Kernel: func(c protocol.Config) (*protocol.Kernel, error) {
			if c.Get("deadline", "") != "" {
				return nil, nil // a deadline of its own decides
			}
			u, err := c.Duration("usertimeout", 0)
			if err != nil {
				return nil, err
			}
			slack, err := c.Duration("slack", 0)
			return &protocol.Kernel{KeepIdle: time.Second, KeepIntvl: time.Second, KeepCnt: 4, UserTimeout: u, Slack: slack}, err
		},
	})
	Register("test-nokeepalive", protocol.Watcher{Watch: watchNothing,
		Kernel: func(protocol.Config) (*protocol.Kernel, error) { return &protocol.Kernel{}, nil }})
	Register("test-plain", protocol.Watcher{Predicted: &protocol.Range{Lo: time.Second, Hi: 2 * time.Second}, Watch: watchNothing})
	Register("test-reserved-env", protocol.Watcher{Watch: watchNothing, Env: map[string]string{"GODEBUG": "netdns=go", "HALFOPEN_ADDR": "1.2.3.4:5"}})
	Register("test-env", protocol.Watcher{Watch: watchNothing, Env: map[string]string{"LIB_DEBUG": "1", "GODEBUG": "netdns=go"}})
}

// TestRoleTheory resolves role cells as a run does (harness.Resolve) and
// checks that theory judges each role by what it declares: its own
// reasons, no errno it did not list, and its own way of meeting a FIN or
// an RST.
func TestRoleTheory(t *testing.T) {
	tests := []struct {
		name        string
		detector    string
		fault       string
		wantNever   bool
		wantLo      time.Duration
		wantHi      time.Duration
		wantReasons []string
		wantRule    string
	}{
		{"silent: the declared range and reasons", "role:name=test-reader", "blackhole", false, 4 * time.Second, 5 * time.Second,
			[]string{"EOF", "stale connection"}, "declared by role test-reader: [4s, 5s]"},
		{"FIN, a blocked read: at once", "role:name=test-reader", "graceful-close", false, 0, 50 * time.Millisecond,
			[]string{"EOF", "stale connection"}, "a read is always blocked on its connection and returns when a FIN arrives"},
		{"RST, a poller: within its period", "role:every=200ms,name=test-poller", "abortive-close", false, 0, 250 * time.Millisecond,
			[]string{"i/o timeout", "ECONNRESET"}, "it looks at its connection every 200ms, so it meets an RST at its next look"},
		{"FIN or RST, a poller's default period", "role:name=test-poller", "process-kill", false, 0, 2050 * time.Millisecond,
			[]string{"i/o timeout", "ECONNRESET"}, "every 2s, so it meets a FIN or an RST"},
		{"FIN, a role that never reads", "role:name=test-deaf", "graceful-close", true, 0, 0,
			[]string{"EPIPE"}, "it never reads its connection, so a FIN goes unnoticed"},
		{"in flight with a user timeout: t1 + U", "role:name=test-kernel,phase=in-flight,usertimeout=5s", "blackhole", false, 5200 * time.Millisecond, 5700 * time.Millisecond,
			nil, "with a request in flight, sent 0–200ms before the fault"},
		{"in flight, keepalive alone: tcp_retries2", "role:name=test-kernel,phase=in-flight", "middlebox-state-loss", false, 920 * time.Second, 945 * time.Second,
			nil, "keepalive is inert while data is in flight"},
		{"in flight, no kernel rule declared: the role's own range", "role:deadline=4s,name=test-kernel,phase=in-flight", "blackhole", false, 4 * time.Second, 5 * time.Second,
			nil, "declared by role test-kernel: [4s, 5s]"},
		{"silent, nothing declared: no reasons at all", "role:name=test-plain", "host-crash", false, time.Second, 2 * time.Second,
			nil, "declared by role test-plain"},
		{"RST, nothing declared: at once, no errno assumed", "role:name=test-plain", "abortive-close", false, 0, 50 * time.Millisecond,
			nil, "returns when an RST arrives"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := harness.Resolve(harness.CellConfig{Detector: tt.detector, Fault: tt.fault, Samples: 1})
			if err != nil {
				t.Fatal(err)
			}
			p := c.Prediction
			if strings.Contains(tt.detector, "phase=in-flight") && strings.Contains(tt.wantRule, "in flight") {
				// The kernel's rule: a span, checked for where it lies.
				if p.Never || p.Lo < tt.wantLo || p.Hi > tt.wantHi || p.Lo > p.Hi {
					t.Errorf("prediction never=%t [%v, %v], want within [%v, %v]", p.Never, p.Lo, p.Hi, tt.wantLo, tt.wantHi)
				}
			} else if p.Never != tt.wantNever || p.Lo != tt.wantLo || p.Hi != tt.wantHi {
				t.Errorf("prediction never=%t [%v, %v], want never=%t [%v, %v]", p.Never, p.Lo, p.Hi, tt.wantNever, tt.wantLo, tt.wantHi)
			}
			if !slices.Equal(p.Reasons, tt.wantReasons) {
				t.Errorf("reasons %q, want %q", p.Reasons, tt.wantReasons)
			}
			if !strings.Contains(p.Rule, tt.wantRule) {
				t.Errorf("rule %q, want it to contain %q", p.Rule, tt.wantRule)
			}
			if !tt.wantNever && c.Expect != report.ExpectDetect {
				t.Errorf("expectation %q, want %q", c.Expect, report.ExpectDetect)
			}
		})
	}
}

// TestRoleRefusesBadDeclarations: a role whose declarations refuse the
// cell's config, or a phase that is not one, is bad input before any lab.
func TestRoleRefusesBadDeclarations(t *testing.T) {
	tests := []struct {
		detector string
		want     string
	}{
		{"role:every=soon,name=test-poller", `role test-poller: config key every="soon" is not a Go duration`},
		{"role:name=test-reader,phase=busy", "role test-reader: phase=busy is neither idle nor in-flight"},
		{"role:name=nobody", `no role is called "nobody"`},
		{"role:name=test-reserved-env", "role test-reserved-env: test-reserved-env sets HALFOPEN_ADDR, but HALFOPEN_* variables are halfopen's own"},
	}
	for _, tt := range tests {
		t.Run(tt.detector, func(t *testing.T) {
			_, err := harness.Resolve(harness.CellConfig{Detector: tt.detector, Fault: "blackhole", Samples: 1})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Resolve: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestRolePredictSample: a role that declares its socket's kernel settings
// is forecast per sample by the kernel's rules for the state the fault met
// (figures from KERNEL-RULES §6: keepalive 1/1/4 gives up 4 intervals
// after the first probe, idle after the last segment received; with data
// in flight keepalive is inert, and the kernel gives up at t1 + U, t1
// 412–416 ms after the send, the last re-arms up to a wheel step (256 ms)
// late, or after tcp_retries2 = 15, t1 + 928.5 s).
func TestRolePredictSample(t *testing.T) {
	idle := tcprules.ConnState{TCPState: "ESTABLISHED", SinceDataSentS: 0.5, SinceDataRecvS: 0.5, SinceAckRecvS: 0.5, RTOS: tcprules.RTOFast().Seconds()}
	inFlight := tcprules.ConnState{TCPState: "ESTABLISHED", Unacked: 1, SinceDataSentS: 0.02, SinceDataRecvS: 0.1, SinceAckRecvS: 0.1, RTOS: tcprules.RTOFast().Seconds()}
	tests := []struct {
		name      string
		detector  string
		state     tcprules.ConnState
		effect    harness.Effect
		wantOK    bool
		wantNever bool
		wantAt    float64 // ± tol, seconds after the fault
		tol       float64
		wantRule  string
	}{
		{"idle: keepalive", "role:name=test-kernel", idle, harness.EffectSilent, true, false, 4.5, 0.15, "tcp_keepalive_timer"},
		{"idle: keepalive with a user timeout, cnt ignored", "role:name=test-kernel,usertimeout=5s", idle, harness.EffectSilent, true, false, 4.5, 0.15, "TCP_USER_TIMEOUT"},
		{"in flight: keepalive inert, tcp_retries2", "role:name=test-kernel", inFlight, harness.EffectSilent, true, false, 928.5 + 0.414 - 0.02, 12, "keepalive is inert while data is in flight"},
		{"in flight: the user timeout", "role:name=test-kernel,usertimeout=5s", inFlight, harness.EffectSilent, true, false, 5 + 0.414 - 0.02 + 0.15, 0.16, "keepalive is inert while data is in flight"},
		{"no keepalive, idle: never", "role:name=test-nokeepalive", idle, harness.EffectSilent, true, true, 0, 0, "no kernel timer runs"},
		{"a deadline of its own: no forecast", "role:deadline=4s,name=test-kernel", idle, harness.EffectSilent, false, false, 0, 0, ""},
		{"nothing declared: no forecast", "role:name=test-reader", idle, harness.EffectSilent, false, false, 0, 0, ""},
		{"a FIN: no kernel forecast", "role:name=test-kernel", idle, harness.EffectFIN, false, false, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			det, _, err := harness.NewDetector(tt.detector)
			if err != nil {
				t.Fatal(err)
			}
			sp, ok := det.(harness.SamplePredictor)
			if !ok {
				t.Fatal("the role detector is no harness.SamplePredictor")
			}
			f, ok := sp.PredictSample(tt.state, tt.effect)
			if ok != tt.wantOK {
				t.Fatalf("PredictSample ok=%t, want %t (%+v)", ok, tt.wantOK, f)
			}
			if !ok {
				return
			}
			if f.Never != tt.wantNever {
				t.Fatalf("never=%t, want %t: %s", f.Never, tt.wantNever, f.Rule)
			}
			if !f.Never && (f.AtS < tt.wantAt-tt.tol || f.AtS > tt.wantAt+tt.tol || f.LoS > f.AtS || f.HiS < f.AtS) {
				t.Errorf("forecast %.3f s in [%.3f, %.3f], want %.3f ± %.3f s: %s", f.AtS, f.LoS, f.HiS, tt.wantAt, tt.tol, f.Rule)
			}
			if !strings.Contains(f.Rule, tt.wantRule) || !strings.HasPrefix(f.Rule, "declared by role ") {
				t.Errorf("rule %q, want it to contain %q", f.Rule, tt.wantRule)
			}
		})
	}
	// The library's slack widens the upper bound, not the instant.
	det, _, err := harness.NewDetector("role:name=test-kernel,slack=512ms")
	if err != nil {
		t.Fatal(err)
	}
	base, _, _ := harness.NewDetector("role:name=test-kernel")
	f0, _ := base.(harness.SamplePredictor).PredictSample(idle, harness.EffectSilent)
	f1, _ := det.(harness.SamplePredictor).PredictSample(idle, harness.EffectSilent)
	if f1.AtS != f0.AtS || f1.LoS != f0.LoS || f1.HiS-f0.HiS < 0.511 || f1.HiS-f0.HiS > 0.513 {
		t.Errorf("with slack 512ms: %+v, without: %+v; want the upper bound 512 ms later, nothing else", f1, f0)
	}
}

// TestRoleEnv: a role's Env reaches both of its programs' environments,
// sorted, before the protocol's own variables.
func TestRoleEnv(t *testing.T) {
	c, err := harness.Resolve(harness.CellConfig{Detector: "role:name=test-env,peer=self", Fault: "blackhole", Samples: 1})
	if err == nil {
		t.Fatal("peer=self on a role without Peer resolved")
	}
	c, err = harness.Resolve(harness.CellConfig{Detector: "role:name=test-env", Fault: "blackhole", Samples: 1})
	if err != nil {
		t.Fatal(err)
	}
	prog := c.Detector.(harness.Program)
	env := prog.WatcherProgram(protocol.SideClient, "198.18.0.2:7000").Env
	if len(env) < 3 || env[0] != "GODEBUG=netdns=go" || env[1] != "LIB_DEBUG=1" || !strings.HasPrefix(env[2], "HALFOPEN_") {
		t.Errorf("watcher environment %q: want the role's GODEBUG and LIB_DEBUG, then the protocol's", env)
	}
}
