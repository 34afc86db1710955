package tcprules

import (
	"fmt"
	"time"
)

// ConnState is the watched connection's state at the fault, as the
// watcher's kernel saw it: read from TCP_INFO (sock_diag in the watcher's
// namespace, so it works for any program) and, where a capture exists,
// cross-checked against it. Durations are measured back from the fault's
// instant, in seconds, at the kernel's granularity of one jiffy
// (KernelTick: 4 ms at HZ 250, 1 ms at HZ 1000).
type ConnState struct {
	// TCPState is the socket's state name, e.g. "ESTABLISHED".
	TCPState string `json:"tcp_state"`
	// Unacked is tcpi_unacked (packets_out): segments sent and not yet
	// acknowledged. Above zero, keepalive is inert and the retransmission
	// timer rules (tcp_timer.c tcp_keepalive_timer L817–821).
	Unacked int `json:"unacked"`
	// NotSentBytes is tcpi_notsent_bytes: written by the application and
	// not yet sent.
	NotSentBytes int `json:"notsent_bytes,omitempty"`
	// SinceDataSentS, SinceDataRecvS and SinceAckRecvS are
	// tcpi_last_data_sent, tcpi_last_data_recv and tcpi_last_ack_recv at
	// the fault: seconds since the last data segment sent, the last data
	// received, the last ACK accepted.
	SinceDataSentS float64 `json:"since_data_sent_s"`
	SinceDataRecvS float64 `json:"since_data_recv_s"`
	SinceAckRecvS  float64 `json:"since_ack_recv_s"`
	// RTOS is tcpi_rto in seconds (includes back-off doublings); Backoff,
	// Retransmits and Probes are tcpi_backoff, tcpi_retransmits and
	// tcpi_probes.
	RTOS        float64 `json:"rto_s"`
	Backoff     int     `json:"backoff,omitempty"`
	Retransmits int     `json:"retransmits,omitempty"`
	Probes      int     `json:"probes,omitempty"`
	// RTTS is tcpi_rtt in seconds, the smoothed RTT: it sets the tail-loss
	// probe's timeout (tcp_output.c tcp_schedule_loss_probe ~L3038); 0 when
	// not read, and the rules then assume a fast link (srtt under 1 j).
	RTTS float64 `json:"rtt_s,omitempty"`
	// WheelJiffy is the timer wheel's jiffy at the fault, 0 when not
	// known: given, the rules know where the fault lies against the
	// wheel's coarser steps (8, 64, 512 j) instead of sweeping every
	// place, which narrows a forecast whose timers reach level 2 (a
	// 256 ms step) to the level-0 jiffy. See WheelJiffyAt.
	WheelJiffy int64 `json:"wheel_jiffy,omitempty"`
	// Source says how the state was read, e.g. "tcp_info" or
	// "tcp_info+capture" when the capture agreed with it.
	Source string `json:"source,omitempty"`
	// Note says where the capture disagreed with TCP_INFO, or what could
	// not be read; "" when nothing needs saying.
	Note string `json:"note,omitempty"`
}

// InFlight reports whether data was unacknowledged or waiting to be sent
// at the fault: the retransmission (or zero-window probe) timer rules then,
// not keepalive.
func (s ConnState) InFlight() bool { return s.Unacked > 0 || s.NotSentBytes > 0 }

// KeepaliveIdle is how long the connection had been idle by keepalive's
// clock at the fault: min(since last data received, since last ACK
// accepted) (include/net/tcp.h keepalive_time_elapsed, L1780). Sending
// never resets it.
func (s ConnState) KeepaliveIdle() time.Duration {
	return seconds(min(s.SinceDataRecvS, s.SinceAckRecvS))
}

// Phase names the state a fault met the connection in.
func (s ConnState) Phase() Phase {
	if s.InFlight() {
		return PhaseInFlight
	}
	return PhaseIdle
}

// Phase is what the connection was doing when the fault came.
type Phase string

// Phases of a sample.
const (
	// PhaseIdle: nothing in flight; the fault lands a seeded time after
	// the last exchange (swept across the idle range, stratified).
	PhaseIdle Phase = "idle"
	// PhaseInFlight: the fault lands while a request is unacknowledged.
	PhaseInFlight Phase = "in-flight"
)

// Forecast is one sample's predicted decision, in seconds after the
// fault, from the connection's state at the fault and a rule.
type Forecast struct {
	// Never is true when the rule says the detector never decides.
	Never bool `json:"never,omitempty"`
	// AtS is the predicted instant; LoS and HiS bound it by the timer
	// wheel's rounding and the rule's own spread.
	AtS float64 `json:"at_s"`
	LoS float64 `json:"lo_s"`
	HiS float64 `json:"hi_s"`
	// Rule cites the kernel, library or algorithm rule applied, with the
	// figures it used.
	Rule string `json:"rule"`
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// ParsePhase checks a phase name: "idle" (the fault lands after a swept
// idle time) or "in-flight" (while a request is unacknowledged).
func ParsePhase(s string) (Phase, error) {
	switch p := Phase(s); p {
	case PhaseIdle, PhaseInFlight:
		return p, nil
	case "":
		return PhaseIdle, nil
	}
	return "", fmt.Errorf("phase %q is not known; phases are idle (the fault lands after a swept idle time) and in-flight (while a request is unacknowledged)", s)
}
