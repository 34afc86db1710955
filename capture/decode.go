package capture

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
)

// EtherTypes and IP protocol numbers the decoder follows.
const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86DD
	etherDot1Q = 0x8100 // an 802.1Q VLAN tag
	etherQinQ  = 0x88A8 // an 802.1ad service tag

	protoHopByHop = 0
	protoICMPv4   = 1
	protoTCP      = 6
	protoRouting  = 43
	protoDestOpts = 60
	protoICMPv6   = 58
)

// decode reads the IP and TCP or ICMP headers of a packet that begins as
// its interface's link type says. It returns false for a packet that is
// not IP (ARP, LLDP) or too short to hold an IP header. An IP packet that
// is neither TCP nor ICMP, a fragment, or one whose headers do not add up
// is KindOther. The Kind of a TCP segment is left empty for classify,
// which needs the flow's history.
//
// Every Event field is as gopacket's decoder gave it for a well-formed
// packet, with departures the lab never meets: the TCP payload length of
// an IPv6 packet with extension headers leaves their bytes out (gopacket
// counted them); a tunnelled packet (IP in IP) is KindOther with its outer
// addresses, and so is an IPv4 packet of protocol 0, 43 or 60 (gopacket
// read on as if an IPv6 extension header followed). Of a malformed
// packet, gopacket made events with artefacts ("invalid IP" addresses, TCP
// port 0); decode drops it when its IP header is cut short and makes it
// KindOther when the rest is.
func decode(data []byte, lt linkType) (Event, bool) {
	switch lt {
	case linkEthernet:
		if len(data) < 14 {
			return Event{}, false
		}
		return decodeEtherType(binary.BigEndian.Uint16(data[12:14]), data[14:])
	case linkLinuxSLL:
		if len(data) < 16 {
			return Event{}, false
		}
		return decodeEtherType(binary.BigEndian.Uint16(data[14:16]), data[16:])
	case linkRaw:
		if len(data) == 0 {
			return Event{}, false
		}
		switch data[0] >> 4 {
		case 4:
			return decodeIPv4(data)
		case 6:
			return decodeIPv6(data)
		}
	case linkIPv4:
		return decodeIPv4(data)
	case linkIPv6:
		return decodeIPv6(data)
	}
	return Event{}, false
}

// decodeEtherType decodes what follows an Ethernet (or cooked) header of
// type et, past any VLAN tags.
func decodeEtherType(et uint16, data []byte) (Event, bool) {
	for et == etherDot1Q || et == etherQinQ {
		// A tag: priority and VLAN id (2), then the type it carries (2).
		if len(data) < 4 {
			return Event{}, false
		}
		et, data = binary.BigEndian.Uint16(data[2:4]), data[4:]
	}
	switch et {
	case etherIPv4:
		return decodeIPv4(data)
	case etherIPv6:
		return decodeIPv6(data)
	}
	return Event{}, false
}

// decodeIPv4 decodes an IPv4 header and what it carries.
func decodeIPv4(data []byte) (Event, bool) {
	if len(data) < 20 {
		return Event{}, false
	}
	src := netip.AddrFrom4([4]byte(data[12:16]))
	dst := netip.AddrFrom4([4]byte(data[16:20]))
	ev := Event{Src: src.String(), Dst: dst.String(), Kind: KindOther}
	hdrLen := int(data[0]&0x0F) * 4
	total := int(binary.BigEndian.Uint16(data[2:4]))
	if total == 0 {
		// A segmentation offload's packet may leave the total length 0:
		// the packet is what was captured (as gopacket took it).
		total = len(data)
	}
	if hdrLen < 20 || total < hdrLen || hdrLen > len(data) {
		return ev, true
	}
	if frag := binary.BigEndian.Uint16(data[6:8]); frag&0x3FFF != 0 {
		// More fragments (0x2000) or a fragment offset: a fragment, whose
		// transport header is in its first piece only.
		return ev, true
	}
	// Beyond the total length is the link's padding; short of it, what the
	// snap length cut.
	payload := data[hdrLen:min(len(data), total)]
	return decodeTransport(ev, src, dst, data[9], payload, total-hdrLen), true
}

// decodeIPv6 decodes an IPv6 header, skips the hop-by-hop, routing and
// destination options extension headers and decodes what they carry. A
// fragment header, a jumbogram (payload length 0) or any other header
// makes the packet KindOther.
func decodeIPv6(data []byte) (Event, bool) {
	if len(data) < 40 {
		return Event{}, false
	}
	src := netip.AddrFrom16([16]byte(data[8:24]))
	dst := netip.AddrFrom16([16]byte(data[24:40]))
	ev := Event{Src: src.String(), Dst: dst.String(), Kind: KindOther}
	plen := int(binary.BigEndian.Uint16(data[4:6]))
	if plen == 0 {
		return ev, true
	}
	next, payload := data[6], data[40:min(len(data), 40+plen)]
	for next == protoHopByHop || next == protoRouting || next == protoDestOpts {
		// Next header (1), length in 8 bytes beyond the first 8 (1), ...
		if len(payload) < 2 {
			return ev, true
		}
		n := (int(payload[1]) + 1) * 8
		if n > len(payload) {
			return ev, true
		}
		next, payload, plen = payload[0], payload[n:], plen-n
	}
	return decodeTransport(ev, src, dst, next, payload, plen), true
}

// decodeTransport decodes the TCP or ICMP header that an IP header of
// protocol proto carries: payload is what was captured of it, ipLen its
// length by the IP header.
func decodeTransport(ev Event, src, dst netip.Addr, proto byte, payload []byte, ipLen int) Event {
	switch proto {
	case protoTCP:
		// ports (2+2), seq (4), ack (4), data offset (4 bits), reserved,
		// flags (1), window (2), checksum (2), urgent pointer (2)
		if len(payload) < 20 {
			return ev
		}
		hdrLen := int(payload[12]>>4) * 4
		if hdrLen < 20 {
			return ev
		}
		ev.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(payload[0:2])).String()
		ev.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(payload[2:4])).String()
		ev.Seq = binary.BigEndian.Uint32(payload[4:8])
		ev.Ack = binary.BigEndian.Uint32(payload[8:12])
		ev.Flags = tcpFlags(payload[13])
		// A capture keeps SnapLength bytes: the payload's true length comes
		// from the IP header, not from what was kept.
		ev.Len = max(ipLen-hdrLen, 0)
		ev.Kind = ""
	case protoICMPv4:
		// type (1), code (1), checksum (2), rest of header (4)
		if len(payload) >= 8 {
			ev.Kind, ev.Info = KindICMP, icmpInfo(&icmpv4Types, payload[0], payload[1])
		}
	case protoICMPv6:
		// type (1), code (1), checksum (2)
		if len(payload) >= 4 {
			ev.Kind, ev.Info = KindICMP, icmpInfo(&icmpv6Types, payload[0], payload[1])
		}
	}
	return ev
}

// tcpFlags spells the flags of a TCP header's flags byte: SYN, FIN, RST,
// PSH, URG, ACK, in that order.
func tcpFlags(b byte) string {
	const (
		fin = 0x01
		syn = 0x02
		rst = 0x04
		psh = 0x08
		ack = 0x10
		urg = 0x20
	)
	var s strings.Builder
	for _, f := range [...]struct {
		bit byte
		c   byte
	}{{syn, 'S'}, {fin, 'F'}, {rst, 'R'}, {psh, 'P'}, {urg, 'U'}, {ack, 'A'}} {
		if b&f.bit != 0 {
			s.WriteByte(f.c)
		}
	}
	return s.String()
}

// icmpType names an ICMP type and, for the types whose code says more,
// its codes; an empty name is a type not named.
type icmpType struct {
	name  string
	codes []string
}

// icmpInfo spells an ICMP type and code as an Event's Info:
// "DestinationUnreachable(Port)", "EchoRequest", "TimeExceeded(Code: 7)"
// for a code not named, "200(3)" for a type not named.
func icmpInfo(types *[256]icmpType, typ, code uint8) string {
	t := types[typ]
	switch {
	case t.name == "":
		return strconv.Itoa(int(typ)) + "(" + strconv.Itoa(int(code)) + ")"
	case t.codes == nil && code == 0:
		return t.name
	case int(code) < len(t.codes) && t.codes[code] != "":
		return t.name + "(" + t.codes[code] + ")"
	}
	return t.name + "(Code: " + strconv.Itoa(int(code)) + ")"
}

// icmpv4Types are the names of RFC 792's types and codes (and those of
// RFCs 950 and 1256).
var icmpv4Types = [256]icmpType{
	0: {name: "EchoReply"},
	3: {name: "DestinationUnreachable", codes: []string{
		"Net", "Host", "Protocol", "Port", "FragmentationNeeded", "SourceRoutingFailed",
		"NetUnknown", "HostUnknown", "SourceIsolated", "NetAdminProhibited", "HostAdminProhibited",
		"NetTOS", "HostTOS", "CommAdminProhibited", "HostPrecedence", "PrecedenceCutoff"}},
	4:  {name: "SourceQuench"},
	5:  {name: "Redirect", codes: []string{"Net", "Host", "TOS+Net", "TOS+Host"}},
	8:  {name: "EchoRequest"},
	9:  {name: "RouterAdvertisement"},
	10: {name: "RouterSolicitation"},
	11: {name: "TimeExceeded", codes: []string{"TTLExceeded", "FragmentReassemblyTimeExceeded"}},
	12: {name: "ParameterProblem", codes: []string{"PointerIndicatesError", "MissingOption", "BadLength"}},
	13: {name: "TimestampRequest"},
	14: {name: "TimestampReply"},
	15: {name: "InfoRequest"},
	16: {name: "InfoReply"},
	17: {name: "AddressMaskRequest"},
	18: {name: "AddressMaskReply"},
}

// icmpv6Types are the names of RFC 4443's and RFC 4861's types and codes.
var icmpv6Types = [256]icmpType{
	1: {name: "DestinationUnreachable", codes: []string{
		"NoRouteToDst", "AdminProhibited", "BeyondScopeOfSrc", "AddressUnreachable",
		"PortUnreachable", "SrcAddressFailedPolicy", "RejectRouteToDst"}},
	2:   {name: "PacketTooBig"},
	3:   {name: "TimeExceeded", codes: []string{"HopLimitExceeded", "FragmentReassemblyTimeExceeded"}},
	4:   {name: "ParameterProblem", codes: []string{"ErroneousHeaderField", "UnrecognizedNextHeader", "UnrecognizedIPv6Option"}},
	128: {name: "EchoRequest"},
	129: {name: "EchoReply"},
	133: {name: "RouterSolicitation"},
	134: {name: "RouterAdvertisement"},
	135: {name: "NeighborSolicitation"},
	136: {name: "NeighborAdvertisement"},
	137: {name: "Redirect"},
}
