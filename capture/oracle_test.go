package capture

// The decoder and reader this package used before it had its own, on
// gopacket, kept as an oracle for the tests: what they give is what
// reports said.

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// gopacketReadTimeline is ReadTimeline as it was.
func gopacketReadTimeline(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		return nil, fmt.Errorf("timeline: %s is not pcapng: %w", path, err)
	}
	var offset int64
	if c := r.SectionInfo().Comment; strings.HasPrefix(c, "halfopen capture:") {
		var kept, dropped, limit int64
		if _, err := fmt.Sscanf(c, sectionComment, &offset, &kept, &dropped, &limit); err != nil {
			return nil, fmt.Errorf("timeline: %s: section comment %q: %w", path, c, err)
		}
	}
	st := newTCPState()
	var out []Event
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("timeline: %s: packet %d: %w", path, len(out)+1, err)
		}
		ifc, err := r.Interface(ci.InterfaceIndex)
		if err != nil {
			return out, fmt.Errorf("timeline: %s: %w", path, err)
		}
		ev, ok := gopacketDecode(data, ifc.LinkType)
		if !ok {
			continue
		}
		ev.Ns = ci.Timestamp.UnixNano() - offset
		ev.Iface = ifc.Name
		if ev.Kind == "" {
			ev.Kind = st.classify(&ev)
		}
		out = append(out, ev)
	}
	return out, nil
}

// gopacketDecode is decode as it was.
func gopacketDecode(data []byte, lt layers.LinkType) (Event, bool) {
	p := gopacket.NewPacket(data, lt, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var src, dst netip.Addr
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
	case *layers.IPv6:
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
	default:
		return Event{}, false
	}
	ev := Event{Src: src.String(), Dst: dst.String()}
	if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		ev.Src = netip.AddrPortFrom(src, uint16(tcp.SrcPort)).String()
		ev.Dst = netip.AddrPortFrom(dst, uint16(tcp.DstPort)).String()
		ev.Seq, ev.Ack, ev.Len = tcp.Seq, tcp.Ack, len(tcp.Payload)
		if ipLen := gopacketTCPPayloadLen(p); ipLen >= 0 {
			ev.Len = ipLen
		}
		ev.Flags = gopacketTCPFlags(tcp)
		return ev, true
	}
	for _, l := range p.Layers() {
		switch icmp := l.(type) {
		case *layers.ICMPv4:
			ev.Kind, ev.Info = KindICMP, icmp.TypeCode.String()
			return ev, true
		case *layers.ICMPv6:
			ev.Kind, ev.Info = KindICMP, icmp.TypeCode.String()
			return ev, true
		}
	}
	ev.Kind = KindOther
	return ev, true
}

func gopacketTCPPayloadLen(p gopacket.Packet) int {
	tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ok {
		return -1
	}
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		return int(ip.Length) - int(ip.IHL)*4 - int(tcp.DataOffset)*4
	case *layers.IPv6:
		return int(ip.Length) - int(tcp.DataOffset)*4
	}
	return -1
}

func gopacketTCPFlags(t *layers.TCP) string {
	var b strings.Builder
	for _, f := range []struct {
		set bool
		c   byte
	}{{t.SYN, 'S'}, {t.FIN, 'F'}, {t.RST, 'R'}, {t.PSH, 'P'}, {t.URG, 'U'}, {t.ACK, 'A'}} {
		if f.set {
			b.WriteByte(f.c)
		}
	}
	return b.String()
}

// gopacketComparable says whether decode must agree with gopacketDecode on
// a packet: gopacket decoded it without error (on a malformed header its
// events were artefacts: an "invalid IP" address, a TCP segment of port 0)
// and it is not one of decode's documented departures: an IPv6 extension
// header before TCP (or after an IPv4 header) or an IP packet inside
// another.
func gopacketComparable(data []byte, lt layers.LinkType) (bool, string) {
	p := gopacket.NewPacket(data, lt, gopacket.DecodeOptions{})
	if e := p.ErrorLayer(); e != nil {
		return false, "gopacket: " + e.Error().Error()
	}
	ips := 0
	for _, l := range p.Layers() {
		switch l.LayerType() {
		case layers.LayerTypeIPv4, layers.LayerTypeIPv6:
			ips++
		case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination:
			if p.Layer(layers.LayerTypeTCP) != nil {
				return false, "IPv6 extension header before TCP"
			}
			if _, ok := p.NetworkLayer().(*layers.IPv4); ok {
				// gopacket followed IPv4's protocol 0, 43 or 60 as an
				// IPv6 extension header; decode takes it as KindOther.
				return false, "IPv6 extension header in IPv4"
			}
		}
	}
	if ips > 1 {
		return false, "IP in IP"
	}
	return true, ""
}
