package report

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestWriterCreateWritesAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faults.json")
	w, err := Create(path, &Report{Profile: "quick", Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Read(path)
	if err != nil {
		t.Fatalf("after Create: %v", err)
	}
	if r.Schema != SchemaV1 || r.Complete || r.Seed != 7 || r.Cells == nil {
		t.Errorf("after Create: schema %q complete %v seed %d cells %v", r.Schema, r.Complete, r.Seed, r.Cells)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if r, _ = Read(path); !r.Complete {
		t.Error("after Close: complete is false")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.Update(func(*Report) {}); err == nil {
		t.Error("Update after Close succeeded")
	}
}

// TestWriterKilledRunLeavesValidReport stops writing without Close, as a
// killed run does, and reads what is on disk after every sample.
func TestWriterKilledRunLeavesValidReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faults.json")
	w, err := Create(path, &Report{Profile: "quick"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		err := w.Update(func(r *Report) {
			c := r.Cell("keepalive-tuned:idle=1s,intvl=1s,cnt=3", "peer-cable-pull", "client", KindDetection)
			c.Samples = append(c.Samples, detected(3+float64(i)/10))
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Read(path)
		if err != nil {
			t.Fatalf("after sample %d: %v", i, err)
		}
		if r.Complete || len(r.Cells) != 1 || len(r.Cells[0].Samples) != i+1 {
			t.Fatalf("after sample %d: complete %v, %d cells", i, r.Complete, len(r.Cells))
		}
	}
}

func TestWriterConcurrentUpdates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "faults.json")
	w, err := Create(path, &Report{})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 16, 8
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := w.Update(func(r *Report) {
					c := r.Cell(fmt.Sprintf("heartbeat-inband:interval=%dms", 100*(g%2+1)), "host-crash", "server", KindDetection)
					c.Samples = append(c.Samples, detected(float64(i)))
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if snap := w.Snapshot(); len(snap.Cells) != 2 {
		t.Errorf("snapshot has %d cells, want 2", len(snap.Cells))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range r.Cells {
		total += len(c.Samples)
	}
	if len(r.Cells) != 2 || total != goroutines*each || !r.Complete {
		t.Errorf("got %d cells, %d samples, complete %v; want 2, %d, true", len(r.Cells), total, r.Complete, goroutines*each)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the report (temporary files left behind?)", len(entries))
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o644 {
		t.Errorf("report mode %v, want 0644", info.Mode().Perm())
	}
}

func TestWriterSnapshotIsACopy(t *testing.T) {
	w, err := Create(filepath.Join(t.TempDir(), "r.json"), &Report{})
	if err != nil {
		t.Fatal(err)
	}
	w.Update(func(r *Report) {
		c := r.Cell("read-eof", "graceful-close", "server", KindDetection)
		c.Samples = append(c.Samples, detected(0.001))
	})
	snap := w.Snapshot()
	*snap.Cells[0].Samples[0].Seconds = 99
	if got := *w.Snapshot().Cells[0].Samples[0].Seconds; got != 0.001 {
		t.Errorf("changing a snapshot changed the report: %v", got)
	}
}

func TestCreateFails(t *testing.T) {
	if _, err := Create(filepath.Join(t.TempDir(), "missing", "r.json"), &Report{}); err == nil {
		t.Error("Create in a missing directory succeeded")
	}
	if _, err := Create(filepath.Join(t.TempDir(), "r.json"), nil); err == nil {
		t.Error("Create with a nil report succeeded")
	}
}

func TestReportCell(t *testing.T) {
	r := &Report{}
	a := r.Cell("keepalive-tuned:idle=1s,intvl=1s,cnt=3", "router-restart:outage=2s", "client", KindDisturbance)
	a.FalsePositives = 1
	tests := []struct {
		detector, fault, side string
		kind                  Kind
		wantNew               bool
	}{
		{"keepalive-tuned:cnt=3,idle=1s,intvl=1s", "router-restart:outage=2s", "client", KindDisturbance, false},
		{"keepalive-tuned:cnt=3,idle=1000ms,intvl=1s", "router-restart:outage=2000ms", "client", KindDisturbance, false},
		{"keepalive-tuned:cnt=3,idle=1s,intvl=1s", "router-restart:outage=2s", "server", KindDisturbance, true},
		{"keepalive-tuned:cnt=3,idle=1s,intvl=1s", "router-restart:outage=2s", "client", KindDetection, true},
		{"keepalive-tuned:cnt=4,idle=1s,intvl=1s", "router-restart:outage=2s", "client", KindDisturbance, true},
	}
	for _, tt := range tests {
		before := len(r.Cells)
		c := r.Cell(tt.detector, tt.fault, tt.side, tt.kind)
		if gotNew := len(r.Cells) > before; gotNew != tt.wantNew {
			t.Errorf("Cell(%s, %s, %s, %s) appended = %v, want %v", tt.detector, tt.fault, tt.side, tt.kind, gotNew, tt.wantNew)
		}
		if !tt.wantNew && c.FalsePositives != 1 {
			t.Errorf("Cell(%s, ...) returned a different cell", tt.detector)
		}
		if tt.wantNew && c.Samples == nil {
			t.Errorf("new cell has nil samples")
		}
	}
}
