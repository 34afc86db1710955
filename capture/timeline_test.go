package capture

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// segment is one synthetic packet: TCP when flags is set, else ICMP.
type segment struct {
	iface      int
	src, dst   string // "ip:port"
	flags      string
	seq, ack   uint32
	payload    int
	icmpType   uint8
	icmpCode   uint8
	wantKind   Kind
	wantFlags  string
	wantLength int
}

func frame(t *testing.T, s segment) []byte {
	t.Helper()
	host := func(a string) (net.IP, int) {
		h, p, _ := strings.Cut(a, ":")
		port := 0
		fmt.Sscan(p, &port)
		return net.ParseIP(h).To4(), port
	}
	sip, sport := host(s.src)
	dip, dport := host(s.dst)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: sip, DstIP: dip}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	var err error
	if s.flags == "" {
		ip.Protocol = layers.IPProtocolICMPv4
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(s.icmpType, s.icmpCode)}
		err = gopacket.SerializeLayers(buf, opts, eth, ip, icmp, gopacket.Payload(make([]byte, 28)))
	} else {
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: s.seq, Ack: s.ack, Window: 64240,
			SYN: strings.Contains(s.flags, "S"), FIN: strings.Contains(s.flags, "F"), RST: strings.Contains(s.flags, "R"),
			PSH: strings.Contains(s.flags, "P"), URG: strings.Contains(s.flags, "U"), ACK: strings.Contains(s.flags, "A")}
		tcp.SetNetworkLayerForChecksum(ip)
		err = gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(make([]byte, s.payload)))
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadTimeline writes a pcapng as WritePcapng does (two ports, the
// clock offset in the section comment, packets truncated to SnapLength)
// and reads back each packet's kind, length and monotonic instant.
func TestReadTimeline(t *testing.T) {
	const w, p = "198.18.2.2:40000", "198.18.1.2:7000"
	segs := []segment{
		{src: w, dst: p, flags: "S", seq: 100, wantKind: KindSYN, wantFlags: "S"},
		{src: p, dst: w, flags: "SA", seq: 500, ack: 101, wantKind: KindSYN, wantFlags: "SA"},
		{src: w, dst: p, flags: "A", seq: 101, ack: 501, wantKind: KindAck},
		// The same SYN seen on the other port is new there, not a retransmission.
		{iface: 1, src: w, dst: p, flags: "S", seq: 100, wantKind: KindSYN},
		{src: w, dst: p, flags: "PA", seq: 101, ack: 501, payload: 5, wantKind: KindData, wantLength: 5},
		{src: p, dst: w, flags: "A", seq: 501, ack: 106, wantKind: KindAck},
		// Longer than SnapLength: the length comes from the IP header.
		{src: w, dst: p, flags: "PA", seq: 106, ack: 501, payload: 1000, wantKind: KindData, wantLength: 1000},
		{src: w, dst: p, flags: "PA", seq: 106, ack: 501, payload: 1000, wantKind: KindRetransmission, wantLength: 1000},
		{src: w, dst: p, flags: "A", seq: 1105, ack: 501, wantKind: KindKeepalive},
		{src: w, dst: p, flags: "UA", seq: 1106, ack: 501, payload: 1, wantKind: KindUrgent, wantLength: 1},
		{src: p, dst: w, flags: "FA", seq: 501, ack: 1107, wantKind: KindFIN},
		{src: p, dst: w, flags: "FA", seq: 501, ack: 1107, wantKind: KindRetransmission},
		{src: w, dst: p, flags: "R", seq: 1107, wantKind: KindRST},
		{src: "198.18.2.1", dst: "198.18.2.2", icmpType: layers.ICMPv4TypeDestinationUnreachable, icmpCode: layers.ICMPv4CodeHost, wantKind: KindICMP},
	}
	const offset = int64(1_764_000_000_000_000_000)
	path := filepath.Join(t.TempDir(), "t.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	ng, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{Name: "to-watcher", LinkType: layers.LinkTypeEthernet, SnapLength: SnapLength, TimestampResolution: 9},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Comment: fmt.Sprintf(sectionComment, offset, len(segs), 0, 1<<20)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ng.AddInterface(pcapgo.NgInterface{Name: "to-peer", LinkType: layers.LinkTypeEthernet, SnapLength: SnapLength, TimestampResolution: 9}); err != nil {
		t.Fatal(err)
	}
	for i, s := range segs {
		data := frame(t, s)
		kept := data[:min(len(data), SnapLength)]
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, offset+int64(i+1)*1e6), CaptureLength: len(kept), Length: len(data), InterfaceIndex: s.iface}
		if err := ng.WritePacket(ci, kept); err != nil {
			t.Fatal(err)
		}
	}
	if err := ng.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	events, err := ReadTimeline(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(segs) {
		t.Fatalf("%d events, want %d", len(events), len(segs))
	}
	for i, s := range segs {
		e := events[i]
		if e.Kind != s.wantKind {
			t.Errorf("packet %d (%s %s seq %d len %d): kind %s, want %s", i, s.src, s.flags, s.seq, s.payload, e.Kind, s.wantKind)
		}
		if s.wantFlags != "" && e.Flags != s.wantFlags {
			t.Errorf("packet %d: flags %q, want %q", i, e.Flags, s.wantFlags)
		}
		if e.Len != s.wantLength {
			t.Errorf("packet %d: length %d, want %d", i, e.Len, s.wantLength)
		}
		if want := int64(i+1) * 1e6; e.Ns != want {
			t.Errorf("packet %d: instant %d, want %d (the offset taken back out)", i, e.Ns, want)
		}
		if want := []string{"to-watcher", "to-peer"}[s.iface]; e.Iface != want {
			t.Errorf("packet %d: interface %q, want %q", i, e.Iface, want)
		}
	}
	if got := events[len(events)-1].Info; got != "DestinationUnreachable(Host)" {
		t.Errorf("ICMP info %q", got)
	}
	if got := Summary(events); got != "3 syn, 2 data, 2 ack, 1 keepalive, 2 retransmission, 1 urgent, 1 fin, 1 rst, 1 icmp" {
		t.Errorf("summary %q", got)
	}
}

func TestReadTimelineErrors(t *testing.T) {
	dir := t.TempDir()
	notPcap := filepath.Join(dir, "x.pcapng")
	os.WriteFile(notPcap, []byte("not a capture"), 0o644)
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "none.pcapng"), "no such file"},
		{"not pcapng", notPcap, "is not pcapng"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadTimeline(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "timeline: ") {
				t.Errorf("error %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestClockOffset(t *testing.T) {
	// CLOCK_REALTIME − CLOCK_MONOTONIC read twice agrees to well under a
	// millisecond (unless the real-time clock is stepped in between).
	a, b := clockOffset(), clockOffset()
	if d := a - b; d > 1e6 || d < -1e6 {
		t.Errorf("offsets %d and %d differ by %d ns", a, b, d)
	}
	if real := time.Now().UnixNano(); a <= 0 || a > real {
		t.Errorf("offset %d is not between 0 and now (%d)", a, real)
	}
}
