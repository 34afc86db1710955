package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
)

// TestStderrLines: standard error written in arbitrary pieces becomes one
// diagnostic line per line, an unended line is shown as it is, and the
// 4 KiB tail for error messages is kept as before.
func TestStderrLines(t *testing.T) {
	p := &Process{Label: "watcher"}
	w := stderrWriter{p}
	for _, piece := range []string{"first li", "ne\nsecond\r\n", "thi", "rd\nunended"} {
		if _, err := w.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
	}
	lines, dropped := p.diagnostics()
	var got []string
	for _, l := range lines {
		got = append(got, l.Kind+":"+l.Text)
	}
	want := "stderr:first line|stderr:second|stderr:third|stderr:unended"
	if strings.Join(got, "|") != want || dropped != 0 {
		t.Errorf("diagnostics = %q (%d dropped), want %q", got, dropped, want)
	}
	if p.Stderr() != "first line\nsecond\r\nthird\nunended" {
		t.Errorf("stderr tail = %q", p.Stderr())
	}
}

// TestDiagnosticsBounded: a process that prints without end keeps its
// last lines only, and says how many it let go.
func TestDiagnosticsBounded(t *testing.T) {
	p := &Process{Label: "watcher"}
	p.mu.Lock()
	for i := range 3 * maxDiagLines {
		p.addDiag(int64(i+1), "log", strings.Repeat("x", 3*maxDiagText))
	}
	p.mu.Unlock()
	lines, dropped := p.diagnostics()
	if len(lines) > maxDiagLines || dropped+len(lines) != 3*maxDiagLines || lines[len(lines)-1].TNs != 3*maxDiagLines {
		t.Errorf("kept %d lines, dropped %d, last at %d", len(lines), dropped, lines[len(lines)-1].TNs)
	}
	if n := len(lines[0].Text); n > maxDiagText+len("…") {
		t.Errorf("a line of %d bytes was kept whole (%d)", 3*maxDiagText, n)
	}
}

// TestKeepLog: a foreign watcher's and peer's diagnostics make one log,
// ordered by instant in seconds from the fault, linked relative to the
// report; marks before the fault stay in the log only; the tail goes into
// the sample (and its error) only when the judge finds it surprising.
func TestKeepLog(t *testing.T) {
	const s = int64(1e9)
	watcher, peer := &Process{Label: "watcher"}, &Process{Label: "peer role"}
	watcher.diag = []diagLine{{TNs: 9 * s, Kind: "log", Text: "connected"}, {TNs: 10*s + s/2, Kind: "mark", Text: "redial"}, {TNs: 12 * s, Kind: "stderr", Text: "panic: oops"}}
	watcher.marks = []protocol.Event{{Event: protocol.EventMark, Name: "warm", TNs: 9 * s}, {Event: protocol.EventMark, Name: "redial", TNs: 10*s + s/2}}
	peer.diag = []diagLine{{TNs: 11 * s, Kind: "log", Text: "serving"}}
	sess := &session{Watcher: watcher, Peer: peer, WatcherStartNs: 8 * s}
	tests := []struct {
		name     string
		surprise string
		errText  string
		wantTail bool
	}{
		{name: "as theory says", surprise: ""},
		{name: "surprising", surprise: "outside its prediction", wantTail: true},
		{name: "an error", surprise: "could not be measured", errText: "peer never said connected", wantTail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			smp := report.Sample{InjectedNs: 10 * s, Error: tt.errText}
			judge := func(report.Sample) string { return tt.surprise }
			if err := keepLog(sess, filepath.Join(dir, "logs"), filepath.Join(dir, "report.json"), "blackhole-x-1", judge, &smp); err != nil {
				t.Fatal(err)
			}
			if len(smp.Marks) != 1 || smp.Marks[0] != (report.Mark{Name: "redial", S: 0.5}) {
				t.Errorf("marks = %+v, want redial at 0.5 s only", smp.Marks)
			}
			if smp.Log != "logs/blackhole-x-1.log" {
				t.Fatalf("log = %q", smp.Log)
			}
			b, err := os.ReadFile(filepath.Join(dir, smp.Log))
			if err != nil {
				t.Fatal(err)
			}
			want := "-1.000s watcher log: connected\n+0.500s watcher mark: redial\n+1.000s peer role log: serving\n+2.000s watcher stderr: panic: oops\n"
			if string(b) != want {
				t.Errorf("log file:\n%s\nwant:\n%s", b, want)
			}
			if (len(smp.LogTail) == 4) != tt.wantTail || (len(smp.LogTail) != 0) != tt.wantTail {
				t.Errorf("log tail %q, want one: %v", smp.LogTail, tt.wantTail)
			}
			if tt.errText != "" && !strings.Contains(smp.Error, "its programs last said: ") || tt.errText != "" && !strings.Contains(smp.Error, "panic: oops") {
				t.Errorf("error %q does not end with the log's last lines", smp.Error)
			}
		})
	}
}
