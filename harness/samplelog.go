package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// logTailLines is how many of a sample's log lines the report keeps
// when the sample could not be measured or surprises.
const logTailLines = 12

// sampleMarks returns the watcher's marks at or after the fault at (a
// CLOCK_MONOTONIC instant), in seconds after it; marks before the fault
// are in the sample's log only.
func sampleMarks(w *Process, at int64) []report.Mark {
	if w == nil || at == 0 {
		return nil
	}
	var out []report.Mark
	for _, ev := range w.markEvents() {
		if ev.TNs >= at {
			out = append(out, report.Mark{Name: ev.Name, S: protocol.Seconds(ev.TNs - at)})
		}
	}
	return out
}

// sampleLog is a sample's log: every line its watcher and (foreign) peer
// logged, marked or printed on standard error, oldest first, each with its
// instant in seconds from origin (the fault, or the watcher's start).
func sampleLog(procs []*Process, origin int64) []string {
	type entry struct {
		line diagLine
		who  string
	}
	var all []entry
	var head []string
	for _, p := range procs {
		if p == nil {
			continue
		}
		lines, dropped := p.diagnostics()
		if dropped > 0 {
			head = append(head, fmt.Sprintf("(%s: %d older lines let go)", p.Label, dropped))
		}
		for _, l := range lines {
			all = append(all, entry{l, p.Label})
		}
	}
	// Stable by instant: each program's own order is kept.
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].line.TNs < all[j-1].line.TNs; j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	out := head
	for _, e := range all {
		out = append(out, fmt.Sprintf("%+.3fs %s %s: %s", protocol.Seconds(e.line.TNs-origin), e.who, e.line.Kind, e.line.Text))
	}
	return out
}

// keepLog records a sample's diagnostics: its marks, its log in dir
// (<dir>/<name>.log, linked from the sample relative to the report at
// reportPath; nothing is written when dir is "", there is nothing to
// keep, or the log is only halfopen's own agents' on a sample that does
// not surprise) and, when judge finds the sample unmeasured or surprising, the
// log's last lines in the sample itself. A sample whose error the log
// explains gets the last lines in its error too.
func keepLog(s *session, dir, reportPath, name string, judge func(report.Sample) string, smp *report.Sample) error {
	if s == nil {
		return nil
	}
	smp.Marks = sampleMarks(s.Watcher, smp.InjectedNs)
	procs := []*Process{s.Watcher}
	if !s.Builtin && s.Service == nil {
		procs = append(procs, s.Peer)
	}
	origin := smp.InjectedNs
	if origin == 0 {
		origin = s.WatcherStartNs
	}
	lines := sampleLog(procs, origin)
	if len(lines) == 0 {
		return nil
	}
	surprising := judge(*smp) != ""
	if surprising {
		smp.LogTail = lines[max(0, len(lines)-logTailLines):]
		if smp.Error != "" {
			smp.Error += "; its programs last said: " + strings.Join(lines[max(0, len(lines)-3):], " | ")
		}
	}
	if dir == "" || (s.Builtin && !surprising) {
		// halfopen's own agents' logs are kept only when they explain.
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	path := filepath.Join(dir, name+".log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("keep the sample's log: %w", err)
	}
	smp.Log = path
	if reportPath != "" {
		if rel, err := filepath.Rel(filepath.Dir(reportPath), path); err == nil {
			smp.Log = rel
		}
	}
	return nil
}

// logDir is where the matrix keeps its samples' logs: Options.LogDir, or
// logs/ beside the report ("" for a report kept in memory).
func (m *Matrix) logDir() string {
	if m.opt.LogDir != "" {
		return m.opt.LogDir
	}
	if p := m.store.Path(); p != "" {
		return filepath.Join(filepath.Dir(p), "logs")
	}
	return ""
}

// surprise is the one judge's word on a sample of the cell
// (report.Cell.Surprise): "" when it is what theory says.
func (c *Cell) surprise(s report.Sample) string {
	h := c.header()
	return h.Surprise(s)
}
