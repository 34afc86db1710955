package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// exampleGate is the example gate file: the Python keepalive watcher
// against Python's HTTP server, run unmodified as the peer.
func exampleGate(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../examples/gates/example/halfopen-gate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lastLine is the last line a command printed on stderr: its verdict.
func lastLine(r result) string {
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	return lines[len(lines)-1]
}

// TestCheckGatesTheExample runs `halfopen check` on the example gate in
// real labs: every budget holds (exit 0), the four reports and the
// service's logs are written; then a copy whose blackhole budget is 1 s,
// which keepalive 1/1/3 cannot meet, exits 1 naming that budget.
func TestCheckGatesTheExample(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skip(err)
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	gate := exampleGate(t)
	dir := t.TempDir()
	r := halfopen(t, "check", gate, "--reports", dir, "--seed", "1", "--pool", "4")
	if r.code != 0 {
		t.Fatalf("check exited %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	noLeftovers(t, r.pid)
	if !strings.Contains(r.stdout, "gate: every budget holds (4 budget-cell checks)") {
		t.Errorf("stdout does not say every budget holds:\n%s", r.stdout)
	}
	for _, ext := range []string{"json", "md", "html", "xml"} {
		if fi, err := os.Stat(filepath.Join(dir, "gate."+ext)); err != nil || fi.Size() == 0 {
			t.Errorf("gate.%s: %v", ext, err)
		}
	}
	rep, err := report.Read(filepath.Join(dir, "gate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete || rep.Profile != "gate" || len(rep.Cells) != 4 {
		t.Errorf("report: complete %v, profile %q, %d cells, want a complete gate report of 4 cells", rep.Complete, rep.Profile, len(rep.Cells))
	}
	for _, c := range rep.Cells {
		if !strings.HasPrefix(c.Detector, "external:cmd=../../python/keepalive_watcher.py,") {
			t.Errorf("cell detector %q does not keep the watcher's cmd as written", c.Detector)
		}
		if len(c.Samples) != 3 {
			t.Errorf("%s: %d samples, want 3", c.Fault, len(c.Samples))
		}
		for i, s := range c.Samples {
			t.Logf("%s sample %d: %s", c.Fault, i, s.Summary())
			if s.Error != "" || c.Kind == report.KindDetection && !s.Detected {
				t.Errorf("%s sample %d: %s", c.Fault, i, s.Summary())
			}
		}
	}
	xml, _ := os.ReadFile(filepath.Join(dir, "gate.xml"))
	if !strings.Contains(string(xml), `failures="0"`) {
		t.Errorf("the JUnit report has failures:\n%s", xml)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*-http.log"))
	if len(logs) != 12 {
		t.Errorf("%d service logs in %s/logs, want one per sample (12): %v", len(logs), dir, logs)
	}

	// The same gate with a budget that cannot hold, from another directory:
	// the watcher's cmd is made absolute, the blackhole budget 1 s.
	src, err := os.ReadFile(gate)
	if err != nil {
		t.Fatal(err)
	}
	watcher, _ := filepath.Abs("../../examples/python/keepalive_watcher.py")
	tight := strings.Replace(string(src), "../../python/keepalive_watcher.py", watcher, 1)
	tight = strings.Replace(tight, "p95: 5s", "p95: 1s", 1)
	tightPath := filepath.Join(publicDir(t, "halfopen-gate-"), "tight-gate.yaml")
	if err := os.WriteFile(tightPath, []byte(tight), 0o644); err != nil {
		t.Fatal(err)
	}
	// Measured again, as shard 1 of 4 (the blackhole cell, one sample): only
	// the budgets of this shard's cells are gated, and the tight one breaks.
	dir2 := t.TempDir()
	r = halfopen(t, "check", tightPath, "--reports", dir2, "--shard", "1/4", "--samples", "1", "--seed", "2", "--pool", "4")
	noLeftovers(t, r.pid)
	if r.code != exitRegression {
		t.Fatalf("a broken budget: check exited %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	const broken = `1 budget broken: "keepalive notices a blackhole" (line 29)`
	if verdict := lastLine(r); !strings.HasSuffix(verdict, "tight-gate.yaml: "+broken) {
		t.Errorf("the verdict %q does not end %q", verdict, "tight-gate.yaml: "+broken)
	}
	if !strings.Contains(r.stdout, "keepalive notices a blackhole") || !strings.Contains(r.stdout, "p95") {
		t.Errorf("the gate table does not name the broken budget:\n%s", r.stdout)
	}
	xml, _ = os.ReadFile(filepath.Join(dir2, "gate-shard-1-of-4.xml"))
	if !strings.Contains(string(xml), "keepalive notices a blackhole") {
		t.Errorf("the shard's JUnit report does not name the broken budget:\n%s", xml)
	}

	// --from gates a report already measured (merged shards) with no lab
	// and no watcher program: the first run's report holds the example's
	// budgets, and breaks a tight copy's whose cmd is as written (the
	// cells' names), wherever that copy lies.
	merged := filepath.Join(dir, "merged.json")
	if r := halfopen(t, "merge", filepath.Join(dir, "gate.json"), "-o", merged); r.code != 0 {
		t.Fatalf("merge exited %d: %s", r.code, r.stderr)
	}
	dir3 := t.TempDir()
	if r := halfopen(t, "check", gate, "--from", merged, "--reports", dir3); r.code != 0 {
		t.Errorf("--from the run's own report: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, ext := range []string{"md", "html", "xml"} {
		if _, err := os.Stat(filepath.Join(dir3, "gate."+ext)); err != nil {
			t.Errorf("--from did not write gate.%s: %v", ext, err)
		}
	}
	asWritten := filepath.Join(t.TempDir(), "tight-as-written.yaml")
	if err := os.WriteFile(asWritten, []byte(strings.Replace(string(src), "p95: 5s", "p95: 1s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = halfopen(t, "check", asWritten, "--from", merged, "--reports", dir3)
	if r.code != exitRegression || !strings.HasSuffix(lastLine(r), broken) {
		t.Errorf("--from with a tight budget: exit %d, verdict %q, want 1 and %q", r.code, lastLine(r), broken)
	}
}

// TestCheckBadGateFileIsExit2NamingFileAndLine: bad gate files are refused
// before the machine is touched, in one sentence naming file and line.
func TestCheckBadGateFileIsExit2NamingFileAndLine(t *testing.T) {
	const good = `version: 1
services:
  http:
    cmd: [python3, -m, http.server, --bind, "{ip}", "{port}"]
watchers:
  ka:
    cmd: ./watcher.py
    peer: http
cells:
  - watchers: [ka]
    faults: [blackhole]
budgets:
  - watcher: ka
    fault: blackhole
    p95: 5s
`
	dir := publicDir(t, "halfopen-badgate-") // the watcher's program must be in reach of nobody
	watcher := filepath.Join(dir, "watcher.py")
	if err := os.WriteFile(watcher, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from, to string
		want           string
	}{
		{"unknown key", "    faults: [blackhole]", "    faults: [blackhole]\n    samles: 3", "gate.yaml line 12: cell 1 has the unknown key \"samles\""},
		{"bad duration", "    p95: 5s", "    p95: 5 seconds", `gate.yaml line 15: budget 1 p95 is "5 seconds", which is not a Go duration`},
		{"unknown fault", "[blackhole]", "[meteor]", `gate.yaml line 11: cell 1 faults: no fault is called "meteor"`},
		{"unknown watcher", "watchers: [ka]", "watchers: [kb]", `gate.yaml line 10: cell 1 watchers names "kb"`},
		{"missing program", "./watcher.py", "./no-such-watcher", `gate.yaml line 6: watcher ka: detector external: cmd "./no-such-watcher" cannot be found`},
		{"missing server", "[python3, -m", "[halfopen-no-such-server, -m", "gate.yaml line 6: watcher ka: detector external: service http needs halfopen-no-such-server, which cannot be found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(good, tc.from, tc.to, 1)
			p := filepath.Join(dir, "gate.yaml")
			if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			r := halfopen(t, "check", p, "--reports", filepath.Join(dir, "reports"))
			if r.code != exitBadInput {
				t.Errorf("exit code %d, want %d; stderr: %s", r.code, exitBadInput, r.stderr)
			}
			oneSentence(t, r, tc.want)
			noLeftovers(t, r.pid)
		})
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"check"}, "check needs exactly one GATEFILE"},
		{"missing file", []string{"check", "/nonexistent/halfopen-gate.yaml"}, "/nonexistent/halfopen-gate.yaml: cannot be read"},
		{"bad shard", []string{"check", exampleGate(t), "--shard", "5/4"}, `shard "5/4" is not i/n`},
		{"bad samples", []string{"check", exampleGate(t), "--samples", "0"}, "--samples 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := halfopen(t, tc.args...)
			if r.code != exitBadInput {
				t.Errorf("exit code %d, want %d; stderr: %s", r.code, exitBadInput, r.stderr)
			}
			oneSentence(t, r, tc.want)
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "reports")); err == nil {
		t.Error("a refused gate file left a reports directory")
	}
}

func TestCheckHelpShowsAnExample(t *testing.T) {
	r := halfopen(t, "check", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "halfopen check examples/gates/example/halfopen-gate.yaml") {
		t.Errorf("check --help: exit %d\n%s", r.code, r.stdout)
	}
}

// TestBudgetsCheckFailsOnAnUnmeasuredCell: a report with a cell whose
// samples could not be measured fails `halfopen budgets check` (and its
// old name, `halfopen gate`) even though no budget names
// that cell, with a sentence naming it; the judge decides, not the budgets.
func TestBudgetsCheckFailsOnAnUnmeasuredCell(t *testing.T) {
	dir := t.TempDir()
	rep := writeReport(t, dir, "r.json", []float64{3.5, 3.6})
	r, err := report.Read(rep)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Cell("read-eof", "graceful-close", "client", report.KindDetection)
	c.Samples = []report.Sample{{Error: "peer never said connected"}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rep, b, 0o644); err != nil {
		t.Fatal(err)
	}
	budgets := filepath.Join(dir, "b.yaml")
	body := "budgets:\n  - detector: keepalive-tuned:idle=1s,intvl=1s,cnt=3\n    fault: peer-cable-pull\n    p95: 5s\n"
	if err := os.WriteFile(budgets, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"budgets", "check"}, {"gate"}} {
		res := halfopen(t, append(args, "--budgets", budgets, rep)...)
		if res.code != exitRegression {
			t.Fatalf("%v: exit %d, want 1\n%s%s", args, res.code, res.stdout, res.stderr)
		}
		for _, want := range []string{"1 cell unmeasured, so the gate cannot pass", "read-eof / graceful-close / client", "peer never said connected"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, res.stderr)
			}
		}
	}
}
