package harness

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/capture"
	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/tcprules"
)

// TestCrossCheck: a state that the capture confirms gains "+capture"; one
// it contradicts keeps its source and says where in its note.
func TestCrossCheck(t *testing.T) {
	const ms = int64(1e6)
	f := flow{local: netip.MustParseAddrPort("198.18.2.2:40000"), remote: netip.MustParseAddrPort("198.18.1.2:7000")}
	events := []capture.Event{
		{Ns: 100 * ms, Iface: topo.RouterWatchLink, Src: "198.18.1.2:7000", Dst: "198.18.2.2:40000", Flags: "PA", Seq: 1, Ack: 1, Len: 40, Kind: capture.KindData},
		{Ns: 101 * ms, Iface: topo.RouterWatchLink, Src: "198.18.2.2:40000", Dst: "198.18.1.2:7000", Flags: "A", Seq: 1, Ack: 41, Kind: capture.KindAck},
	}
	at := 1100 * ms
	for _, tc := range []struct {
		name       string
		st         tcprules.ConnState
		wantSource string
		wantNote   string
	}{
		{"agrees", tcprules.ConnState{SinceDataRecvS: 1.002, SinceDataSentS: 5, Source: sourceTCPInfo}, "tcp_info+capture", ""},
		{"last data received differs", tcprules.ConnState{SinceDataRecvS: 0.5, Source: sourceTCPInfo}, "tcp_info", "last data received 1.000 s before the fault by the capture, 0.500 s by TCP_INFO"},
		{"in flight by TCP_INFO only", tcprules.ConnState{SinceDataRecvS: 1, Unacked: 1, Source: sourceTCPInfo}, "tcp_info", "0 bytes unacknowledged by the capture, 1 segments by TCP_INFO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			crossCheck(&st, events, f, at, at+ms)
			if st.Source != tc.wantSource || !strings.Contains(st.Note, tc.wantNote) || (tc.wantNote == "") != (st.Note == "") {
				t.Errorf("source %q note %q, want %q and a note with %q", st.Source, st.Note, tc.wantSource, tc.wantNote)
			}
		})
	}
}
