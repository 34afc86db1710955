package harness

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/internal/topo"
	"github.com/halfopen/halfopen/protocol"
)

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A foreign program that floods its output costs the orchestrator bounded
// memory and time, and its sample one sentence.
func TestFloodingProgramIsBounded(t *testing.T) {
	_, lab := newTestLab(t)
	for _, tc := range []struct {
		name   string
		script string
		// wantErr is what waiting for connected says; empty: it arrives.
		wantErr string
		check   func(t *testing.T, p *Process)
	}{
		{
			name:   "logs, then connected",
			script: `yes '{"event":"log","t_ns":1,"msg":"flooding the orchestrator"}' | head -n 300000; echo '{"event":"connected","t_ns":2}'; exec sleep 100`,
			check: func(t *testing.T, p *Process) {
				if p.DroppedLogs() == 0 {
					t.Error("no log line was dropped: the flood did not fill the queue, so this case proves nothing")
				}
			},
		},
		{
			name:    "one endless line",
			script:  `tr '\0' a </dev/zero`,
			wantErr: "longer than 1048576 bytes, and was killed",
		},
		{
			name:    "endless garbage",
			script:  `yes 'this is not protocol v1'`,
			wantErr: "context deadline exceeded",
			check: func(t *testing.T, p *Process) {
				if err := p.ProtocolErr(); err == nil || !strings.Contains(err.Error(), "is not a JSON object") {
					t.Errorf("protocol error = %v, want the first garbage line named", err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := heapInUse()
			p, err := lab.Host(topo.Watcher).Start(ProcSpec{Path: "/bin/sh", Args: []string{"-c", tc.script}, Strict: true, Label: "flooder"})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Kill()
			// The orchestrator is busy elsewhere while the program floods.
			time.Sleep(time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err = p.WaitEvent(ctx, protocol.EventConnected)
			took := time.Since(start)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("waiting for connected: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("waiting for connected: %v, want an error saying %q", err, tc.wantErr)
			case err != nil && strings.Count(err.Error(), "\n") > 0:
				t.Errorf("the error is not one sentence: %q", err)
			}
			if took > 6*time.Second {
				t.Errorf("waiting took %v", took)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
			if grew := int64(heapInUse()) - int64(before); grew > 32<<20 {
				t.Errorf("the orchestrator's heap grew by %d MiB", grew>>20)
			}
			if err := p.Kill(); err != nil {
				t.Error(err)
			}
		})
	}
}
