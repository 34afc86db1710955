// Package rootlessgate is a gate as a library's author writes it, outside
// halfopen's repository: TestRootlessGate (harness/rootless_test.go)
// copies it to a temporary module and runs it with plain `go test` as an
// ordinary user.
package rootlessgate

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/protocol"
)

// client dials halfopen's echo peer, turns on TCP keepalive 1 s/1 s/3 and
// blocks in read; its read's error is the moment it gives up.
var client = protocol.Watcher{
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
}

func init() { gate.Register("keepalive-client", client) }

func TestMain(m *testing.M) { gate.Main(m) }

func TestKeepaliveNoticesABlackhole(t *testing.T) {
	res, err := gate.Run(context.Background(), gate.Cell{Watcher: "keepalive-client", Fault: "blackhole", Samples: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if ok, err := gate.DetectWithin(4500 * time.Millisecond).Match(res); err != nil || !ok {
		t.Fatalf("keepalive 1/1/3 did not notice a blackhole within 4.5 s (%v): %v", err, res)
	}
}
