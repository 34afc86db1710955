package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// testCapture is a section of two interfaces of different link types and
// packets on both, with a timestamp before 1970 and one past 2³² seconds'
// worth of nanoseconds' high word.
var testCapture = struct {
	section ngSection
	ifaces  []ngInterface
	packets []ngPacket
}{
	section: ngSection{application: "halfopen", os: "linux", comment: "halfopen capture: timestamps are CLOCK_MONOTONIC + 5 ns; 4 packets kept, 0 not kept over the 9-byte limit"},
	ifaces: []ngInterface{
		{name: "to-peer", os: "linux", linkType: linkEthernet, snapLen: SnapLength},
		{name: "tun0", os: "linux", linkType: linkRaw, snapLen: SnapLength},
	},
	packets: []ngPacket{
		{iface: 0, unixNs: 1_764_000_000_123_456_789, length: 60, data: bytes.Repeat([]byte{0xAB}, 60)},
		{iface: 1, unixNs: 1_764_000_000_123_456_790, length: 1500, data: bytes.Repeat([]byte{0x45}, 191)},
		{iface: 0, unixNs: 1, length: 3, data: []byte{1, 2, 3}},
		{iface: 1, unixNs: -1_500_000_000, length: 0, data: []byte{}},
	},
}

func writeTestCapture(t testing.TB, order byteOrder) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newNgWriterOrder(&buf, testCapture.section, order)
	if err != nil {
		t.Fatal(err)
	}
	for i, ifc := range testCapture.ifaces {
		if id, err := w.addInterface(ifc); err != nil || id != i {
			t.Fatalf("interface %d: id %d, %v", i, id, err)
		}
	}
	for _, p := range testCapture.packets {
		if err := w.writePacket(p.iface, p.unixNs, p.length, p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads a pcapng file's packets to its end.
func readAll(b []byte) (*ngReader, []ngPacket, error) {
	r, err := newNgReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	var out []ngPacket
	for {
		p, err := r.next()
		if errors.Is(err, io.EOF) {
			return r, out, nil
		}
		if err != nil {
			return r, out, err
		}
		out = append(out, p)
	}
}

// TestNgWriterMatchesPcapgo writes what WritePcapng wrote with gopacket's
// pcapgo and wants the same bytes.
func TestNgWriterMatchesPcapgo(t *testing.T) {
	var want bytes.Buffer
	tc := testCapture
	ng := func(ifc ngInterface) pcapgo.NgInterface {
		return pcapgo.NgInterface{Name: ifc.name, OS: ifc.os, LinkType: layers.LinkType(ifc.linkType), SnapLength: ifc.snapLen, TimestampResolution: 9}
	}
	w, err := pcapgo.NewNgWriterInterface(&want, ng(tc.ifaces[0]), pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Application: tc.section.application, OS: tc.section.os, Comment: tc.section.comment}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(ng(tc.ifaces[1])); err != nil {
		t.Fatal(err)
	}
	for _, p := range tc.packets {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, p.unixNs), CaptureLength: len(p.data), Length: p.length, InterfaceIndex: p.iface}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	if got := writeTestCapture(t, binary.LittleEndian); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("ngWriter wrote\n%x\npcapgo\n%x", got, want.Bytes())
	}
}

// TestPcapgoReadsNgWriter reads what ngWriter writes, in either byte
// order, with pcapgo's reader and with ngReader.
func TestPcapgoReadsNgWriter(t *testing.T) {
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(order.String(), func(t *testing.T) {
			file := writeTestCapture(t, order)
			r, err := pcapgo.NewNgReader(bytes.NewReader(file), pcapgo.NgReaderOptions{WantMixedLinkType: true})
			if err != nil {
				t.Fatal(err)
			}
			s := r.SectionInfo()
			if got := (ngSection{comment: s.Comment, hardware: s.Hardware, os: s.OS, application: s.Application}); got != testCapture.section {
				t.Errorf("pcapgo read section %+v, want %+v", got, testCapture.section)
			}
			got := pcapgoPackets(t, r)
			if !reflect.DeepEqual(got, testCapture.packets) {
				t.Errorf("pcapgo read packets\n%+v\nwant\n%+v", got, testCapture.packets)
			}
			for i, want := range testCapture.ifaces {
				ifc, err := r.Interface(i)
				if err != nil {
					t.Fatal(err)
				}
				if ifc.Name != want.name || ifc.OS != want.os || ifc.LinkType != layers.LinkType(want.linkType) || ifc.SnapLength != want.snapLen || ifc.TimestampResolution != 9 {
					t.Errorf("pcapgo read interface %d as %+v, want %+v", i, ifc, want)
				}
			}

			nr, packets, err := readAll(file)
			if err != nil {
				t.Fatal(err)
			}
			if nr.section != testCapture.section || nr.sections != 1 {
				t.Errorf("section %+v (%d), want %+v", nr.section, nr.sections, testCapture.section)
			}
			if !reflect.DeepEqual(packets, testCapture.packets) {
				t.Errorf("read packets\n%+v\nwant\n%+v", packets, testCapture.packets)
			}
			for i, ifc := range nr.ifaces {
				want := testCapture.ifaces[i]
				want.unitsPerSec = 1e9
				if ifc != want {
					t.Errorf("interface %d: %+v, want %+v", i, ifc, want)
				}
			}
		})
	}
}

// TestNgReaderReadsPcapgo reads a file of pcapgo's writer, with interface
// options ngWriter never writes (if_tsoffset, a comment, a filter) and an
// interface statistics block, as pcapgo's reader does.
func TestNgReaderReadsPcapgo(t *testing.T) {
	var file bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&file, pcapgo.NgInterface{Name: "eth0", Comment: "c", Filter: "tcp", OS: "linux", LinkType: layers.LinkTypeEthernet},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Hardware: "amd64", OS: "linux", Application: "gopacket"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(pcapgo.NgInterface{Name: "eth1", LinkType: layers.LinkTypeEthernet, TimestampOffset: 3600}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		data := bytes.Repeat([]byte{byte(i)}, i*7)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1_700_000_000+int64(i), int64(i)*123_457), CaptureLength: len(data), Length: len(data) + i, InterfaceIndex: i % 2}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if err := w.WriteInterfaceStats(1, pcapgo.NgInterfaceStatistics{LastUpdate: ci.Timestamp, PacketsReceived: 3, PacketsDropped: pcapgo.NgNoValue64}); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.Flush()

	r, err := pcapgo.NewNgReader(bytes.NewReader(file.Bytes()), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatal(err)
	}
	want := pcapgoPackets(t, r)
	nr, got, err := readAll(file.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 6 || !reflect.DeepEqual(got, want) {
		t.Errorf("read\n%+v\npcapgo read\n%+v", got, want)
	}
	if want := (ngSection{hardware: "amd64", os: "linux", application: "gopacket"}); nr.section != want {
		t.Errorf("section %+v, want %+v", nr.section, want)
	}
	if len(nr.ifaces) != 2 || nr.ifaces[0].name != "eth0" || nr.ifaces[1].offsetSec != 3600 {
		t.Errorf("interfaces %+v", nr.ifaces)
	}
}

// Blocks by hand, for what neither writer writes.

func rawOpt(o byteOrder, code uint16, v []byte) []byte {
	b := o.AppendUint16(nil, code)
	b = o.AppendUint16(b, uint16(len(v)))
	return pad4(append(b, v...))
}

func rawBlock(o byteOrder, typ uint32, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	out := o.AppendUint32(nil, typ)
	out = o.AppendUint32(out, uint32(len(b)+12))
	out = append(out, b...)
	return o.AppendUint32(out, uint32(len(b)+12))
}

func rawSHB(o byteOrder, opts ...[]byte) []byte {
	b := o.AppendUint32(nil, byteOrderMagic)
	b = o.AppendUint16(b, 1)
	b = o.AppendUint16(b, 0)
	b = o.AppendUint64(b, ^uint64(0))
	return rawBlock(o, blockSHB, append([][]byte{b}, opts...)...)
}

func rawIDB(o byteOrder, lt linkType, opts ...[]byte) []byte {
	b := o.AppendUint16(nil, uint16(lt))
	b = o.AppendUint16(b, 0)
	b = o.AppendUint32(b, 0)
	return rawBlock(o, blockIDB, append([][]byte{b}, opts...)...)
}

func rawEPB(o byteOrder, iface uint32, ts uint64, data []byte) []byte {
	b := o.AppendUint32(nil, iface)
	b = o.AppendUint32(b, uint32(ts>>32))
	b = o.AppendUint32(b, uint32(ts))
	b = o.AppendUint32(b, uint32(len(data)))
	b = o.AppendUint32(b, uint32(len(data)))
	return rawBlock(o, blockEPB, pad4(append(b, data...)))
}

var end = []byte{0, 0, 0, 0}

// TestNgReaderTimestamps reads timestamps of each if_tsresol: absent
// (microseconds), decimal and binary, and with if_tsoffset.
func TestNgReaderTimestamps(t *testing.T) {
	le := binary.LittleEndian
	file := bytes.Join([][]byte{
		rawSHB(le),
		rawIDB(le, linkRaw), // 10⁻⁶ s
		rawIDB(le, linkRaw, rawOpt(le, optIfTsresol, []byte{3})), // 10⁻³ s
		rawIDB(le, linkRaw, rawOpt(le, optIfTsresol, []byte{0x8A}), // 2⁻¹⁰ s
			rawOpt(le, optIfTsoffset, le.AppendUint64(nil, uint64(1e9))), end),
		rawIDB(le, linkRaw, rawOpt(le, optIfTsresol, []byte{19}), end), // 10⁻¹⁹ s
		rawIDB(le, linkRaw, rawOpt(le, optIfTsresol, []byte{0}), // 1 s
			rawOpt(le, optIfTsoffset, le.AppendUint64(nil, uint64(1<<64-10)))),
		rawEPB(le, 0, 1_700_000_000_123_456, nil),
		rawEPB(le, 1, 1_700_000_000_123, nil),
		rawEPB(le, 2, 5*1024+512, nil),
		rawEPB(le, 3, 12_345_678_901_234_567_890, nil),
		rawEPB(le, 4, 7, nil),
	}, nil)
	_, got, err := readAll(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{
		1_700_000_000_123_456_000,
		1_700_000_000_123_000_000,
		(1e9+5)*1e9 + 500_000_000,
		1_234_567_890,
		-3e9,
	}
	for i, p := range got {
		if p.unixNs != want[i] {
			t.Errorf("interface %d: %d ns, want %d", i, p.unixNs, want[i])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d packets, want %d", len(got), len(want))
	}
}

// TestNgReaderSections reads a file of two sections, little- then
// big-endian, with blocks to skip: each section's interfaces are its own.
func TestNgReaderSections(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	file := bytes.Join([][]byte{
		rawSHB(le, rawOpt(le, optComment, []byte("one")), end),
		rawBlock(le, 0x40000BAD, []byte("custom!!")), // a custom block
		rawIDB(le, linkEthernet, rawOpt(le, optIfName, []byte("a")), end),
		rawBlock(le, 5, make([]byte, 12)), // interface statistics
		rawBlock(le, 3, make([]byte, 8)),  // a simple packet block
		rawEPB(le, 0, 1, []byte{1}),
		rawSHB(be, rawOpt(be, optComment, []byte("two")), end),
		rawIDB(be, linkRaw, rawOpt(be, optIfName, []byte("b")), end),
		rawIDB(be, linkIPv6, rawOpt(be, optIfName, []byte("c")), end),
		rawEPB(be, 1, 2, []byte{2, 2}),
		rawEPB(be, 0, 3, []byte{3, 3, 3}),
	}, nil)
	r, err := newNgReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		comment, iface string
		data           []byte
	}{{"one", "a", []byte{1}}, {"two", "c", []byte{2, 2}}, {"two", "b", []byte{3, 3, 3}}} {
		p, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if r.section.comment != want.comment || r.ifaces[p.iface].name != want.iface || !bytes.Equal(p.data, want.data) {
			t.Errorf("packet %v on %q in section %q, want %v on %q in %q", p.data, r.ifaces[p.iface].name, r.section.comment, want.data, want.iface, want.comment)
		}
	}
	if _, err := r.next(); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
	if r.sections != 2 {
		t.Errorf("%d sections", r.sections)
	}
}

// TestNgReaderCorrupt reads files that are not pcapng or are corrupt, and
// wants an error that says what is wrong.
func TestNgReaderCorrupt(t *testing.T) {
	le := binary.LittleEndian
	shb, idb := rawSHB(le), rawIDB(le, linkEthernet)
	with := func(b []byte, at int, v ...byte) []byte {
		b = bytes.Clone(b)
		copy(b[at:], v)
		return b
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	epb := rawEPB(le, 0, 1, []byte{1, 2, 3, 4})
	for _, tt := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "empty file: no section header block"},
		{"text", []byte("not a capture"), "first block of type 0x20746f6e: no section header block"},
		{"short", shb[:6], "header: unexpected EOF"},
		{"no magic", shb[:10], "section header at byte 0: unexpected EOF"},
		{"wrong magic", with(shb, 8, 1, 2, 3, 4), "byte-order magic 0x01020304"},
		{"version 2", with(shb, 12, 2), "pcapng version 2.0, not 1"},
		{"section cut", shb[:20], "block at byte 0 (type 0xa0d0d0a, 28 bytes): unexpected EOF"},
		{"length not aligned", with(shb, 4, 29), "length 29"},
		{"length too short", with(shb, 4, 24), "length 24"},
		{"length huge", with(shb, 4, 0, 0, 0, 0x7f), "length 2130706432"},
		{"trailing length", with(shb, len(shb)-4, 32), "length 28, trailing length 32"},
		{"block cut", cat(shb, idb[:12]), "block at byte 28 (type 0x1, 20 bytes): unexpected EOF"},
		{"block header cut", cat(shb, idb[:3]), "block at byte 28: header: unexpected EOF"},
		{"packet before interface", cat(shb, epb), "packet on interface 0, of 0 described"},
		{"packet on no interface", cat(shb, idb, rawEPB(le, 1, 1, nil)), "packet on interface 1, of 1 described"},
		{"captured past block", cat(shb, idb, with(epb, 20, 9)), "9 bytes captured in a block of 36"},
		{"packet block short", cat(shb, idb, rawBlock(le, blockEPB, make([]byte, 16))), "enhanced packet block of 16 bytes"},
		{"interface block short", cat(shb, rawBlock(le, blockIDB, make([]byte, 4))), "interface description of 4 bytes"},
		{"option overruns", cat(shb, rawBlock(le, blockIDB, make([]byte, 8), le.AppendUint16(nil, optIfName), le.AppendUint16(nil, 9), []byte("abcdefgh"))),
			"option 2 of 9 bytes, 8 left"},
		{"tsresol too fine", cat(shb, rawIDB(le, linkRaw, rawOpt(le, optIfTsresol, []byte{20}))), "if_tsresol 10^-20"},
		{"binary tsresol too fine", cat(shb, rawIDB(le, linkRaw, rawOpt(le, optIfTsresol, []byte{0x80 | 64}))), "if_tsresol 2^-64"},
		{"tsresol empty", cat(shb, rawIDB(le, linkRaw, rawOpt(le, optIfTsresol, nil))), "empty if_tsresol"},
		{"tsoffset short", cat(shb, rawIDB(le, linkRaw, rawOpt(le, optIfTsoffset, []byte{1, 2, 3, 4}))), "if_tsoffset of 4 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "pcapng: ") {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// TestNgReaderCut reads every prefix of a file: the whole blocks' packets
// and then io.EOF at a block's end, an error within one.
func TestNgReaderCut(t *testing.T) {
	file := writeTestCapture(t, binary.BigEndian)
	ends := map[int]int{} // a block's end → packets before it
	for off, n := 0, 0; off < len(file); {
		if binary.BigEndian.Uint32(file[off:]) == blockEPB {
			n++
		}
		off += int(binary.BigEndian.Uint32(file[off+4:]))
		ends[off] = n
	}
	if len(ends) != 1+len(testCapture.ifaces)+len(testCapture.packets) {
		t.Fatalf("%d blocks", len(ends))
	}
	for cut := range len(file) {
		_, packets, err := readAll(file[:cut])
		if n, ok := ends[cut]; ok {
			if err != nil || len(packets) != n {
				t.Errorf("cut at %d, a block's end: %d packets, %v; want %d and no error", cut, len(packets), err, n)
			}
		} else if err == nil {
			t.Errorf("cut at %d: no error", cut)
		}
	}
}

// FuzzNgReader reads anything without panicking, and a packet it returns
// is on an interface described.
func FuzzNgReader(f *testing.F) {
	f.Add(writeTestCapture(f, binary.LittleEndian))
	f.Add(writeTestCapture(f, binary.BigEndian))
	le := binary.LittleEndian
	f.Add(bytes.Join([][]byte{rawSHB(le), rawIDB(le, linkRaw, rawOpt(le, optIfTsresol, []byte{0x8A})), rawEPB(le, 0, 1<<40, []byte{0x45})}, nil))
	f.Fuzz(func(t *testing.T, file []byte) {
		r, err := newNgReader(bytes.NewReader(file))
		if err != nil {
			return
		}
		for {
			p, err := r.next()
			if err != nil {
				return
			}
			if p.iface < 0 || p.iface >= len(r.ifaces) {
				t.Fatalf("packet on interface %d of %d", p.iface, len(r.ifaces))
			}
			decode(p.data, r.ifaces[p.iface].linkType)
		}
	})
}

// TestWritePcapng writes a capture's packets as WritePcapng does and reads
// them back, with pcapgo's reader and with ReadTimeline: the instants
// come back monotonic.
func TestWritePcapng(t *testing.T) {
	const offset = int64(1_764_000_000_000_000_000)
	frames := oracleFrames(t)
	c := &Capture{limit: 1 << 20, offsetNs: offset, ifaces: []*iface{{name: "to-peer", linkType: linkEthernet}, {name: "to-watcher", linkType: linkEthernet}}}
	for i, f := range frames {
		if f.lt != layers.LinkTypeEthernet {
			continue
		}
		c.packets = append(c.packets, packet{monoNs: int64(i+1) * 1e6, iface: i % 2, length: len(f.data), data: f.data[:min(len(f.data), SnapLength)]})
	}
	c.dropped = 3
	path := filepath.Join(t.TempDir(), "c.pcapng")
	if err := c.WritePcapng(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTimeline(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := gopacketReadTimeline(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadTimeline gave %d events, gopacket's %d:\n%v\n%v", len(got), len(want), got, want)
	}
	if got := c.Timeline(); !reflect.DeepEqual(got, want) {
		t.Errorf("Timeline gave %d events, gopacket's ReadTimeline %d", len(got), len(want))
	}
	for _, e := range got {
		if e.Ns%1e6 != 0 || e.Ns <= 0 || e.Ns > int64(len(frames))*1e6 {
			t.Errorf("instant %d is not one written", e.Ns)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if want := "halfopen capture: timestamps are CLOCK_MONOTONIC + 1764000000000000000 ns; " +
		strconv.Itoa(len(c.packets)) + " packets kept, 3 not kept over the 1048576-byte limit"; r.SectionInfo().Comment != want {
		t.Errorf("section comment %q, want %q", r.SectionInfo().Comment, want)
	}
}

// pcapgoPackets reads every packet left in r, gopacket's reader, as ours
// gives them.
func pcapgoPackets(t *testing.T, r *pcapgo.NgReader) []ngPacket {
	t.Helper()
	var out []ngPacket
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ngPacket{iface: ci.InterfaceIndex, unixNs: ci.Timestamp.UnixNano(), length: ci.Length, data: data})
	}
}
