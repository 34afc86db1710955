package gatefile_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halfopen/halfopen/gatefile"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/spec"
)

// seeds are the example gate files: the fuzz corpus and the parser's
// positive cases.
var seeds = []string{"testdata/redis.yaml", "testdata/full.yaml", "../examples/gates/example/halfopen-gate.yaml"}

func TestExamplesParse(t *testing.T) {
	for _, name := range seeds {
		t.Run(filepath.Base(filepath.Dir(name))+"/"+filepath.Base(name), func(t *testing.T) {
			f, err := gatefile.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Cells) == 0 || len(f.Budgets.Budgets) == 0 {
				t.Fatalf("%s: %d cells, %d budgets", name, len(f.Cells), len(f.Budgets.Budgets))
			}
			for _, c := range f.Cells {
				if _, err := harness.Resolve(harness.CellConfig{Detector: "read-eof", Fault: c.Fault, Side: c.Side, Sysctls: c.Sysctls}); err != nil {
					t.Errorf("cell %s × %s does not resolve: %v", c.Watcher, c.Fault, err)
				}
			}
		})
	}
}

// TestRedisExample checks what the brief's example yields: the service to
// register, the cells with the watcher's spec (cmd as written), and the
// budgets naming that spec.
func TestRedisExample(t *testing.T) {
	f, err := gatefile.Read("testdata/redis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Services) != 1 {
		t.Fatalf("%d services, want 1", len(f.Services))
	}
	s := f.Services[0]
	wantArgs := []string{"--bind", "{ip}", "--port", "{port}", "--save", "", "--appendonly", "no"}
	if s.Name != "redis" || s.Path != "redis-server" || strings.Join(s.Args, "|") != strings.Join(wantArgs, "|") ||
		s.Package != "redis-server" || s.User != "" || s.Protocol || s.ReadyTimeout != 20*time.Second {
		t.Errorf("service: %+v", s)
	}
	const det = "external:cmd=./bin/redis-blpop,peer=service:redis,privileged=false,timeout=5s"
	if len(f.Cells) != 3 {
		t.Fatalf("%d cells, want 3", len(f.Cells))
	}
	for i, want := range []string{"blackhole", "host-crash", "router-restart:carrier=false,outage=2s"} {
		c := f.Cells[i]
		if c.Detector != det || c.Fault != want || c.Side != protocol.SideClient || c.Samples != 3 ||
			c.Budget != 20*time.Second || c.Sysctls["net.ipv4.tcp_retries2"] != "5" || c.Line != 17 {
			t.Errorf("cell %d: %+v", i, c)
		}
	}
	if f.Cells[2].Kind != report.KindDisturbance || f.Cells[0].Kind != report.KindDetection {
		t.Errorf("kinds: %s, %s", f.Cells[0].Kind, f.Cells[2].Kind)
	}
	b := f.Budgets.Budgets
	if len(b) != 2 || b[0].Name != "BLPOP notices a blackhole" || b[0].Detector != det || b[0].Line != 24 ||
		b[0].P95 == nil || *b[0].P95 != 12*time.Second || b[0].Censored == nil || *b[0].Censored != 0 {
		t.Fatalf("budgets: %+v", b)
	}
	if b[1].FalsePositives == nil || *b[1].FalsePositives != 0 || b[1].Line != 29 || !spec.Equal(b[1].Fault, "router-restart:outage=2s,carrier=false") {
		t.Errorf("budget 2: %+v", b[1])
	}
	// The budgets match the cells the report will hold.
	r := &report.Report{}
	for _, c := range f.Cells {
		r.Cell(c.Detector, c.Fault, string(c.Side), c.Kind)
	}
	g := report.CheckBudgets(r, f.Budgets)
	if g.Checked != 2 {
		t.Errorf("the budgets were checked against %d cells of the report the file's cells make, want 2", g.Checked)
	}
	for _, v := range g.Broken {
		if v.Cell == nil {
			t.Errorf("budget %q matched no cell of the report the file's cells make", v.Budget)
		}
	}
}

func TestFullExample(t *testing.T) {
	f, err := gatefile.Read("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	db := f.Services[0]
	if db.Path != filepath.Join(dir, "bin/fake-db") || !db.Protocol || db.User != "nobody" || strings.Join(db.Env, " ") != "DB_MODE=test DB_THREADS=2" {
		t.Errorf("db: %+v", db)
	}
	if p := f.Services[1]; p.Path != "/usr/bin/true" || len(p.Args) != 0 || p.ReadyTimeout != 0 {
		t.Errorf("plain: %+v", p)
	}
	for name, want := range map[string]string{
		"pool": "external:cmd=./bin/pool-watcher,fast=true,peer=service:db,privileged=true,retries=3,timeout=2s",
		"echo": "external:cmd=keepalive-watcher,fast=true,peer=builtin,privileged=false,retries=3,timeout=2s",
		"twin": "external:cmd=./twin.py,peer=self,privileged=false",
		"pair": "external:cmd=./a,peer=./b,privileged=false",
	} {
		if w, ok := f.Watcher(name); !ok || w.Detector != want {
			t.Errorf("watcher %s: %q, want %q", name, w.Detector, want)
		}
	}
	// 2 watchers × 3 faults × 2 sides, then 2 watchers × 1 fault × 1 side.
	if len(f.Cells) != 14 {
		t.Fatalf("%d cells, want 14", len(f.Cells))
	}
	c := f.Cells[0]
	if c.Samples != 5 || c.Budget != 30*time.Second || !c.FixedIdle || c.Idle != 0 || c.Side != protocol.SideClient {
		t.Errorf("first cell: %+v", c)
	}
	if last := f.Cells[13]; last.Samples != gatefile.DefaultSamples || last.Side != protocol.SideClient || last.Watcher != "pair" {
		t.Errorf("last cell: %+v", last)
	}
	if f.Budgets.Budgets[0].Errors == nil || *f.Budgets.Budgets[0].Errors != 1 || f.Budgets.Budgets[1].Name == "" {
		t.Errorf("budgets: %+v", f.Budgets.Budgets)
	}
}

// base is a valid gate file; each error case replaces one of its lines
// (or adds after it), and the error must name that line.
const base = `version: 1
services:
  redis:
    cmd: [redis-server, --bind, "{ip}", --port, "{port}"]
    ready_timeout: 20s
watchers:
  blpop:
    cmd: ./bin/redis-blpop
    peer: redis
    config: {timeout: 5s}
cells:
  - watchers: [blpop]
    faults: [blackhole, "router-restart:outage=2s"]
    sides: [client]
    samples: 3
budgets:
  - name: BLPOP notices a blackhole
    watcher: blpop
    fault: blackhole
    p95: 12s
`

// edit returns base with line n (1-based) replaced by text, which may
// hold several lines.
func edit(n int, text string) string {
	lines := strings.Split(base, "\n")
	lines[n-1] = text
	return strings.Join(lines, "\n")
}

func TestBaseParses(t *testing.T) {
	if _, err := gatefile.Parse("gate.yaml", []byte(base)); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		line int // 0: the error names the file only
		want string
	}{
		{"empty", "  \n", 0, "is empty"},
		{"only comments", "# nothing\n", 0, "has no YAML document"},
		// yaml.v3 names the line before a parser error's (its context mark,
		// 0-based), and the line of a scanner error.
		{"not yaml", edit(4, "    cmd: [redis-server, --bind"), 3, "is not valid YAML: did not find expected ',' or ']'"},
		{"tab indentation", edit(5, "\tready_timeout: 20s"), 5, "is not valid YAML"},
		{"second document", base + "---\nversion: 1\n", 21, "second YAML document"},
		{"not a mapping", "- version: 1\n", 1, "the gate file is a list"},
		{"unknown top key", edit(11, "cels:"), 11, `unknown key "cels"; the known keys are version, services, watchers, cells and budgets`},
		{"duplicate top key", base + "version: 1\n", 21, `gives "version" twice (first at line 1)`},
		{"no version", edit(1, "# no version"), 2, "has no version"},
		{"version 2", edit(1, "version: 2"), 1, `is version "2"; this halfopen reads version 1`},
		{"no watchers", strings.Replace(base, "watchers:\n  blpop:\n    cmd: ./bin/redis-blpop\n    peer: redis\n    config: {timeout: 5s}\n", "", 1), 1, "has no watchers"},
		{"unknown service key", edit(5, "    reddy_timeout: 20s"), 5, `service redis has the unknown key "reddy_timeout"; the known keys are cmd, env, package, user, protocol and ready_timeout`},
		{"bad ready_timeout", edit(5, "    ready_timeout: soon"), 5, `service redis ready_timeout is "soon", which is not a positive Go duration`},
		{"zero ready_timeout", edit(5, "    ready_timeout: 0s"), 5, "not a positive Go duration"},
		{"service without cmd", edit(4, "    package: redis-server"), 3, "service redis has no cmd"},
		{"service cmd empty list", edit(4, "    cmd: []"), 4, "names no program"},
		{"service cmd a mapping", edit(4, "    cmd: {a: b}"), 4, "is a mapping, where a list belongs"},
		{"service named self", edit(3, "  self:"), 3, `service name "self"`},
		{"service named with a comma", edit(3, `  "re,dis":`), 3, `service name "re,dis"`},
		{"service protocol not bool", edit(5, "    protocol: maybe"), 5, `protocol is "maybe", where true or false belongs`},
		{"service env bad name", edit(5, "    env: {1X: y}"), 5, `the key "1X", which is not an environment variable name`},
		{"service env nested", edit(5, "    env: {X: [a]}"), 5, "env.X is a list, where a value belongs"},
		{"unknown watcher key", edit(9, "    peers: redis"), 9, `watcher blpop has the unknown key "peers"; the known keys are cmd, peer, privileged and config`},
		{"watcher without cmd", edit(8, "    privileged: false"), 7, "watcher blpop has no cmd"},
		{"watcher cmd with comma", edit(8, "    cmd: ./bin/a,b"), 8, "holds a comma"},
		{"watcher cmd empty", edit(8, `    cmd: ""`), 8, "watcher blpop cmd is empty"},
		{"watcher cmd a list", edit(8, "    cmd: [./bin/a, -v]"), 8, "watcher blpop cmd is a list, where a value belongs"},
		{"unknown peer", edit(9, "    peer: postgres"), 9, `peer is "postgres", which is not a service of this file (redis), builtin, self`},
		{"privileged not bool", edit(9, "    privileged: 1"), 9, `privileged is "1", where true or false belongs`},
		{"config key reserved", edit(10, "    config: {cmd: x}"), 10, `the key "cmd", which is the watcher's own`},
		{"config value with comma", edit(10, "    config: {hosts: \"a,b\"}"), 10, "holds a comma"},
		{"config value a list", edit(10, "    config: {hosts: [a, b]}"), 10, "config.hosts is a list"},
		{"config key odd", edit(10, "    config: {\"a=b\": x}"), 10, `the key "a=b", which is not a plain name`},
		{"watcher name odd", edit(7, "  \"blp op\":"), 7, `watcher name "blp op"`},
		{"no cells", strings.Replace(base, "cells:\n  - watchers: [blpop]\n    faults: [blackhole, \"router-restart:outage=2s\"]\n    sides: [client]\n    samples: 3\n", "cells: []\n", 1), 11, "cells lists no cell"},
		{"unknown cell key", edit(15, "    sample: 3"), 15, `cell 1 has the unknown key "sample"; the known keys are watchers, faults, sides, samples, budget, idle and sysctls`},
		{"unknown watcher in cell", edit(12, "  - watchers: [blpop, lpush]"), 12, `cell 1 watchers names "lpush", which is not a watcher of this file (blpop)`},
		{"unknown fault", edit(13, "    faults: [blackhole, meteor]"), 13, `no fault is called "meteor"; the known faults are`},
		{"fault on its own line", edit(13, "    faults:\n      - blackhole\n      - meteor"), 15, `no fault is called "meteor"`},
		{"unknown fault key", edit(13, `    faults: ["router-restart:outtage=2s"]`), 13, `has no parameter "outtage"`},
		{"bad fault duration", edit(13, `    faults: ["router-restart:outage=soon"]`), 13, "not a duration"},
		{"bad side", edit(14, "    sides: [middle]"), 14, `side "middle" is not known`},
		{"no sides", edit(14, "    sides: []"), 12, "cell 1 has no sides"},
		{"no faults", edit(13, "    faults: []"), 12, "cell 1 has no faults"},
		{"samples zero", edit(15, "    samples: 0"), 15, `samples is "0", which is not a whole number of 1 or more`},
		{"samples word", edit(15, "    samples: many"), 15, "not a whole number"},
		{"negative budget", edit(15, "    budget: -1s"), 15, `budget is "-1s", which is not a positive Go duration`},
		{"bad idle", edit(15, "    idle: later"), 15, `idle is "later", which is not a Go duration`},
		{"host sysctl", edit(15, "    sysctls: {kernel.pid_max: 5}"), 15, "not per network namespace"},
		{"duplicate cell", edit(13, "    faults: [blackhole, blackhole]"), 13, "watcher blpop against blackhole on side client is already a cell (line 13)"},
		{"cell not a mapping", edit(12, "  - blpop\n  - watchers: [blpop]"), 12, "cell 1 is \"blpop\", where a mapping"},
		{"unknown budget key", edit(20, "    p96: 12s"), 20, `budget 1 has the unknown key "p96"; the known keys are name, watcher, fault, side, kind, p50, p95, max, censored, false_positives and errors`},
		{"bad budget duration", edit(20, "    p95: fast"), 20, `budget 1 p95 is "fast", which is not a Go duration`},
		{"negative count", edit(20, "    censored: -1"), 20, `censored is "-1", which is not a whole number of 0 or more`},
		{"unknown budget watcher", edit(18, "    watcher: lpush"), 18, `budget 1 watcher is "lpush", which is not a watcher of this file (blpop)`},
		{"budget without watcher", edit(18, "    side: client"), 17, "budget 1 has no watcher"},
		{"budget without fault", edit(19, "    side: client"), 17, "budget 1 has no fault"},
		{"budget unknown fault", edit(19, "    fault: meteor"), 19, `no fault is called "meteor"`},
		{"budget bad side", edit(20, "    side: middle"), 17, `budget 1 has side "middle"; the known sides are client and server`},
		{"budget bad kind", edit(20, "    kind: outage"), 17, `budget 1 has kind "outage"`},
		{"budget matches no cell", edit(19, "    fault: host-crash"), 17, "budget 1 (blpop against host-crash) matches no cell of this gate file"},
		{"budget on the other side", edit(20, "    side: server"), 17, "matches no cell"},
		{"budget of another kind", edit(20, "    kind: disturbance"), 17, "matches no cell"},
		{"no budgets", strings.SplitAfter(base, "budgets:")[0] + " []\n", 16, "budgets lists no budget"},
		{"empty budgets", strings.SplitAfter(base, "budgets:\n")[0] + "  # none\n", 16, "budgets is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gatefile.Parse("gate.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.doc)
			}
			var ie *report.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("%T %v, want a *report.InputError", err, err)
			}
			prefix := "gate.yaml: "
			if tc.line > 0 {
				prefix = fmt.Sprintf("gate.yaml line %d: ", tc.line)
			}
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to begin %q and say %q", err, prefix, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	doc := base + "# " + strings.Repeat("x", gatefile.MaxSize) + "\n"
	if _, err := gatefile.Parse("gate.yaml", []byte(doc)); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Errorf("a huge file gave %v", err)
	}
}

// TestReadRefusesALargeFileBeforeReadingIt: a gate file over MaxSize is
// refused by its size, with almost nothing read (a sparse gigabyte), and
// one with no size known in advance (an endless pipe) once MaxSize+1 bytes
// have come, so neither can fill the memory or hang Read.
func TestReadRefusesALargeFileBeforeReadingIt(t *testing.T) {
	sparse := func(t *testing.T) string {
		p := filepath.Join(t.TempDir(), "sparse.yaml")
		if err := os.WriteFile(p, []byte(base), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 1<<30); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// endless is a named pipe with a writer that never stops: it ends when
	// Read closes the pipe (EPIPE), or when the clean-up opens and closes
	// the pipe for a Read that never opened it.
	endless := func(t *testing.T) string {
		p := filepath.Join(t.TempDir(), "pipe.yaml")
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			w, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			defer w.Close()
			line := []byte("# " + strings.Repeat("x", 1021) + "\n")
			for {
				if _, err := w.Write(line); err != nil {
					return
				}
			}
		}()
		t.Cleanup(func() {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Second):
				t.Error("the pipe's writer still writes: Read did not close the pipe")
			}
			if r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
				r.Close()
			}
			<-done
		})
		return p
	}
	for _, tc := range []struct {
		name     string
		file     func(*testing.T) string
		want     string
		maxAlloc uint64 // bytes Read may allocate
	}{
		{"sparse gigabyte", sparse, "is 1.0 GiB, more than the 1 MiB that a gate file may be", 64 << 10},
		{"endless pipe", endless, "is over 1.0 MiB, more than the 1 MiB that a gate file may be", 8 * gatefile.MaxSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.file(t)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := gatefile.Read(path)
			runtime.ReadMemStats(&after)
			var ie *report.InputError
			if !errors.As(err, &ie) || err.Error() != path+": "+tc.want {
				t.Errorf("got %v, want the *report.InputError %q", err, path+": "+tc.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > tc.maxAlloc {
				t.Errorf("Read allocated %d bytes, more than %d", n, tc.maxAlloc)
			}
		})
	}
}

func TestReadNamesAMissingFile(t *testing.T) {
	_, err := gatefile.Read("/nonexistent/halfopen-gate.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "/nonexistent/halfopen-gate.yaml: cannot be read") {
		t.Errorf("got %v", err)
	}
}

func TestRegisterServices(t *testing.T) {
	doc := strings.Replace(base, "redis:", "gatefile-test-redis:", 1)
	doc = strings.Replace(doc, "peer: redis", "peer: gatefile-test-redis", 1)
	f, err := gatefile.Parse("gate.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.RegisterServices(); err != nil {
		t.Fatal(err)
	}
	if s, ok := harness.LookupService("gatefile-test-redis"); !ok || s.Path != "redis-server" {
		t.Fatalf("not registered: %+v", s)
	}
	if err := f.RegisterServices(); err != nil {
		t.Errorf("the same definition twice: %v", err)
	}
	other, err := gatefile.Parse("other.yaml", []byte(strings.Replace(doc, "20s", "21s", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.RegisterServices(); err == nil || !strings.Contains(err.Error(), "another definition") {
		t.Errorf("another definition under the same name: %v", err)
	}
}

// FuzzParse: whatever the bytes, Parse returns a file or an InputError
// naming the file and a line within it, never panics, and what it returns
// holds together: every cell's detector spec reads back, every budget
// matches a cell.
func FuzzParse(f *testing.F) {
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base))
	f.Add([]byte("version: 1\nwatchers: &w {a: {cmd: x}}\ncells: [{watchers: [a], faults: [blackhole]}]\nbudgets: [{watcher: a, fault: blackhole}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := gatefile.Parse("gate.yaml", data)
		if err != nil {
			var ie *report.InputError
			if !errors.As(err, &ie) || ie.File != "gate.yaml" {
				t.Fatalf("%T %v, want an InputError naming gate.yaml", err, err)
			}
			// YAML breaks lines at \n, \r\n and a lone \r (as editors do).
			lines := strings.Count(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") + strings.Count(strings.ReplaceAll(string(data), "\r\n", ""), "\r") + 2
			if ie.Line < 0 || ie.Line > lines {
				t.Fatalf("line %d outside a file of %d lines: %v", ie.Line, lines, err)
			}
			return
		}
		for _, c := range file.Cells {
			sp, err := spec.Parse(c.Detector)
			if err != nil || sp.Name != "external" || sp.Params["cmd"] == "" {
				t.Fatalf("cell detector %q: %v", c.Detector, err)
			}
			if c.Samples < 1 {
				t.Fatalf("cell with %d samples", c.Samples)
			}
		}
		for _, b := range file.Budgets.Budgets {
			matched := false
			for _, c := range file.Cells {
				matched = matched || b.Matches(&report.Cell{Detector: c.Detector, Fault: c.Fault, Side: string(c.Side), Kind: c.Kind})
			}
			if !matched {
				t.Fatalf("budget %q matches no cell", b.Name)
			}
		}
	})
}

// TestDocumentedExamplesParse: the gate files shown in README.md and
// docs/gatefile.md are valid.
func TestDocumentedExamplesParse(t *testing.T) {
	for _, doc := range []string{"../README.md", "../docs/gatefile.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		blocks := strings.Split(string(data), "```yaml\n")[1:]
		if len(blocks) == 0 {
			t.Errorf("%s shows no gate file", doc)
		}
		for i, b := range blocks {
			b, _, _ = strings.Cut(b, "```")
			if _, err := gatefile.Parse(fmt.Sprintf("%s-example-%d.yaml", filepath.Base(doc), i+1), []byte(b)); err != nil {
				t.Errorf("%s example %d: %v", doc, i+1, err)
			}
		}
	}
}
