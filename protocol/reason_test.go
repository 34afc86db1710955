package protocol

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil is an orderly end", nil, "EOF"},
		{"io.EOF", io.EOF, "EOF"},
		{"wrapped EOF", fmt.Errorf("read frame: %w", io.EOF), "EOF"},
		{"bare errno", syscall.ECONNRESET, "ECONNRESET"},
		{"net.OpError", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}, "ETIMEDOUT"},
		{"wrapped write error", fmt.Errorf("send: %w", &net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}), "EPIPE"},
		{"no route", os.NewSyscallError("connect", syscall.EHOSTUNREACH), "EHOSTUNREACH"},
		{"unnamed errno", syscall.Errno(4000), "errno 4000"},
		{"a library's own words", errors.New("keepalive ping failed to receive ACK within timeout"), "keepalive ping failed to receive ACK within timeout"},
		{"deadline", os.ErrDeadlineExceeded, "i/o timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Reason(tt.err); got != tt.want {
				t.Fatalf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestReasonFromTheKernel names what real sockets return on loopback: a
// close is EOF, an abortive close (SO_LINGER 0) is ECONNRESET.
func TestReasonFromTheKernel(t *testing.T) {
	tests := []struct {
		name  string
		close func(*net.TCPConn)
		want  string
	}{
		{"FIN", func(c *net.TCPConn) { c.Close() }, "EOF"},
		{"RST", func(c *net.TCPConn) { _ = c.SetLinger(0); c.Close() }, "ECONNRESET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			a, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			tt.close(a.(*net.TCPConn))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 1))
			if got := Reason(err); got != tt.want {
				t.Fatalf("read after %s: %v, Reason %q, want %q", tt.name, err, got, tt.want)
			}
		})
	}
}
