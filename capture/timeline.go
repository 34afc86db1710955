package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Kind is what a packet of a timeline is, for a reader of a detection.
type Kind string

// Kinds of timeline events. A packet is one kind, the first that applies
// in this order: rst, retransmission, syn, fin, keepalive, urgent, data,
// ack; icmp for ICMP, other for any other IP packet.
const (
	KindRST            Kind = "rst"
	KindRetransmission Kind = "retransmission" // data, SYN or FIN whose sequence numbers were sent before
	KindSYN            Kind = "syn"
	KindFIN            Kind = "fin"
	KindKeepalive      Kind = "keepalive" // at most one byte at snd.una − 1: a keepalive probe
	KindUrgent         Kind = "urgent"    // URG set: an MSG_OOB byte
	KindData           Kind = "data"
	KindAck            Kind = "ack" // a segment with neither data nor SYN, FIN or RST
	KindICMP           Kind = "icmp"
	KindOther          Kind = "other"
)

// Event is one packet of a timeline, as the router saw it on one port.
type Event struct {
	// Ns is the CLOCK_MONOTONIC instant of the kernel's receive timestamp,
	// in nanoseconds: comparable with a sample's InjectedNs and DecidedNs.
	Ns    int64
	Iface string // the interface it was seen on
	Src   string // "ip:port", or "ip" for ICMP
	Dst   string
	Kind  Kind
	Flags string // TCP flags, e.g. "S", "SA", "A", "PA", "FA", "R"
	Seq   uint32
	Ack   uint32
	Len   int    // TCP payload bytes
	Info  string // for ICMP its type and code, e.g. "DestinationUnreachable(Port)"
}

// String is one line: instant, port, direction, kind and details.
func (e Event) String() string {
	s := fmt.Sprintf("%d %s %s > %s %s", e.Ns, e.Iface, e.Src, e.Dst, e.Kind)
	if e.Flags != "" {
		s += fmt.Sprintf(" [%s] seq %d ack %d len %d", e.Flags, e.Seq, e.Ack, e.Len)
	}
	if e.Info != "" {
		s += " " + e.Info
	}
	return s
}

// ReadTimeline reads a pcapng file and returns its IP packets as events,
// in the file's order. Timestamps of a file written by WritePcapng are
// turned back into CLOCK_MONOTONIC with the offset in its section comment;
// those of any other file are returned as they are (Unix nanoseconds).
func ReadTimeline(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer f.Close()
	r, err := newNgReader(f)
	if err != nil {
		return nil, fmt.Errorf("timeline: %s is not pcapng: %w", path, err)
	}
	section := r.sections
	offset, err := clockOffsetOf(r.section)
	if err != nil {
		return nil, fmt.Errorf("timeline: %s: %w", path, err)
	}
	st := newTCPState()
	var out []Event
	for n := 1; ; n++ {
		p, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("timeline: %s: packet %d: %w", path, n, err)
		}
		if r.sections != section {
			// Another section: its own comment says its offset.
			section = r.sections
			if offset, err = clockOffsetOf(r.section); err != nil {
				return out, fmt.Errorf("timeline: %s: section %d: %w", path, section, err)
			}
		}
		ifc := r.ifaces[p.iface]
		ev, ok := decode(p.data, ifc.linkType)
		if !ok {
			continue
		}
		ev.Ns = p.unixNs - offset
		ev.Iface = ifc.name
		if ev.Kind == "" {
			ev.Kind = st.classify(&ev)
		}
		out = append(out, ev)
	}
	return out, nil
}

// clockOffsetOf returns the real-time offset a WritePcapng section
// comment states, or 0 for a section WritePcapng did not write.
func clockOffsetOf(s ngSection) (int64, error) {
	if !strings.HasPrefix(s.comment, "halfopen capture:") {
		return 0, nil
	}
	var offset, kept, dropped, limit int64
	if _, err := fmt.Sscanf(s.comment, sectionComment, &offset, &kept, &dropped, &limit); err != nil {
		return 0, fmt.Errorf("section comment %q: %w", s.comment, err)
	}
	return offset, nil
}

// tcpState remembers, per interface and direction of a flow, the highest
// sequence number sent, to tell new data from retransmissions and
// keepalive probes. Each interface is its own history: a forwarded packet
// is seen once per port and is new on each.
type tcpState struct {
	next map[string]uint32 // iface|src|dst → sequence number after the highest sent
}

func newTCPState() *tcpState { return &tcpState{next: map[string]uint32{}} }

func (s *tcpState) classify(e *Event) Kind {
	key := e.Iface + "|" + e.Src + "|" + e.Dst
	syn, fin := strings.Contains(e.Flags, "S"), strings.Contains(e.Flags, "F")
	end := e.Seq + uint32(e.Len)
	if syn {
		end++
	}
	if fin {
		end++
	}
	next, seen := s.next[key]
	if !seen || seqAfter(end, next) {
		s.next[key] = end
	}
	consumes := e.Len > 0 || syn || fin
	switch {
	case strings.Contains(e.Flags, "R"):
		return KindRST
	case seen && consumes && !seqAfter(end, next) && !(e.Len <= 1 && !syn && !fin && e.Seq == next-1):
		return KindRetransmission
	case syn:
		return KindSYN
	case fin:
		return KindFIN
	case seen && e.Len <= 1 && e.Seq == next-1:
		// Linux's tcp_xmit_probe_skb: a keepalive sends snd.una − 1 with no
		// data (or one garbage byte), so the peer must answer with an ACK.
		return KindKeepalive
	case strings.Contains(e.Flags, "U"):
		return KindUrgent
	case e.Len > 0:
		return KindData
	}
	return KindAck
}

// seqAfter reports whether sequence number a is after b, modulo 2³².
func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// Summary counts a timeline's events by kind, in a fixed order: "3
// keepalive, 1 rst".
func Summary(events []Event) string {
	counts := map[Kind]int{}
	for _, e := range events {
		counts[e.Kind]++
	}
	var parts []string
	for _, k := range []Kind{KindSYN, KindData, KindAck, KindKeepalive, KindRetransmission, KindUrgent, KindFIN, KindRST, KindICMP, KindOther} {
		if n := counts[k]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+string(k))
		}
	}
	return strings.Join(parts, ", ")
}
