package capture

import (
	"cmp"
	"slices"
)

// Timeline decodes the packets kept so far into events, in the order of
// their instants, as ReadTimeline does for a file: for a capture that is
// still in memory (a sample judged before its capture is written).
func (c *Capture) Timeline() []Event {
	c.mu.Lock()
	packets := append([]packet(nil), c.packets...)
	c.mu.Unlock()
	slices.SortStableFunc(packets, func(a, b packet) int { return cmp.Compare(a.monoNs, b.monoNs) })
	st := newTCPState()
	out := make([]Event, 0, len(packets))
	for _, p := range packets {
		ifc := c.ifaces[p.iface]
		ev, ok := decode(p.data, ifc.linkType)
		if !ok {
			continue
		}
		ev.Ns, ev.Iface = p.monoNs, ifc.name
		if ev.Kind == "" {
			ev.Kind = st.classify(&ev)
		}
		out = append(out, ev)
	}
	return out
}

// FlowState is what a capture says of one TCP flow up to an instant, seen
// from one of its ends (local): the last data each way and what it had
// sent that the other end had not acknowledged.
type FlowState struct {
	// Seen is false when no packet of the flow was captured before the instant.
	Seen bool
	// LastSentNs and LastRecvNs are the CLOCK_MONOTONIC instants of the
	// last segment carrying data (or a keepalive's byte) from local and to
	// local; 0 when none.
	LastSentNs, LastRecvNs int64
	// Unacked is how many bytes local had sent beyond the highest
	// acknowledgement the other end sent it.
	Unacked int
}

// FlowAt reads a timeline for the flow between local and remote ("ip:port")
// on interface iface, counting the packets captured before atNs.
func FlowAt(events []Event, iface, local, remote string, atNs int64) FlowState {
	var fs FlowState
	var sentEnd, acked uint32
	sentAny, ackAny := false, false
	for _, e := range events {
		if e.Ns > atNs || e.Iface != iface || e.Flags == "" {
			continue
		}
		out := e.Src == local && e.Dst == remote
		in := e.Src == remote && e.Dst == local
		if !out && !in {
			continue
		}
		fs.Seen = true
		switch {
		case out:
			if e.Len > 0 && e.Kind != KindKeepalive {
				fs.LastSentNs = e.Ns
				if end := e.Seq + uint32(e.Len); !sentAny || seqAfter(end, sentEnd) {
					sentEnd, sentAny = end, true
				}
			}
		case in:
			if e.Len > 0 && e.Kind != KindKeepalive {
				fs.LastRecvNs = e.Ns
			}
			if containsFlag(e.Flags, 'A') && (!ackAny || seqAfter(e.Ack, acked)) {
				acked, ackAny = e.Ack, true
			}
		}
	}
	if sentAny && ackAny && seqAfter(sentEnd, acked) {
		fs.Unacked = int(sentEnd - acked)
	}
	return fs
}

func containsFlag(flags string, f byte) bool {
	for i := 0; i < len(flags); i++ {
		if flags[i] == f {
			return true
		}
	}
	return false
}
