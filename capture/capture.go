// Package capture records the packets of a lab host's interfaces, in pure
// Go over AF_PACKET (no tcpdump, no libpcap), keeps them in memory up to a
// size limit, writes them as pcapng (openable in Wireshark) and reads a
// pcapng back into a timeline of what crossed the wire: data, keepalive
// probes, retransmissions, SYN, FIN, RST and ICMP errors, each at its
// CLOCK_MONOTONIC instant, the clock the harness stamps faults and
// decisions with.
//
// A capture runs on the router, which sees both directions of the watched
// flow on both of its ports:
//
//	[peer] ==veth== to-peer [router] to-watcher ==veth== [watcher]
//	                   ^ capture ^
//
// A packet that the router forwards appears twice (in on one port, out on
// the other); one it drops (a blackhole) appears only on the port it came
// in by, which is how a timeline shows a drop.
//
//	router := lab.Host(topo.Router)
//	c, err := capture.Start(ctx, router, []string{topo.RouterPeerLink, topo.RouterWatchLink}, 1<<20)
//	... inject, wait for the decision ...
//	err = c.Stop()
//	err = c.WritePcapng("reports/pcap/sample-3.pcapng")
//	events, err := capture.ReadTimeline("reports/pcap/sample-3.pcapng")
package capture

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"

	"github.com/halfopen/halfopen/protocol"
	"golang.org/x/sys/unix"
)

// Namespace runs a function on an OS thread set into a network namespace
// (harness.Host does), so that the capture's sockets are made there.
type Namespace interface {
	Do(fn func() error) error
}

// SnapLength is how many bytes of each packet are kept: every header of a
// TCP/IPv4 segment over Ethernet with options (14 + 60 + 60) and the first
// bytes of its payload. Payloads are not evidence here; their length is.
const SnapLength = 192

// pcapngOverhead is the size of one packet's block in a pcapng file beyond
// its captured bytes (enhanced packet block header, trailer, padding).
const pcapngOverhead = 36

// Capture is a running or stopped capture of some interfaces of one host.
type Capture struct {
	limit int64

	mu      sync.Mutex
	packets []packet
	size    int64 // estimated pcapng size of the packets kept
	dropped int   // packets not kept: the limit was reached
	errs    []error

	ifaces []*iface
	wg     sync.WaitGroup
	once   sync.Once
	cancel context.CancelFunc
	// offsetNs is CLOCK_REALTIME − CLOCK_MONOTONIC at the start, the
	// constant the pcapng's timestamps are shifted by (see clockOffset).
	offsetNs int64
}

type iface struct {
	name     string
	index    int
	linkType linkType
	file     *os.File
}

type packet struct {
	monoNs int64 // CLOCK_MONOTONIC instant of the kernel's timestamp
	iface  int   // index into Capture.ifaces
	length int   // length on the wire
	data   []byte
}

// Start opens one AF_PACKET socket per interface inside host's namespace
// and records every packet they see, in both directions, until Stop or
// ctx's end. limitBytes bounds the pcapng file WritePcapng will write;
// packets past it are counted, not kept (each port's reader keeps what it
// reads while there is room, so near the limit the ports' last packets
// may differ by a few microseconds).
func Start(ctx context.Context, host Namespace, ifaces []string, limitBytes int64) (*Capture, error) {
	if len(ifaces) == 0 {
		return nil, errors.New("capture: no interface named")
	}
	if limitBytes <= 0 {
		return nil, fmt.Errorf("capture: limit %d bytes is not positive", limitBytes)
	}
	c := &Capture{limit: limitBytes, offsetNs: clockOffset()}
	c.size = headerSize(ifaces)
	err := host.Do(func() error {
		for _, name := range ifaces {
			ifc, err := openIface(name)
			if err != nil {
				return err
			}
			c.ifaces = append(c.ifaces, ifc)
		}
		return nil
	})
	if err != nil {
		for _, ifc := range c.ifaces {
			ifc.file.Close()
		}
		return nil, fmt.Errorf("capture: %w", err)
	}
	ctx, c.cancel = context.WithCancel(ctx)
	for i, ifc := range c.ifaces {
		c.wg.Add(1)
		go c.read(i, ifc)
	}
	go func() {
		<-ctx.Done()
		c.closeSockets()
	}()
	return c, nil
}

// openIface opens a non-blocking AF_PACKET socket bound to one interface
// of the calling thread's namespace, with kernel receive timestamps. The
// file is registered with Go's poller, so closing it ends a blocked read.
func openIface(name string) (*iface, error) {
	ni, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("interface %s: open AF_PACKET socket: %w", name, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ni.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("interface %s: bind: %w", name, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("interface %s: SO_TIMESTAMPNS: %w", name, err)
	}
	lt := linkEthernet
	if len(ni.HardwareAddr) == 0 {
		// A TUN device or similar: the socket delivers bare IP packets.
		lt = linkRaw
	}
	return &iface{name: name, index: ni.Index, linkType: lt, file: os.NewFile(uintptr(fd), "packet:"+name)}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read records the packets of one interface until its socket is closed.
func (c *Capture) read(idx int, ifc *iface) {
	defer c.wg.Done()
	rc, err := ifc.file.SyscallConn()
	if err != nil {
		c.fail(fmt.Errorf("interface %s: %w", ifc.name, err))
		return
	}
	buf := make([]byte, SnapLength)
	oob := make([]byte, unix.CmsgSpace(16))
	for {
		var n, oobn int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			// MSG_TRUNC makes a packet socket return the packet's full
			// length, even when only SnapLength bytes were copied.
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_TRUNC)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			switch rerr {
			case unix.EINTR:
				continue
			case unix.ENETDOWN, unix.ENXIO, unix.ENODEV:
				// The interface went down or away: a fault did that (a
				// crashed host's link is deleted), and what it carried
				// until then is the evidence.
				return
			}
			c.fail(fmt.Errorf("interface %s: recvmsg: %w", ifc.name, rerr))
			return
		}
		realNs, ok := kernelTimestamp(oob[:oobn])
		offset := clockOffset()
		if !ok {
			// No timestamp from the kernel: the read's own instant, later
			// than the packet by the scheduling delay.
			realNs = protocol.Now() + offset
		}
		kept := min(n, len(buf))
		p := packet{monoNs: realNs - offset, iface: idx, length: n, data: append([]byte(nil), buf[:kept]...)}
		c.mu.Lock()
		if cost := int64(kept + pcapngOverhead); c.size+cost <= c.limit {
			c.packets = append(c.packets, p)
			c.size += cost
		} else {
			c.dropped++
		}
		c.mu.Unlock()
	}
}

// kernelTimestamp returns the SO_TIMESTAMPNS control message's instant.
func kernelTimestamp(oob []byte) (int64, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return sec*1e9 + nsec, true
		}
	}
	return 0, false
}

// clockOffset returns CLOCK_REALTIME − CLOCK_MONOTONIC in nanoseconds.
//
// The kernel stamps a received packet with CLOCK_REALTIME (SO_TIMESTAMPNS
// is ktime_get_real); the harness stamps faults and decisions with
// CLOCK_MONOTONIC, which is the same in every namespace. A packet's
// monotonic instant is its timestamp minus the offset between the two
// clocks. The offset is read by bracketing one CLOCK_REALTIME read between
// two CLOCK_MONOTONIC reads and taking their midpoint; of three tries the
// tightest bracket wins, so its error is half a bracket (well under a
// microsecond on the vDSO). It is measured again for every packet, just
// after the packet is read, so a step or slew of the real-time clock (NTP)
// during a long capture shifts at most the packets read across it.
func clockOffset() int64 {
	best, bestWidth := int64(0), int64(-1)
	for range 3 {
		var r unix.Timespec
		m1 := protocol.Now()
		_ = unix.ClockGettime(unix.CLOCK_REALTIME, &r)
		m2 := protocol.Now()
		width := m2 - m1
		if bestWidth < 0 || width < bestWidth {
			best, bestWidth = r.Nano()-(m1+width/2), width
		}
	}
	return best
}

func (c *Capture) fail(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

func (c *Capture) closeSockets() {
	c.once.Do(func() {
		for _, ifc := range c.ifaces {
			ifc.file.Close()
		}
	})
}

// Stop ends the capture and waits for its readers. The packets stay in
// memory for WritePcapng. It returns the errors the readers met.
func (c *Capture) Stop() error {
	c.cancel()
	c.closeSockets()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs...)
}

// Packets returns how many packets were kept and how many were not, for
// the size limit.
func (c *Capture) Packets() (kept, dropped int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.packets), c.dropped
}

// headerSize estimates the pcapng bytes before the first packet.
func headerSize(ifaces []string) int64 {
	n := int64(256)
	for _, name := range ifaces {
		n += 64 + int64(len(name))
	}
	return n
}

// sectionComment is the pcapng section comment that carries the clock
// offset; ReadTimeline parses it back.
const sectionComment = "halfopen capture: timestamps are CLOCK_MONOTONIC + %d ns; %d packets kept, %d not kept over the %d-byte limit"

// WritePcapng writes the packets kept, in the order they were seen, as a
// pcapng file: one interface block per captured interface, timestamps in
// nanoseconds. A timestamp is the packet's CLOCK_MONOTONIC instant plus the
// real-time offset measured at the start, so Wireshark shows wall-clock
// times and the section comment says how to get the monotonic ones back.
func (c *Capture) WritePcapng(path string) (err error) {
	c.mu.Lock()
	packets := append([]packet(nil), c.packets...)
	dropped := c.dropped
	c.mu.Unlock()
	// Readers of different interfaces append concurrently.
	slices.SortStableFunc(packets, func(a, b packet) int { return cmp.Compare(a.monoNs, b.monoNs) })
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("capture: close %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	w, err := newNgWriter(f, ngSection{
		application: "halfopen",
		os:          "linux",
		comment:     fmt.Sprintf(sectionComment, c.offsetNs, len(packets), dropped, c.limit),
	})
	if err != nil {
		return fmt.Errorf("capture: write %s: %w", path, err)
	}
	for _, ifc := range c.ifaces {
		if _, err := w.addInterface(ngInterface{name: ifc.name, os: "linux", linkType: ifc.linkType, snapLen: SnapLength}); err != nil {
			return fmt.Errorf("capture: write %s: %w", path, err)
		}
	}
	for _, p := range packets {
		if err := w.writePacket(p.iface, p.monoNs+c.offsetNs, p.length, p.data); err != nil {
			return fmt.Errorf("capture: write %s: %w", path, err)
		}
	}
	if err := w.flush(); err != nil {
		return fmt.Errorf("capture: write %s: %w", path, err)
	}
	return nil
}
