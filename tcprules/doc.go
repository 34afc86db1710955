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
//
// Two kinds of rule:
//
//   - Ranges (KeepaliveRange, KeepaliveUserTimeoutRange, UserTimeoutRange,
//     RetransmitRange, with Budget and ResendAfter): where a detection can
//     fall when the fault lands anywhere after the last exchange, the
//     summary of a cell.
//   - Forecasts (Keepalive, KeepaliveResetAfter, Retransmission,
//     WriterRetransmission, RetransmissionAfterWrite, WriterResetAfter, Clock,
//     AtOnce, Never): the instant one sample decides, from its ConnState.
//     They follow the connection's timers jiffy by jiffy through the timer
//     wheel (kernel/time/timer.c: a timer filed at level l fires at the
//     first multiple of 8^l jiffies after its expiry); what the state
//     cannot say (where the fault's jiffy lies against the wheel's coarser
//     steps, where an instant lies inside its jiffy, which level a timer
//     armed before the fault was filed at) is swept, and a Forecast's AtS
//     is the middle of the window [LoS, HiS] the sweep gives.
//
// The kernel's clock is HZ = 250 (CONFIG_HZ of the lab's kernel, checked
// by TestHZ where /proc/config.gz is readable); a kernel with another HZ
// needs the constant changed.
package tcprules
