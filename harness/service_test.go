package harness_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/harness"
)

// httpService is a real server that speaks no protocol: Python's own HTTP
// server, which holds an idle connection open, listening on the peer's
// address.
var httpService = harness.Service{
	Name: "python-http", Path: "python3", Package: "python3",
	Args: []string{"-m", "http.server", "--bind", "{ip}", "--directory", "{dir}", "{port}"},
}

func init() {
	harness.RegisterService(httpService)
	harness.RegisterService(harness.Service{Name: "crashes", Path: "python3", Args: []string{"-c", "print('listening is for others'); raise SystemExit(3)"}})
	harness.RegisterService(harness.Service{Name: "absent", Path: "halfopen-no-such-server", Package: "halfopen-no-such-package"})
}

func pythonWatcher(t *testing.T, service string) string {
	t.Helper()
	p, err := filepath.Abs("../examples/python/keepalive_watcher.py")
	if err != nil {
		t.Fatal(err)
	}
	return "external:cmd=" + p + ",idle=1s,intvl=1s,cnt=3,peer=service:" + service
}

// TestServicePeer: a real server that prints nothing a protocol knows is
// the peer; the watcher's keepalive sees its host crash, and sees it come
// back from a reboot with no memory (RST at the first probe after the
// return), because the service was started again in the new host.
func TestServicePeer(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	logs := t.TempDir()
	det := pythonWatcher(t, "python-http")
	cells := runCells(t, harness.Options{LogDir: logs},
		harness.CellConfig{Detector: det, Fault: "host-crash", Samples: 2},
		harness.CellConfig{Detector: det, Fault: "host-reboot:down=1s", Samples: 2})
	for _, c := range cells {
		for i, s := range c.Record().Samples {
			if s.Error != "" || !s.Detected {
				t.Errorf("%s sample %d: %s", c.Describe(), i, s.Summary())
				continue
			}
			lo, hi := c.Prediction.Lo-150*time.Millisecond, c.Prediction.Hi+150*time.Millisecond
			if got := time.Duration(*s.Seconds * float64(time.Second)); got < lo || got > hi || !strings.Contains(strings.Join(c.Prediction.Reasons, " "), s.Reason) {
				t.Errorf("%s sample %d: %s, theory says %v in [%v, %v]", c.Describe(), i, s.Summary(), c.Prediction.Reasons, c.Prediction.Lo, c.Prediction.Hi)
			}
		}
	}
	// The rebooted host's service answered the probe with an RST: it was
	// started again, or the probe would have met silence (ETIMEDOUT).
	for i, s := range cells[1].Record().Samples {
		if s.Reason != "ECONNRESET" {
			t.Errorf("host-reboot sample %d: %s, want ECONNRESET from the service's new host", i, s.Summary())
		}
	}
	files, _ := filepath.Glob(filepath.Join(logs, "*-python-http.log"))
	if len(files) != 4 {
		t.Errorf("%d service logs in %s, want one per sample (4): %v", len(files), logs, files)
	}
}

// TestServiceRefusals: a service whose program is missing is refused
// before any lab, naming the package that provides it; one that exits
// before it listens is a sample error with its last words.
func TestServiceRefusals(t *testing.T) {
	_, err := harness.Resolve(harness.CellConfig{Detector: pythonWatcher(t, "absent"), Fault: "blackhole"})
	if err == nil || !strings.Contains(err.Error(), "apt-get install halfopen-no-such-package") {
		t.Errorf("a missing server gave %v, want a sentence naming its package", err)
	}
	cells := runCells(t, harness.Options{}, harness.CellConfig{Detector: pythonWatcher(t, "crashes"), Fault: "blackhole"})
	if s := cells[0].Record().Samples[0]; !strings.Contains(s.Error, "listening is for others") || !strings.Contains(s.Error, "exited before accepting") {
		t.Errorf("a server that exits at once gave %q, want an error with its last words", s.Error)
	}
}
