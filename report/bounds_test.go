package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/spec"
)

// allocated runs fn and returns how many bytes it allocated and how long
// it took.
func allocated(fn func()) (uint64, time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, took
}

// A report or budgets file of a gigabyte is refused by its size, in one
// sentence, without being read.
func TestHugeFilesAreRefusedUnread(t *testing.T) {
	for _, tc := range []struct {
		name string
		read func(path string) error
		want string
	}{
		{"report", func(p string) error { _, err := Read(p); return err }, "more than the 64 MiB that a halfopen report may be"},
		{"budgets", func(p string) error { _, err := ReadBudgets(p); return err }, "more than the 1 MiB that a budgets file may be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "huge")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			// Sparse: a gigabyte that costs no disk.
			if err := f.Truncate(1 << 30); err != nil {
				t.Fatal(err)
			}
			f.Close()
			var rerr error
			bytes, took := allocated(func() { rerr = tc.read(p) })
			wantInputError(t, rerr, "huge", "1.0 GiB", tc.want)
			if bytes > 1<<20 || took > time.Second {
				t.Errorf("refusing a 1 GiB file allocated %d bytes and took %v", bytes, took)
			}
		})
	}
}

// A stream without a size (a pipe) is cut at the limit.
func TestReportStreamIsCutAtTheLimit(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	var err error
	bytes, took := allocated(func() { _, err = Read("/dev/zero") })
	wantInputError(t, err, "/dev/zero", "is over 64.0 MiB")
	if bytes > 3*MaxReportBytes || took > 10*time.Second {
		t.Errorf("reading an endless stream allocated %d bytes and took %v", bytes, took)
	}
}

// A spec of a megabyte, in a report or a budgets file, is refused in one
// short sentence that does not repeat it.
func TestMegabyteSpecIsOneShortSentence(t *testing.T) {
	huge := "keepalive-tuned:idle=" + strings.Repeat("1", 1<<20) + "s"
	r := testdataReport(t)
	r.Cells[0].Detector = huge
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	budgets := []byte("budgets:\n  - detector: " + huge + "\n    fault: blackhole\n    p95: 1s\n")
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"report", func() error { _, err := Parse("r.json", data); return err }},
		{"budgets", func() error { _, err := ParseBudgets("b.yaml", budgets); return err }},
		{"spec", func() error { _, err := spec.Parse(huge); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			_, took := allocated(func() { err = tc.err() })
			if err == nil {
				t.Fatal("a megabyte spec was accepted")
			}
			msg := err.Error()
			if len(msg) > 300 || strings.Contains(msg, "\n") || !strings.Contains(msg, "is longer than the 4096 a detector or fault spec may have") {
				t.Errorf("the error is not one short sentence (%d bytes): %.400s", len(msg), msg)
			}
			if took > 2*time.Second {
				t.Errorf("refusing it took %v", took)
			}
		})
	}
	if _, err := spec.Parse("x:k=" + strings.Repeat("v", spec.MaxLen-4)); err != nil {
		t.Errorf("a spec of exactly %d bytes is refused: %v", spec.MaxLen, err)
	}
}

// tenThousandCells is a report of n cells shaped like the testdata's.
func manyCells(t *testing.T, n int) *Report {
	t.Helper()
	r := testdataReport(t)
	tmpl := r.Cells[0]
	r.Cells = make([]Cell, n)
	r.Frontier = nil
	for i := range r.Cells {
		c := cloneCell(&tmpl)
		c.Fault = fmt.Sprintf("router-restart:outage=%dms", i+1)
		r.Cells[i] = c
	}
	return r
}

// Ten thousand cells are read, merged and gated in bounded time and
// memory; an error in the last cell is found and named in one pass.
func TestTenThousandCells(t *testing.T) {
	const n = 10000
	r := manyCells(t, n)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a report of %d cells is %s", n, byteSize(int64(len(data))))
	budgets, err := ReadBudgets("testdata/budgets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var parsed *Report
	last := bytes.Index(data, []byte(`"router-restart:outage=10000ms"`))
	at := last + bytes.Index(data[last:], []byte(`"budget_s":`)) + len(`"budget_s":`)
	bad := append(append(append([]byte(nil), data[:at]...), `"twenty"`...), data[at+bytes.IndexAny(data[at:], ",}"):]...)
	if last < 0 || bytes.Equal(bad, data) {
		t.Fatal("the last cell's budget_s was not found to break")
	}
	for _, tc := range []struct {
		name     string
		run      func() error
		maxBytes uint64
	}{
		{"parse", func() (err error) { parsed, err = Parse("r.json", data); return err }, 40 * uint64(len(data))},
		{"merge", func() error {
			a, b := cloneReport(parsed), cloneReport(parsed)
			a.Cells, b.Cells = a.Cells[:n/2], b.Cells[n/2:]
			m, err := Merge(a, b)
			if err == nil && len(m.Cells) != n {
				err = fmt.Errorf("merged %d cells, want %d", len(m.Cells), n)
			}
			return err
		}, 40 * uint64(len(data))},
		{"budgets", func() error { CheckBudgets(parsed, budgets); return nil }, 40 * uint64(len(data))},
		{"error in the last cell", func() error {
			_, err := Parse("r.json", bad)
			if err == nil || !strings.Contains(err.Error(), "cells[9999]") {
				return fmt.Errorf("want an error naming cells[9999], got %v", err)
			}
			return nil
		}, 40 * uint64(len(data))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			bytes, took := allocated(func() { err = tc.run() })
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %v, %s allocated", tc.name, took.Round(time.Millisecond), byteSize(int64(bytes)))
			if took > 20*time.Second || bytes > tc.maxBytes {
				t.Errorf("%s of %d cells took %v and allocated %s", tc.name, n, took, byteSize(int64(bytes)))
			}
		})
	}
}
