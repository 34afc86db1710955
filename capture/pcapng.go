package capture

// A pcapng writer and reader of the blocks a capture needs, after
// draft-ietf-opsawg-pcapng: a Section Header Block, Interface Description
// Blocks and Enhanced Packet Blocks. Every block is
//
//	type (4) | total length (4) | body, padded to 4 bytes | total length (4)
//
// in the byte order its section header's byte-order magic says. The writer
// writes little-endian, nanosecond timestamps; the reader takes either byte
// order and any if_tsresol, and skips block types it does not use
// (statistics, name resolution, the obsolete Packet Block, Simple Packet
// Blocks, which carry neither interface nor timestamp, and any other).

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
)

// linkType is an interface's LINKTYPE_ value, which says how its packets
// begin.
type linkType uint16

const (
	linkEthernet linkType = 1   // LINKTYPE_ETHERNET
	linkRaw      linkType = 101 // LINKTYPE_RAW: a bare IPv4 or IPv6 packet
	linkLinuxSLL linkType = 113 // LINKTYPE_LINUX_SLL: tcpdump -i any
	linkIPv4     linkType = 228 // LINKTYPE_IPV4
	linkIPv6     linkType = 229 // LINKTYPE_IPV6
)

// Block types.
const (
	blockIDB uint32 = 1          // Interface Description Block
	blockEPB uint32 = 6          // Enhanced Packet Block
	blockSHB uint32 = 0x0A0D0D0A // Section Header Block: the same in both byte orders
)

// Option codes. Codes 2 and up mean something else in each block type.
const (
	optEnd        = 0  // opt_endofopt
	optComment    = 1  // opt_comment
	optHardware   = 2  // shb_hardware
	optOS         = 3  // shb_os
	optUserAppl   = 4  // shb_userappl
	optIfName     = 2  // if_name
	optIfTsresol  = 9  // if_tsresol
	optIfOS       = 12 // if_os
	optIfTsoffset = 14 // if_tsoffset
)

const (
	byteOrderMagic uint32 = 0x1A2B3C4D
	// maxBlockLen bounds the blocks the reader takes (and the writer
	// writes), so that a corrupt length cannot make it allocate gigabytes.
	maxBlockLen = 16 << 20
	// nsTsresol is if_tsresol for nanoseconds: 10⁻⁹ s.
	nsTsresol = 9
)

// ngSection is what a Section Header Block says of its file.
type ngSection struct {
	comment, hardware, os, application string
}

// ngInterface is what an Interface Description Block says of one
// interface.
type ngInterface struct {
	name, os string
	linkType linkType
	snapLen  uint32 // 0: no limit
	// unitsPerSec is how many timestamp units make a second, from
	// if_tsresol (10⁶ when absent); offsetSec is if_tsoffset.
	unitsPerSec uint64
	offsetSec   int64
}

// unixNs turns a packet's timestamp, in the interface's units, into Unix
// nanoseconds.
func (ifc *ngInterface) unixNs(ts uint64) int64 {
	sec, frac := ts/ifc.unitsPerSec, ts%ifc.unitsPerSec
	// frac·10⁹/unitsPerSec without overflow: frac < unitsPerSec, so the
	// high word of the product is below the divisor and Div64 cannot panic.
	hi, lo := bits.Mul64(frac, 1e9)
	ns, _ := bits.Div64(hi, lo, ifc.unitsPerSec)
	return (int64(sec)+ifc.offsetSec)*1e9 + int64(ns)
}

// ngPacket is one packet of a pcapng file.
type ngPacket struct {
	iface  int   // index of its interface in the section
	unixNs int64 // its timestamp, in Unix nanoseconds
	length int   // its length on the wire
	data   []byte
}

// ngWriter writes a pcapng file of one section: call addInterface for
// each interface, then writePacket, then flush.
type ngWriter struct {
	w      *bufio.Writer
	order  byteOrder // little-endian; tests write big-endian too
	ifaces int
	buf    []byte
}

// newNgWriter writes a section header with the section's non-empty
// options.
func newNgWriter(w io.Writer, s ngSection) (*ngWriter, error) {
	return newNgWriterOrder(w, s, binary.LittleEndian)
}

// byteOrder is binary.LittleEndian or binary.BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func newNgWriterOrder(w io.Writer, s ngSection, order byteOrder) (*ngWriter, error) {
	nw := &ngWriter{w: bufio.NewWriter(w), order: order}
	b := nw.begin(blockSHB)
	b = nw.order.AppendUint32(b, byteOrderMagic)
	b = nw.order.AppendUint16(b, 1) // version 1.0
	b = nw.order.AppendUint16(b, 0)
	b = nw.order.AppendUint64(b, ^uint64(0)) // section length: not said
	b, err := nw.appendOptions(b, []ngOption{
		{optUserAppl, []byte(s.application)},
		{optComment, []byte(s.comment)},
		{optHardware, []byte(s.hardware)},
		{optOS, []byte(s.os)},
	})
	if err != nil {
		return nil, fmt.Errorf("pcapng: section header: %w", err)
	}
	if err := nw.end(b); err != nil {
		return nil, fmt.Errorf("pcapng: section header: %w", err)
	}
	return nw, nil
}

type ngOption struct {
	code  uint16
	value []byte
}

// addInterface writes an interface description with nanosecond timestamps
// and returns the interface's index for writePacket.
func (nw *ngWriter) addInterface(ifc ngInterface) (int, error) {
	b := nw.begin(blockIDB)
	b = nw.order.AppendUint16(b, uint16(ifc.linkType))
	b = nw.order.AppendUint16(b, 0) // reserved
	b = nw.order.AppendUint32(b, ifc.snapLen)
	b, err := nw.appendOptions(b, []ngOption{
		{optIfName, []byte(ifc.name)},
		{optIfOS, []byte(ifc.os)},
		{optIfTsresol, []byte{nsTsresol}},
	})
	if err == nil {
		err = nw.end(b)
	}
	if err != nil {
		return 0, fmt.Errorf("pcapng: interface %q: %w", ifc.name, err)
	}
	nw.ifaces++
	return nw.ifaces - 1, nil
}

// writePacket writes an Enhanced Packet Block: data is what was captured
// of a packet of length bytes seen on interface iface at unixNs.
func (nw *ngWriter) writePacket(iface int, unixNs int64, length int, data []byte) error {
	switch {
	case iface < 0 || iface >= nw.ifaces:
		return fmt.Errorf("pcapng: packet on interface %d of %d", iface, nw.ifaces)
	case len(data) > length:
		return fmt.Errorf("pcapng: packet of %d bytes has %d captured", length, len(data))
	case uint64(length) > 1<<32-1 || len(data) > maxBlockLen-64:
		return fmt.Errorf("pcapng: packet of %d bytes (%d captured) is too long", length, len(data))
	}
	ts := uint64(unixNs)
	b := nw.begin(blockEPB)
	b = nw.order.AppendUint32(b, uint32(iface))
	b = nw.order.AppendUint32(b, uint32(ts>>32))
	b = nw.order.AppendUint32(b, uint32(ts))
	b = nw.order.AppendUint32(b, uint32(len(data)))
	b = nw.order.AppendUint32(b, uint32(length))
	b = append(b, data...)
	b = pad4(b)
	if err := nw.end(b); err != nil {
		return fmt.Errorf("pcapng: packet: %w", err)
	}
	return nil
}

// flush writes out what is buffered.
func (nw *ngWriter) flush() error {
	if err := nw.w.Flush(); err != nil {
		return fmt.Errorf("pcapng: %w", err)
	}
	return nil
}

// begin starts a block in nw.buf: its type and a place for its length.
func (nw *ngWriter) begin(typ uint32) []byte {
	b := nw.order.AppendUint32(nw.buf[:0], typ)
	return nw.order.AppendUint32(b, 0)
}

// end fills in the block's length, appends the trailing copy and writes
// the block.
func (nw *ngWriter) end(b []byte) error {
	n := len(b) + 4
	if n%4 != 0 || n > maxBlockLen {
		return fmt.Errorf("block of %d bytes", n)
	}
	nw.order.PutUint32(b[4:8], uint32(n))
	b = nw.order.AppendUint32(b, uint32(n))
	nw.buf = b
	_, err := nw.w.Write(b)
	return err
}

// appendOptions appends the options with a value, each padded to 4 bytes,
// and the end of options if there was any.
func (nw *ngWriter) appendOptions(b []byte, opts []ngOption) ([]byte, error) {
	wrote := false
	for _, o := range opts {
		if len(o.value) == 0 {
			continue
		}
		if len(o.value) > 0xFFFF {
			return nil, fmt.Errorf("option %d: %d bytes, more than an option holds", o.code, len(o.value))
		}
		b = nw.order.AppendUint16(b, o.code)
		b = nw.order.AppendUint16(b, uint16(len(o.value)))
		b = pad4(append(b, o.value...))
		wrote = true
	}
	if wrote {
		b = nw.order.AppendUint16(b, optEnd)
		b = nw.order.AppendUint16(b, 0)
	}
	return b, nil
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// ngReader reads the packets of a pcapng file, section after section.
type ngReader struct {
	r     *bufio.Reader
	order binary.ByteOrder
	off   int64 // the file offset of the next block
	// section and ifaces describe the current section; sections counts
	// the section headers read.
	section  ngSection
	sections int
	ifaces   []ngInterface
	buf      []byte
}

// errNotSection is the error of a file that does not begin with a section
// header.
var errNotSection = errors.New("no section header block")

// newNgReader reads the first section header.
func newNgReader(r io.Reader) (*ngReader, error) {
	nr := &ngReader{r: bufio.NewReader(r), order: binary.LittleEndian}
	_, body, err := nr.readBlock()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("pcapng: empty file: %w", errNotSection)
	}
	if err != nil {
		return nil, err
	}
	if err := nr.readSection(body); err != nil {
		return nil, fmt.Errorf("pcapng: block at byte 0: %w", err)
	}
	return nr, nil
}

// next returns the next packet, reading the section headers and interface
// descriptions on the way. At the end of the file it returns io.EOF.
func (nr *ngReader) next() (ngPacket, error) {
	for {
		at := nr.off
		typ, body, err := nr.readBlock()
		if err != nil {
			return ngPacket{}, err
		}
		switch typ {
		case blockSHB:
			err = nr.readSection(body)
		case blockIDB:
			err = nr.readInterface(body)
		case blockEPB:
			var p ngPacket
			if p, err = nr.readPacket(body); err == nil {
				return p, nil
			}
		}
		if err != nil {
			return ngPacket{}, fmt.Errorf("pcapng: block at byte %d (type %#x): %w", at, typ, err)
		}
	}
}

// readBlock reads one block whole and returns its type and body (the bytes
// between the leading and trailing lengths). A section header sets the
// byte order, from its magic, before its length is read. The body is
// valid until the next call. It returns io.EOF at the end of the file
// only when no byte of a block was read.
func (nr *ngReader) readBlock() (uint32, []byte, error) {
	at := nr.off
	var head [12]byte
	n, err := io.ReadFull(nr.r, head[:8])
	nr.off += int64(n)
	if errors.Is(err, io.EOF) {
		return 0, nil, io.EOF
	}
	if err != nil {
		return 0, nil, fmt.Errorf("pcapng: block at byte %d: header: %w", at, err)
	}
	typ := nr.order.Uint32(head[0:4])
	if nr.sections == 0 && typ != blockSHB {
		return 0, nil, fmt.Errorf("pcapng: first block of type %#x: %w", typ, errNotSection)
	}
	minLen := uint32(12)
	if typ == blockSHB {
		n, err := io.ReadFull(nr.r, head[8:12])
		nr.off += int64(n)
		if err != nil {
			return 0, nil, fmt.Errorf("pcapng: section header at byte %d: %w", at, noEOF(err))
		}
		switch byteOrderMagic {
		case binary.LittleEndian.Uint32(head[8:12]):
			nr.order = binary.LittleEndian
		case binary.BigEndian.Uint32(head[8:12]):
			nr.order = binary.BigEndian
		default:
			return 0, nil, fmt.Errorf("pcapng: section header at byte %d: byte-order magic %#x: %w", at, head[8:12], errNotSection)
		}
		minLen = 28
	}
	total := nr.order.Uint32(head[4:8])
	if total < minLen || total%4 != 0 || total > maxBlockLen {
		return 0, nil, fmt.Errorf("pcapng: block at byte %d (type %#x): length %d", at, typ, total)
	}
	b := append(nr.buf[:0], head[:8]...)
	if typ == blockSHB {
		b = append(b, head[8:12]...)
	}
	// In pieces, so that a corrupt length costs no more memory than the
	// file has bytes.
	for len(b) < int(total) {
		piece := min(int(total)-len(b), 64<<10)
		b = slices.Grow(b, piece)
		n, err := io.ReadFull(nr.r, b[len(b):len(b)+piece])
		nr.off += int64(n)
		b = b[:len(b)+n]
		if err != nil {
			return 0, nil, fmt.Errorf("pcapng: block at byte %d (type %#x, %d bytes): %w", at, typ, total, noEOF(err))
		}
	}
	nr.buf = b
	if trail := nr.order.Uint32(b[total-4:]); trail != total {
		return 0, nil, fmt.Errorf("pcapng: block at byte %d (type %#x): length %d, trailing length %d", at, typ, total, trail)
	}
	return typ, b[8 : total-4], nil
}

// noEOF turns an end of file inside a block into an unexpected one.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readSection starts a section: its interfaces are new.
func (nr *ngReader) readSection(body []byte) error {
	// body: byte-order magic (4), major (2), minor (2), section length (8)
	if len(body) < 16 {
		return fmt.Errorf("section header of %d bytes", len(body))
	}
	if major, minor := nr.order.Uint16(body[4:6]), nr.order.Uint16(body[6:8]); major != 1 {
		return fmt.Errorf("pcapng version %d.%d, not 1", major, minor)
	}
	var s ngSection
	err := nr.options(body[16:], func(code uint16, v []byte) error {
		switch code {
		case optComment:
			s.comment = string(v)
		case optHardware:
			s.hardware = string(v)
		case optOS:
			s.os = string(v)
		case optUserAppl:
			s.application = string(v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("section header: %w", err)
	}
	nr.section, nr.ifaces = s, nil
	nr.sections++
	return nil
}

// readInterface adds an interface to the section.
func (nr *ngReader) readInterface(body []byte) error {
	// body: link type (2), reserved (2), snap length (4)
	if len(body) < 8 {
		return fmt.Errorf("interface description of %d bytes", len(body))
	}
	ifc := ngInterface{
		linkType:    linkType(nr.order.Uint16(body[0:2])),
		snapLen:     nr.order.Uint32(body[4:8]),
		unitsPerSec: 1e6,
	}
	err := nr.options(body[8:], func(code uint16, v []byte) error {
		switch code {
		case optIfName:
			ifc.name = string(v)
		case optIfOS:
			ifc.os = string(v)
		case optIfTsresol:
			if len(v) < 1 {
				return errors.New("empty if_tsresol")
			}
			exp := uint64(v[0] & 0x7F)
			if v[0]&0x80 != 0 { // 2⁻ᵉ s
				if exp > 63 {
					return fmt.Errorf("if_tsresol 2^-%d", exp)
				}
				ifc.unitsPerSec = 1 << exp
				return nil
			}
			if exp > 19 { // 10¹⁹ is the last power of ten in a uint64
				return fmt.Errorf("if_tsresol 10^-%d", exp)
			}
			ifc.unitsPerSec = 1
			for range exp {
				ifc.unitsPerSec *= 10
			}
		case optIfTsoffset:
			if len(v) < 8 {
				return fmt.Errorf("if_tsoffset of %d bytes", len(v))
			}
			ifc.offsetSec = int64(nr.order.Uint64(v))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("interface description %d: %w", len(nr.ifaces), err)
	}
	nr.ifaces = append(nr.ifaces, ifc)
	return nil
}

// readPacket reads an Enhanced Packet Block; its options are ignored.
func (nr *ngReader) readPacket(body []byte) (ngPacket, error) {
	// body: interface (4), timestamp high (4) and low (4), captured
	// length (4), original length (4), data padded to 4, options
	if len(body) < 20 {
		return ngPacket{}, fmt.Errorf("enhanced packet block of %d bytes", len(body))
	}
	id := nr.order.Uint32(body[0:4])
	if uint64(id) >= uint64(len(nr.ifaces)) {
		return ngPacket{}, fmt.Errorf("packet on interface %d, of %d described", id, len(nr.ifaces))
	}
	ts := uint64(nr.order.Uint32(body[4:8]))<<32 | uint64(nr.order.Uint32(body[8:12]))
	captured := nr.order.Uint32(body[12:16])
	if uint64(captured) > uint64(len(body)-20) {
		return ngPacket{}, fmt.Errorf("%d bytes captured in a block of %d", captured, len(body)+12)
	}
	data := make([]byte, captured) // the body is the reader's buffer
	copy(data, body[20:])
	return ngPacket{
		iface:  int(id),
		unixNs: nr.ifaces[id].unixNs(ts),
		length: int(nr.order.Uint32(body[16:20])),
		data:   data,
	}, nil
}

// options calls fn with each option of a block, up to the end of options
// or of the block.
func (nr *ngReader) options(b []byte, fn func(code uint16, value []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%d bytes left for an option", len(b))
		}
		code, n := nr.order.Uint16(b[0:2]), int(nr.order.Uint16(b[2:4]))
		if code == optEnd {
			return nil
		}
		padded := (n + 3) &^ 3
		if padded > len(b)-4 {
			return fmt.Errorf("option %d of %d bytes, %d left", code, n, len(b)-4)
		}
		if err := fn(code, b[4:4+n]); err != nil {
			return err
		}
		b = b[4+padded:]
	}
	return nil
}
