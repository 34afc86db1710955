package scale

import (
	"container/heap"
	"slices"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
)

func TestTimerHeapFiresInOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   []int64
	}{
		{"empty", nil},
		{"one", []int64{5}},
		{"reversed", []int64{9, 7, 5, 3, 1}},
		{"ties and shuffle", []int64{4, 1, 4, 2, 9, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h timerHeap
			for i, at := range tc.at {
				heap.Push(&h, timer{at: at, fd: int32(i)})
			}
			var got []int64
			for h.Len() > 0 {
				got = append(got, heap.Pop(&h).(timer).at)
			}
			want := slices.Clone(tc.at)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("fired at %v, want %v", got, want)
			}
		})
	}
}

// TestEpollDetectorFor checks that the epoll design runs each family with
// the parameters of its spec: which descriptors it reads, which socket
// options it sets, and which timers it arms at accept.
func TestEpollDetectorFor(t *testing.T) {
	for _, tc := range []struct {
		spec       string
		readable   bool
		sockopts   bool
		first      []timerKind
		firstAfter []time.Duration
		wantErr    bool
	}{
		{spec: "read-eof", readable: true},
		{spec: "keepalive-tuned:idle=2s,intvl=1s,cnt=4", readable: true, sockopts: true},
		{spec: "user-timeout:timeout=2s,every=500ms", readable: true, sockopts: true, first: []timerKind{timerWrite}, firstAfter: []time.Duration{500 * time.Millisecond}},
		{spec: "heartbeat-inband:interval=1s,misses=3", readable: true, first: []timerKind{timerPing, timerCheck}, firstAfter: []time.Duration{time.Second, 3 * time.Second}},
		{spec: "tcp-info:every=250ms", first: []timerKind{timerPoll}, firstAfter: []time.Duration{250 * time.Millisecond}},
		{spec: "select-recv", wantErr: true},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			det, _, err := harness.NewDetector(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			ed, err := epollDetectorFor(det)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("epollDetectorFor(%s) = nil error, want one naming the families it runs", tc.spec)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ed.readable != tc.readable || (ed.setsockopt != nil) != tc.sockopts {
				t.Errorf("readable=%v sockopts=%v, want %v %v", ed.readable, ed.setsockopt != nil, tc.readable, tc.sockopts)
			}
			var kinds []timerKind
			var after []time.Duration
			for _, tm := range ed.first {
				kinds = append(kinds, tm.kind)
				after = append(after, time.Duration(tm.at))
			}
			if !slices.Equal(kinds, tc.first) || !slices.Equal(after, tc.firstAfter) {
				t.Errorf("first timers %v after %v, want %v after %v", kinds, after, tc.first, tc.firstAfter)
			}
		})
	}
}
