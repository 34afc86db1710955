// Package tcprules holds the Linux kernel's dead-peer timer rules (6.18:
// keepalive, retransmission give-up, TCP_USER_TIMEOUT, the timer wheel's
// rounding) as pure functions of time, each citing the source it follows,
// and the state of a connection they are applied to (ConnState, read from
// TCP_INFO at the fault).
//
// The harness's built-in detectors predict with them, and so do the Go
// roles of library gates (package gate): one implementation of each rule.
// Nothing here sleeps or touches a socket; the arithmetic is unit-tested
// against the worked table of the kernel's rules.
package tcprules
