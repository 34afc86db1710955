package capture

import "testing"

// TestFlowAt reads the last data each way and the bytes unacknowledged of
// one flow, from one port's packets before an instant.
func TestFlowAt(t *testing.T) {
	const w, p, port = "198.18.2.2:40000", "198.18.1.2:7000", "to-watcher"
	events := []Event{
		{Ns: 10, Iface: port, Src: p, Dst: w, Flags: "PA", Seq: 100, Ack: 500, Len: 40, Kind: KindData},
		{Ns: 11, Iface: port, Src: w, Dst: p, Flags: "A", Seq: 500, Ack: 140, Kind: KindAck},
		{Ns: 11, Iface: "to-peer", Src: w, Dst: p, Flags: "PA", Seq: 900, Ack: 140, Len: 7, Kind: KindData},
		{Ns: 20, Iface: port, Src: w, Dst: p, Flags: "PA", Seq: 500, Ack: 140, Len: 43, Kind: KindData},
		{Ns: 30, Iface: port, Src: p, Dst: w, Flags: "A", Seq: 140, Ack: 543, Kind: KindAck},
		{Ns: 40, Iface: port, Src: "198.18.1.2:7001", Dst: w, Flags: "PA", Seq: 1, Ack: 1, Len: 5, Kind: KindData},
	}
	for _, tc := range []struct {
		name string
		at   int64
		want FlowState
	}{
		{"before any packet", 5, FlowState{}},
		{"request unacknowledged", 25, FlowState{Seen: true, LastSentNs: 20, LastRecvNs: 10, Unacked: 43}},
		{"request acknowledged; another flow ignored", 50, FlowState{Seen: true, LastSentNs: 20, LastRecvNs: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FlowAt(events, port, w, p, tc.at); got != tc.want {
				t.Errorf("FlowAt(%d) = %+v, want %+v", tc.at, got, tc.want)
			}
		})
	}
}
