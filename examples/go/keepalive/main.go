// Command keepalive is a halfopen external detector (protocol v1) written
// with package protocol: the Go twin of examples/python/keepalive_watcher.py
// and examples/c/set_keepalive.c.
//
// The watcher turns on TCP keepalive with TCP_KEEPIDLE, TCP_KEEPINTVL and
// TCP_KEEPCNT from the config keys idle, intvl (Go durations, rounded up to
// whole seconds, at least 1 s) and cnt (default 1s, 1s, 3), and blocks in
// read: EOF is an orderly close, an error is its errno name (ETIMEDOUT when
// the probes go unanswered). Predicted for a silent peer: [intvl·cnt,
// idle + intvl·cnt]. With HALFOPEN_ROLE=peer (peer=self) it is an echo peer.
//
//	go build -o /tmp/keepalive ./examples/go/keepalive && chmod o+rx /tmp/keepalive
//	halfopen run --detector external:cmd=/tmp/keepalive,idle=1s,intvl=1s,cnt=3 --fault blackhole
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/halfopen/halfopen/protocol"
)

func main() {
	protocol.Main(protocol.Watcher{
		Name: "go-keepalive",
		Predict: func(c protocol.Config) (*protocol.Range, error) {
			p, err := parse(c)
			if err != nil {
				return nil, err
			}
			// The keepalive timer is a timer-wheel timer, late by up to
			// 1/8 of its length: the upper bound is stretched by 12.5 %.
			hi := p.idle + p.probing()
			return &protocol.Range{Lo: p.probing(), Hi: hi + hi/8}, nil
		},
		Watch: watch,
		Peer:  protocol.Echo,
	})
}

// params are the keepalive settings, in whole seconds as the kernel keeps
// them.
type params struct {
	idle, intvl time.Duration
	cnt         int
}

// probing is how long the unanswered probes take once the first is sent.
func (p params) probing() time.Duration { return time.Duration(p.cnt) * p.intvl }

func parse(c protocol.Config) (params, error) {
	var p params
	var err error
	if p.idle, err = c.Duration("idle", time.Second); err != nil {
		return p, err
	}
	if p.intvl, err = c.Duration("intvl", time.Second); err != nil {
		return p, err
	}
	if p.cnt, err = c.Int("cnt", 3); err != nil {
		return p, err
	}
	if p.cnt < 1 || p.cnt > 127 {
		return p, fmt.Errorf("config key cnt=%d is out of TCP_KEEPCNT's range 1..127", p.cnt)
	}
	p.idle, p.intvl = wholeSeconds(p.idle), wholeSeconds(p.intvl)
	return p, nil
}

// wholeSeconds rounds d up to whole seconds, at least one: the unit of
// TCP_KEEPIDLE and TCP_KEEPINTVL.
func wholeSeconds(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}

// watch sets keepalive on the connection and reads until the read fails.
func watch(ctx context.Context, s *protocol.Session) (string, error) {
	p, err := parse(s.Config)
	if err != nil {
		return "", err
	}
	conn, err := s.Connect(ctx)
	if err != nil {
		return "", err
	}
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return "", errors.New("the connection is not TCP")
	}
	ka := net.KeepAliveConfig{Enable: true, Idle: p.idle, Interval: p.intvl, Count: p.cnt}
	if err := tc.SetKeepAliveConfig(ka); err != nil {
		return "", fmt.Errorf("set keepalive: %w", err)
	}
	s.Logf("go keepalive: idle=%v intvl=%v cnt=%d side=%s reconnect=%t", p.idle, p.intvl, p.cnt, s.Side, s.Reconnect)
	buf := make([]byte, 64<<10)
	for {
		// Go retries a read interrupted by a signal (EINTR) itself, so a
		// signal storm does not end it.
		if _, err := conn.Read(buf); err != nil {
			return protocol.Reason(err), nil
		}
	}
}
