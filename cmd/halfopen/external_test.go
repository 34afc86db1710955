package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// A foreign watcher's misbehaviour makes its sample an error with one
// sentence; the run goes on, writes every sample, and leaves nothing behind.
// The programs are Python scripts speaking protocol v1 up to the point where
// each goes wrong.
const foreignPrelude = `#!/usr/bin/env python3
import json, os, signal, socket, sys, time
def emit(ev, **kw):
    kw.update(event=ev, t_ns=time.clock_gettime_ns(time.CLOCK_MONOTONIC))
    print(json.dumps(kw), flush=True)
emit("hello", protocol=1, name="misbehaving", predicted_s=None)
if os.environ["HALFOPEN_ROLE"] != "watcher":
    sys.exit(0)
side, addr = os.environ["HALFOPEN_SIDE"], os.environ["HALFOPEN_ADDR"]
host, port = addr.rsplit(":", 1)
def connect():
    if side == "server":
        ln = socket.socket(); ln.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ln.bind((host, int(port))); ln.listen(1); emit("ready")
        c, _ = ln.accept(); return c
    emit("ready")
    for _ in range(100):
        try:
            return socket.create_connection((host, int(port)))
        except OSError:
            time.sleep(0.05)
    sys.exit(1)
`

func TestMisbehavingForeignDetectorsMakeErrorSamples(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skip(err)
	}
	dir := publicDir(t, "halfopen-foreign-")
	for _, tc := range []struct {
		name, body, want string
	}{
		{"crash", `c = connect(); emit("connected"); os._exit(3)`, "exit status 3"},
		{"garbage", `c = connect(); emit("connected"); print("all good here", flush=True); c.recv(1); emit("dead", reason="EOF"); time.sleep(30)`, "not a JSON object"},
		{"never-connects", `emit("log", msg="waiting for nothing"); time.sleep(60)`, "connection never established"},
		{"ignores-sigterm", `signal.signal(signal.SIGTERM, signal.SIG_IGN); c = connect(); emit("connected"); c.recv(1); emit("dead", reason="EOF"); time.sleep(60)`, "after SIGTERM and was killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog := filepath.Join(dir, tc.name+".py")
			if err := os.WriteFile(prog, []byte(foreignPrelude+tc.body+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if _, err := exec.LookPath("python3"); err != nil {
				t.Skip("python3 is not installed")
			}
			out := filepath.Join(t.TempDir(), "r.json")
			start := time.Now()
			r := halfopen(t, "run", "--detector", "external:cmd="+prog, "--fault", "graceful-close",
				"--samples", "2", "--budget", "1s", "--report", out)
			if r.code != 2 || !strings.Contains(r.stderr, "could not be measured") {
				t.Fatalf("the run exited %d: a run whose watcher misbehaved must exit 2 with one sentence saying how many samples could not be measured: %s", r.code, r.stderr)
			}
			if took := time.Since(start); took > 60*time.Second {
				t.Errorf("the run took %v: a misbehaving program held it up", took)
			}
			rep, err := report.Read(out)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, c := range rep.Cells {
				if c.Kind != report.KindDetection {
					continue
				}
				for _, s := range c.Samples {
					n++
					if s.Error == "" || !strings.Contains(s.Error, tc.want) {
						t.Errorf("sample error %q, want one mentioning %q", s.Error, tc.want)
					}
					if strings.Count(strings.TrimSpace(s.Error), "\n") > 0 {
						t.Errorf("sample error is not one line: %q", s.Error)
					}
				}
			}
			if n != 2 {
				t.Errorf("the report holds %d samples, want both", n)
			}
			noLeftovers(t, r.pid)
		})
	}
}
