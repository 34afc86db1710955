package capture

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// oracleFrame is a packet built by gopacket, for decode to read as
// gopacketDecode did.
type oracleFrame struct {
	name string
	lt   layers.LinkType
	data []byte
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// oracleFrames are packets of every shape decode handles: TCP with and
// without options and payload over IPv4 and IPv6, ICMP errors and echoes,
// VLAN tags, raw IP, UDP, ARP, fragments, padding, an IPv6 hop-by-hop
// header before ICMPv6, IPv4 options.
func oracleFrames(t testing.TB) []oracleFrame {
	mac1, mac2 := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: et}
	}
	v4 := func(p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: p, SrcIP: net.IP{198, 18, 2, 2}, DstIP: net.IP{198, 18, 1, 2}}
	}
	v6 := func(p layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: p, SrcIP: net.ParseIP("fd00::2:2"), DstIP: net.ParseIP("fd00::1:2")}
	}
	tcp := func(ip gopacket.NetworkLayer, flags string, opts ...layers.TCPOption) *layers.TCP {
		s := &layers.TCP{SrcPort: 40000, DstPort: 7000, Seq: 0xfffffff0, Ack: 12345, Window: 64240, Options: opts}
		for _, f := range flags {
			switch f {
			case 'S':
				s.SYN = true
			case 'F':
				s.FIN = true
			case 'R':
				s.RST = true
			case 'P':
				s.PSH = true
			case 'U':
				s.URG = true
			case 'A':
				s.ACK = true
			case 'E':
				s.ECE, s.CWR = true, true
			}
		}
		s.SetNetworkLayerForChecksum(ip)
		return s
	}
	payload := func(n int) gopacket.Payload { return make(gopacket.Payload, n) }
	mss := layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}
	ts := layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop}

	var out []oracleFrame
	add := func(name string, lt layers.LinkType, ls ...gopacket.SerializableLayer) {
		out = append(out, oracleFrame{name, lt, serialize(t, ls...)})
	}
	E := layers.LinkTypeEthernet
	for _, flags := range []string{"S", "SA", "A", "PA", "FA", "R", "RA", "UA", "SAE", ""} {
		ip := v4(layers.IPProtocolTCP)
		add("v4 tcp "+flags, E, eth(layers.EthernetTypeIPv4), ip, tcp(ip, flags), payload(0))
	}
	ip := v4(layers.IPProtocolTCP)
	add("v4 tcp options", E, eth(layers.EthernetTypeIPv4), ip, tcp(ip, "SA", mss, nop, nop, ts), payload(0))
	ip = v4(layers.IPProtocolTCP)
	add("v4 tcp data", E, eth(layers.EthernetTypeIPv4), ip, tcp(ip, "PA", nop, nop, ts), payload(1448))
	ip = v4(layers.IPProtocolTCP)
	add("v4 tcp keepalive byte", E, eth(layers.EthernetTypeIPv4), ip, tcp(ip, "A"), payload(1))
	ip = v4(layers.IPProtocolTCP)
	ip.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
	add("v4 options tcp", E, eth(layers.EthernetTypeIPv4), ip, tcp(ip, "PA"), payload(10))
	for _, tc := range [][2]uint8{{3, 3}, {3, 1}, {3, 4}, {11, 0}, {8, 0}, {0, 0}, {5, 1}, {3, 99}, {200, 7}} {
		add("v4 icmp", E, eth(layers.EthernetTypeIPv4), v4(layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(tc[0], tc[1])}, payload(28))
	}
	udp := func(ip gopacket.NetworkLayer, port layers.UDPPort) *layers.UDP {
		u := &layers.UDP{SrcPort: port, DstPort: port}
		u.SetNetworkLayerForChecksum(ip)
		return u
	}
	ip = v4(layers.IPProtocolUDP)
	add("v4 udp", E, eth(layers.EthernetTypeIPv4), ip, udp(ip, 5353), payload(20))
	ip = v4(layers.IPProtocolTCP)
	ip.Flags = layers.IPv4MoreFragments
	add("v4 first fragment", E, eth(layers.EthernetTypeIPv4), ip, tcp(ip, "PA"), payload(100))
	ip = v4(layers.IPProtocolTCP)
	ip.FragOffset = 100
	add("v4 later fragment", E, eth(layers.EthernetTypeIPv4), ip, payload(100))
	add("arp", E, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: mac1, SourceProtAddress: []byte{198, 18, 2, 2},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{198, 18, 2, 1}})
	ip = v4(layers.IPProtocolTCP)
	add("vlan v4 tcp", E, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, ip, tcp(ip, "PA"), payload(3))
	ip = v4(layers.IPProtocolTCP)
	add("qinq v4 tcp", E, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 8, Type: layers.EthernetTypeIPv4}, ip, tcp(ip, "A"), payload(0))
	ip = v4(layers.IPProtocolTCP)
	add("raw v4 tcp", layers.LinkTypeRaw, ip, tcp(ip, "PA"), payload(7))

	for _, flags := range []string{"S", "SA", "A", "PA", "FA", "R"} {
		ip6 := v6(layers.IPProtocolTCP)
		add("v6 tcp "+flags, E, eth(layers.EthernetTypeIPv6), ip6, tcp(ip6, flags, nop, nop, ts), payload(len(flags)*100))
	}
	icmp6 := func(ip gopacket.NetworkLayer, typ, code uint8) *layers.ICMPv6 {
		i := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
		i.SetNetworkLayerForChecksum(ip)
		return i
	}
	ip6 := v6(layers.IPProtocolTCP)
	add("raw v6 tcp", layers.LinkTypeRaw, ip6, tcp(ip6, "PA"), payload(7))
	for _, tc := range [][2]uint8{{1, 4}, {1, 0}, {1, 9}, {2, 0}, {3, 0}, {128, 0}, {129, 0}, {135, 0}, {143, 0}, {4, 1}} {
		ip6 := v6(layers.IPProtocolICMPv6)
		add("v6 icmp", E, eth(layers.EthernetTypeIPv6), ip6, icmp6(ip6, tc[0], tc[1]), payload(20)) // 20: a neighbour solicitation without options
	}
	ip6 = v6(layers.IPProtocolUDP)
	add("v6 udp", E, eth(layers.EthernetTypeIPv6), ip6, udp(ip6, 547), payload(20))
	// An MLD report's hop-by-hop header (router alert, padding) before ICMPv6.
	hbh := v6(layers.IPProtocolIPv6HopByHop)
	add("v6 hop-by-hop icmp", E, eth(layers.EthernetTypeIPv6), hbh,
		gopacket.Payload{byte(layers.IPProtocolICMPv6), 0, 5, 2, 0, 0, 1, 0}, icmp6(hbh, 143, 0), payload(24))

	// By hand: a short IPv4 packet padded to Ethernet's 60 bytes, and a
	// segmentation offload's packet with total length 0.
	ip = v4(layers.IPProtocolTCP)
	short := serialize(t, eth(layers.EthernetTypeIPv4), ip, tcp(ip, "A"), payload(0))
	out = append(out, oracleFrame{"padded", E, append(short, make([]byte, 60-len(short))...)})
	ip = v4(layers.IPProtocolTCP)
	tso := serialize(t, eth(layers.EthernetTypeIPv4), ip, tcp(ip, "PA"), payload(100))
	tso[14+2], tso[14+3] = 0, 0
	out = append(out, oracleFrame{"tso", E, tso})
	return out
}

// TestDecodeMatchesGopacket decodes every oracle frame, whole, cut at the
// snap length and cut at every length short of that, and wants the event
// gopacket's decoder gave wherever gopacket decoded without error.
func TestDecodeMatchesGopacket(t *testing.T) {
	compared, whole := 0, 0
	for _, f := range oracleFrames(t) {
		if ok, why := gopacketComparable(f.data, f.lt); !ok {
			t.Errorf("%s: whole frame not comparable: %s", f.name, why)
		}
		for n := len(f.data); n >= 0; n-- {
			if n < len(f.data) && n > SnapLength {
				continue
			}
			data := f.data[:n]
			got, gotOK := decode(data, linkType(f.lt))
			if ok, _ := gopacketComparable(data, f.lt); !ok {
				continue
			}
			want, wantOK := gopacketDecode(data, f.lt)
			if got != want || gotOK != wantOK {
				t.Errorf("%s cut at %d of %d bytes:\n got %+v %v\nwant %+v %v", f.name, n, len(f.data), got, gotOK, want, wantOK)
			}
			compared++
			if n == len(f.data) {
				whole++
			}
		}
	}
	t.Logf("%d cuts compared, %d of them whole frames", compared, whole)
}

// TestDecodeDepartures pins what decode does where it departs from
// gopacket's decoder on purpose, or where gopacket's gave artefacts.
func TestDecodeDepartures(t *testing.T) {
	v6 := func(next layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP("fd00::2"), DstIP: net.ParseIP("fd00::1")}
	}
	dest := v6(layers.IPProtocolIPv6Destination)
	seg := &layers.TCP{SrcPort: 1, DstPort: 2, Seq: 3, ACK: true, PSH: true, Ack: 4}
	seg.SetNetworkLayerForChecksum(dest)
	withExt := serialize(t, dest, gopacket.Payload{byte(layers.IPProtocolTCP), 0, 1, 4, 0, 0, 0, 0}, seg, make(gopacket.Payload, 10))
	inner := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	seg2 := &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true}
	seg2.SetNetworkLayerForChecksum(inner)
	ipip := serialize(t, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolIPv4, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}},
		inner, seg2)
	shortTCP := append(serialize(t, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}), make([]byte, 10)...)
	shortTCP[3] = 30 // total length 30: 10 bytes of TCP header

	for _, tt := range []struct {
		name string
		data []byte
		want Event
		ok   bool
	}{
		// gopacket counted the 8-byte destination options header as payload: 18.
		{"v6 extension header before tcp", withExt, Event{Src: "[fd00::2]:1", Dst: "[fd00::1]:2", Flags: "PA", Seq: 3, Ack: 4, Len: 10}, true},
		// gopacket gave the inner segment's ports and flags with the outer addresses.
		{"ip in ip", ipip, Event{Src: "192.0.2.1", Dst: "192.0.2.2", Kind: KindOther}, true},
		// gopacket gave a TCP segment of port 0 and no flags.
		{"tcp header short", shortTCP, Event{Src: "10.0.0.1", Dst: "10.0.0.2", Kind: KindOther}, true},
		// gopacket gave an event from "invalid IP" to "invalid IP".
		{"ipv4 header short", []byte{0x45, 0, 0, 20, 0, 0}, Event{}, false},
		{"ipv6 header short", []byte{0x60, 0, 0, 0}, Event{}, false},
		{"empty", nil, Event{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if ok, why := gopacketComparable(tt.data, layers.LinkTypeRaw); ok {
				t.Errorf("gopacket's decoder agrees here; the case is not a departure")
			} else {
				t.Logf("gopacket: %s", why)
			}
			got, ok := decode(tt.data, linkRaw)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestICMPInfoMatchesGopacket spells every ICMP type and code as
// gopacket's TypeCode.String did.
func TestICMPInfoMatchesGopacket(t *testing.T) {
	for typ := range 256 {
		for code := range 256 {
			if got, want := icmpInfo(&icmpv4Types, uint8(typ), uint8(code)), layers.CreateICMPv4TypeCode(uint8(typ), uint8(code)).String(); got != want {
				t.Fatalf("ICMPv4 %d/%d: %q, want %q", typ, code, got, want)
			}
			if got, want := icmpInfo(&icmpv6Types, uint8(typ), uint8(code)), layers.CreateICMPv6TypeCode(uint8(typ), uint8(code)).String(); got != want {
				t.Fatalf("ICMPv6 %d/%d: %q, want %q", typ, code, got, want)
			}
		}
	}
}

// TestReadTimelineMatchesGopacket reads captures with ReadTimeline and
// with the reader and decoder it had on gopacket, and wants the same
// events: a capture of the lab (the report package's test data) and one of
// the oracle frames, cut at the snap length, on two interfaces.
func TestReadTimelineMatchesGopacket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oracle.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const offset = int64(1_764_000_000_123_456_789)
	w, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{Name: "to-watcher", LinkType: layers.LinkTypeEthernet, SnapLength: SnapLength, TimestampResolution: 9},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Comment: "halfopen capture: timestamps are CLOCK_MONOTONIC + 1764000000123456789 ns; 1 packets kept, 0 not kept over the 1-byte limit"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(pcapgo.NgInterface{Name: "to-peer", LinkType: layers.LinkTypeEthernet, SnapLength: SnapLength, TimestampResolution: 9}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fr := range oracleFrames(t) {
		if fr.lt != layers.LinkTypeEthernet {
			continue // the old reader skipped an interface of another link type
		}
		for i := range 2 {
			kept := fr.data[:min(len(fr.data), SnapLength)]
			n++
			ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, offset+int64(n)*1e6+int64(i)), CaptureLength: len(kept), Length: len(fr.data), InterfaceIndex: i}
			if err := w.WritePacket(ci, kept); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, path := range []string{path, "../report/testdata/timeline/sample-0.pcapng"} {
		got, err := ReadTimeline(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := gopacketReadTimeline(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %d events, gopacket's reader %d", path, len(got), len(want))
			for i := range max(len(got), len(want)) {
				var g, w Event
				if i < len(got) {
					g = got[i]
				}
				if i < len(want) {
					w = want[i]
				}
				if g != w {
					t.Errorf("event %d:\n got %v\nwant %v", i, g, w)
				}
			}
		}
		t.Logf("%s: %d events, %s", path, len(got), Summary(got))
	}
}

// FuzzDecode decodes anything without panicking and agrees with gopacket's
// decoder wherever that decoded without error.
func FuzzDecode(f *testing.F) {
	for _, fr := range oracleFrames(f) {
		f.Add(fr.data, uint16(fr.lt))
	}
	f.Fuzz(func(t *testing.T, data []byte, lt uint16) {
		got, gotOK := decode(data, linkType(lt))
		if lt != uint16(linkEthernet) && lt != uint16(linkRaw) {
			return // gopacket's decoders of other link types are not the oracle
		}
		if ok, _ := gopacketComparable(data, layers.LinkType(lt)); !ok {
			return
		}
		want, wantOK := gopacketDecode(data, layers.LinkType(lt))
		if got != want || gotOK != wantOK {
			t.Errorf("got %+v %v\nwant %+v %v", got, gotOK, want, wantOK)
		}
	})
}
