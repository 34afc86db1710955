// Package rootlessgate is a gate as a library's author writes it, outside
// halfopen's repository: TestRootlessGate (harness/rootless_test.go)
// copies it to a temporary module and runs it with plain `go test` as an
// ordinary user. It imports gate and protocol only.
package rootlessgate

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
)

// client dials halfopen's echo peer, turns on TCP keepalive 1 s/1 s/3 and
// blocks in read; its read's error is the moment it gives up.
var client = gate.Register("keepalive-client", protocol.Watcher{
	Predicted: &protocol.Range{Lo: 3 * time.Second, Hi: 4500 * time.Millisecond},
	Watch: func(ctx context.Context, s *protocol.Session) (string, error) {
		conn, err := s.Connect(ctx)
		if err != nil {
			return "", err
		}
		tc, ok := conn.(*net.TCPConn)
		if !ok {
			return "", errors.New("not TCP")
		}
		if err := tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}); err != nil {
			return "", err
		}
		buf := make([]byte, 1024)
		for {
			if _, err := conn.Read(buf); err != nil {
				return protocol.Reason(err), nil
			}
		}
	},
	Peer: protocol.Echo,
})

// TestMain is the only wiring a gate needs.
func TestMain(m *testing.M) { gate.Main(m) }

// TestGate runs the gate; its report is suite-gates-rootlessgate.json,
// named after the module.
func TestGate(t *testing.T) { gate.RunSpecs(t, "rootless gate") }

var _ = gate.DescribeTable("keepalive 1/1/3",
	gate.Entry("notices a blackhole", gate.Cell{Watcher: client, Fault: gate.Blackhole(), Samples: 2}, Label("blackhole"),
		gate.DetectWithin(4500*time.Millisecond), gate.GiveUpWith("ETIMEDOUT")),
)
