package protocol_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/halfopen/halfopen/protocol"
)

// A watcher whose library dials by itself, with its own peer: the library
// here is a plain net.Dialer with Go's keepalive turned off.
func ExampleMain() {
	protocol.Main(protocol.Watcher{
		Name: "plain-read",
		// A blocking read never notices a silent peer.
		Predicted: nil,
		Watch: func(ctx context.Context, s *protocol.Session) (string, error) {
			d := net.Dialer{KeepAlive: -1, Timeout: 3 * time.Second}
			conn, err := d.DialContext(ctx, "tcp", s.Addr)
			if err != nil {
				return "", err
			}
			s.Connected()
			_, err = conn.Read(make([]byte, 1))
			return protocol.Reason(err), nil
		},
		Peer: protocol.Echo,
	})
}

// A prediction that depends on the config.
func ExampleConfig_Duration() {
	predict := func(c protocol.Config) (*protocol.Range, error) {
		timeout, err := c.Duration("timeout", 5*time.Second)
		if err != nil {
			return nil, err
		}
		return &protocol.Range{Lo: timeout, Hi: timeout + time.Second}, nil
	}
	_, err := predict(protocol.Config{"timeout": "soon"})
	fmt.Println(err)
	// Output: config key timeout="soon" is not a Go duration such as 200ms, 1.5s or 1m30s
}
