package gate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/gate"
)

// TestFaultConstructors: each typed constructor produces the spec the one
// parser reads back to the same fault, and the string form parses to the
// same value; bad string forms are refused in one sentence.
func TestFaultConstructors(t *testing.T) {
	tests := []struct {
		fault gate.Fault
		want  string
	}{
		{gate.Blackhole(), "blackhole"},
		{gate.HostCrash(), "host-crash"},
		{gate.HostReboot(time.Second), "host-reboot:down=1s"},
		{gate.RouterRestart(2 * time.Second), "router-restart:outage=2s"},
		{gate.RouterRestart(1500 * time.Millisecond), "router-restart:outage=1.5s"},
		{gate.MiddleboxStateLoss(gate.NAT, gate.AllFlows), "middlebox-state-loss:mode=nat,scope=all"},
		{gate.GracefulClose(), "graceful-close"},
		{gate.AbortiveClose(), "abortive-close"},
		{gate.ProcessKill(), "process-kill"},
		{gate.PeerCablePull(), "peer-cable-pull"},
		{gate.LocalCablePull(), "local-cable-pull"},
		{gate.OneWay(gate.ToPeer), "one-way:direction=to-peer"},
		{gate.RandomLoss(30), "random-loss:percent=30"},
		{gate.LongIdle(10 * time.Second), "long-idle:for=10s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.fault.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			parsed, err := gate.ParseFault(tt.want)
			if err != nil || parsed != tt.fault {
				t.Fatalf("ParseFault(%q) = %v, %v; want the constructor's fault", tt.want, parsed, err)
			}
		})
	}
	for _, bad := range []string{"no-such-fault", "router-restart:outage=soon", "blackhole:x=1", "middlebox-state-loss:mode=proxy"} {
		_, err := gate.ParseFault(bad)
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseFault(%q) = %v; want one sentence", bad, err)
		}
	}
}
