package protocol

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reason names the error a connection ended with, as a dead event's reason:
// "EOF" for an orderly end (io.EOF, or nil), the errno's name when the error
// wraps one (ETIMEDOUT, ECONNRESET, EPIPE, EHOSTUNREACH, ...), else the
// error's text, which is the library's own words.
func Reason(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return "EOF"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
	}
	return err.Error()
}
