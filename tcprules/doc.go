// Package tcprules holds the Linux kernel's dead-peer timer rules (6.18:
// keepalive, retransmission give-up, TCP_USER_TIMEOUT, the timer wheel's
// rounding) as pure functions of time, each citing the source it follows,
// and the state of a connection they are applied to (ConnState, read from
// TCP_INFO at the fault).
//
// The harness's built-in detectors predict with them, and so do the Go
// roles of library gates (package gate): one implementation of each rule.
// Nothing here sleeps or touches a socket; the arithmetic is unit-tested
// against the worked table of the kernel's rules, at HZ 250 and at the
// other tick rates where the rules' outcome differs.
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
// The rules count in the running kernel's jiffies: KernelTick reads
// CONFIG_HZ once from the kernel's configuration (/proc/config.gz, else
// /boot/config-RELEASE), all the package ever reads, and says whether it
// was read or, where neither file says, DefaultHZ assumed. HZ decides
// a forecast's jiffy rounding (a 1 s timer is 250 j at HZ 250 and 1000 j
// at HZ 1000, so filed at another wheel level and late by another step)
// and the fast link's RTO (RTOFast: 204 ms at HZ 250, 201 ms at HZ 1000,
// 210 ms at HZ 100). A report records the tick its forecasts used
// (report.Environment.Tick).
package tcprules
