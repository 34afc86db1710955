package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
)

// Writer keeps a report on disk while a run measures it: every Update is
// persisted before it returns, atomically, so the file is always a valid
// report and a killed run leaves one with "complete": false.
// A Writer is safe for use by many goroutines.
type Writer struct {
	mu     sync.Mutex
	path   string
	r      *Report
	closed bool
}

// Create writes r to path at once and returns a Writer that owns r from
// then on: change it only through Update. An empty Schema is set to
// SchemaV1, and Complete is set to false until Close.
func Create(path string, r *Report) (*Writer, error) {
	if r == nil {
		return nil, errors.New("report: Create with a nil report")
	}
	if r.Schema == "" {
		r.Schema = SchemaV1
	}
	r.Complete = false
	r.Environment.ToleranceS = PredictionTolerance.Seconds()
	w := &Writer{path: path, r: r}
	if err := w.persist(); err != nil {
		return nil, err
	}
	return w, nil
}

// Memory returns a Writer that keeps r in memory only: the one store of a
// run that writes no file.
func Memory(r *Report) *Writer {
	if r.Schema == "" {
		r.Schema = SchemaV1
	}
	r.Environment.ToleranceS = PredictionTolerance.Seconds()
	return &Writer{r: r}
}

// CellOf returns a deep copy of the cell with this key, if there is one.
func (w *Writer) CellOf(key CellKey) (Cell, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.r.Cells {
		if w.r.Cells[i].Key() == key {
			return cloneCell(&w.r.Cells[i]), true
		}
	}
	return Cell{}, false
}

// Path returns the file the Writer writes ("" for Memory).
func (w *Writer) Path() string { return w.path }

// Update calls fn with the report under the Writer's lock, then persists
// the report atomically before returning. fn must not keep r or any
// pointer into it after it returns.
func (w *Writer) Update(fn func(r *Report)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("report %s: update after close", w.path)
	}
	fn(w.r)
	return w.persist()
}

// Snapshot returns a deep copy of the report as it is now, e.g. for a
// progress line.
func (w *Writer) Snapshot() *Report {
	w.mu.Lock()
	defer w.mu.Unlock()
	return cloneReport(w.r)
}

// Close marks the report complete and persists it. Later calls do nothing.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.r.Complete = true
	if err := w.persist(); err != nil {
		w.r.Complete = false
		return err
	}
	w.closed = true
	return nil
}

// Encode returns r as the indented JSON the Writer stores, with nil
// slices and maps written as empty ones.
func Encode(r *Report) ([]byte, error) {
	c := *r
	if c.Cells == nil {
		c.Cells = []Cell{}
	}
	cells := make([]Cell, len(c.Cells))
	copy(cells, c.Cells)
	for i := range cells {
		if cells[i].Samples == nil {
			cells[i].Samples = []Sample{}
		}
	}
	c.Cells = cells
	data, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// persist writes the report to a temporary file beside the target, syncs
// it, renames it over the target and syncs the directory, so that a crash
// leaves either the old or the new file, never a torn one.
func (w *Writer) persist() error {
	if w.path == "" {
		return nil
	}
	data, err := Encode(w.r)
	if err != nil {
		return fmt.Errorf("report %s: encode: %w", w.path, err)
	}
	if err := writeFileAtomic(w.path, data); err != nil {
		return fmt.Errorf("report %s: %w", w.path, err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Cell returns the cell with this detector, fault, side and kind,
// appending an empty one if there is none. Cells are matched by CellKey.
// The pointer is valid until the next append to r.Cells, so use it inside
// one Writer.Update.
func (r *Report) Cell(detector, fault, side string, kind Kind) *Cell {
	key := KeyOf(detector, fault, side, kind)
	for i := range r.Cells {
		if r.Cells[i].Key() == key {
			return &r.Cells[i]
		}
	}
	r.Cells = append(r.Cells, Cell{
		Detector: detector,
		Fault:    fault,
		Side:     side,
		Kind:     kind,
		Samples:  []Sample{},
	})
	return &r.Cells[len(r.Cells)-1]
}

// cloneReport returns a deep copy of r.
func cloneReport(r *Report) *Report {
	c := *r
	c.Environment = cloneEnvironment(r.Environment)
	if r.Cells != nil {
		c.Cells = make([]Cell, len(r.Cells))
		for i := range r.Cells {
			c.Cells[i] = cloneCell(&r.Cells[i])
		}
	}
	c.Frontier = append([]FrontierPoint(nil), r.Frontier...)
	return &c
}

func cloneEnvironment(e Environment) Environment {
	c := e
	if e.CalibrationErrorMs != nil {
		q := *e.CalibrationErrorMs
		c.CalibrationErrorMs = &q
	}
	c.Calibration = append([]CalibrationProbe(nil), e.Calibration...)
	if e.Tick != nil {
		t := *e.Tick
		c.Tick = &t
	}
	if e.Privilege != nil {
		p := *e.Privilege
		p.Degraded = append([]string(nil), e.Privilege.Degraded...)
		c.Privilege = &p
	}
	c.ProbeUnloadedMs, c.ProbeLoadedMs = cloneQuantiles(e.ProbeUnloadedMs), cloneQuantiles(e.ProbeLoadedMs)
	if e.PoolTicks != nil {
		c.PoolTicks = make(map[string]int, len(e.PoolTicks))
		for k, n := range e.PoolTicks {
			c.PoolTicks[k] = n
		}
	}
	if e.Sysctls != nil {
		c.Sysctls = make(map[string]string, len(e.Sysctls))
		for k, v := range e.Sysctls {
			c.Sysctls[k] = v
		}
	}
	return c
}

func cloneCell(x *Cell) Cell {
	c := *x
	if x.PredictedS != nil {
		p := *x.PredictedS
		c.PredictedS = &p
	}
	c.Reasons = append([]string(nil), x.Reasons...)
	if x.Samples != nil {
		c.Samples = make([]Sample, len(x.Samples))
		for i, s := range x.Samples {
			if s.Seconds != nil {
				v := *s.Seconds
				s.Seconds = &v
			}
			c.Samples[i] = s
		}
	}
	c.Mistakes = append([]Mistake(nil), x.Mistakes...)
	if x.QoS != nil {
		q := *x.QoS
		q.MistakeRecurS = cloneFloat(q.MistakeRecurS)
		q.MistakeDurationS = cloneFloat(q.MistakeDurationS)
		c.QoS = &q
	}
	if x.Scale != nil {
		sc := *x.Scale
		if sc.FreeMs != nil {
			q := *sc.FreeMs
			sc.FreeMs = &q
		}
		sc.Reasons = maps.Clone(sc.Reasons)
		c.Scale = &sc
	}
	if x.Overhead != nil {
		o := *x.Overhead
		c.Overhead = &o
	}
	if x.Sysctls != nil {
		c.Sysctls = make(map[string]map[string]string, len(x.Sysctls))
		for role, kv := range x.Sysctls {
			c.Sysctls[role] = maps.Clone(kv)
		}
	}
	return c
}

func cloneFloat(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
