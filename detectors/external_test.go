package detectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
)

// TestMain dispatches agent modes first: reading a program's hello starts
// a probe, whose reaper is this binary re-executed.
func TestMain(m *testing.M) {
	harness.MaybeRunAgent()
	os.Exit(m.Run())
}

// TestExternalSpec checks cmd resolution, the keys passed on in
// HALFOPEN_CONFIG and the process specs, without running a lab.
func TestExternalSpec(t *testing.T) {
	open, err := os.MkdirTemp("", "ho-external-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho '{\"event\":\"hello\",\"t_ns\":1,\"protocol\":1,\"name\":\"t\",\"predicted_s\":[1.5,2]}'\n"
	good := filepath.Join(open, "good")
	if err := os.WriteFile(good, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(open, "private")
	if err := os.WriteFile(private, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(open, "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	hidden := filepath.Join(closed, "hidden")
	if err := os.WriteFile(hidden, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(open, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ spec, wantErr string }{
		{"external", "cmd is missing"},
		{"external:cmd=" + filepath.Join(open, "absent"), "cannot be found"},
		{"external:cmd=" + plain, "not an executable file"},
		{"external:cmd=" + private, "not executable by the unprivileged user nobody"},
		{"external:cmd=" + hidden, "not searchable by others"},
		{"external:cmd=" + private + ",privileged=true", ""},
		{"external:cmd=" + good + ",peer=" + private, "peer: cmd " + private + " is not executable"},
		{"external:cmd=" + good + ",idle=1s,cnt=3,peer=self", ""},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			d, _, err := harness.NewDetector(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			prog := d.(harness.Program)
			w := prog.WatcherProgram(protocol.SideServer, "198.18.2.2:7000")
			if !w.Strict || w.Label != "watcher" || !filepath.IsAbs(w.Path) {
				t.Errorf("watcher spec %+v", w)
			}
			if strings.Contains(tc.spec, "privileged=true") == w.Unprivileged {
				t.Errorf("Unprivileged = %v for %s", w.Unprivileged, tc.spec)
			}
			p, ok := prog.PeerProgram(protocol.SideServer, "198.18.2.2:7000")
			if strings.Contains(tc.spec, "peer=self") {
				if !ok || p.Path != w.Path || p.Label == "peer" {
					t.Errorf("peer=self: %+v %v", p, ok)
				}
				var cfg map[string]string
				for _, e := range w.Env {
					if v, ok := strings.CutPrefix(e, "HALFOPEN_CONFIG="); ok {
						if err := json.Unmarshal([]byte(v), &cfg); err != nil {
							t.Fatal(err)
						}
					}
				}
				if len(cfg) != 2 || cfg["idle"] != "1s" || cfg["cnt"] != "3" {
					t.Errorf("HALFOPEN_CONFIG = %v, want only idle and cnt", cfg)
				}
				if os.Geteuid() == 0 {
					pr := d.Predict()
					if pr.Never || pr.Lo.Seconds() != 1.5 || pr.Hi.Seconds() != 2 {
						t.Errorf("prediction from hello: %+v", pr)
					}
				}
			} else if ok {
				t.Errorf("peer program without peer=: %+v", p)
			}
		})
	}
}
