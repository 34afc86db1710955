package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// chromiumPath is Debian's chromium; `make chromium` installs it.
const chromiumPath = "/usr/bin/chromium"

// pageLimit is the largest the HTML page of ci/baseline.json (the quick
// profile's full matrix, 268 cells) may be: it must stay one file that a
// CI artefact viewer and a mail attachment take.
const pageLimit = 1 << 20

// TestHTMLInChromium renders pages in headless Chromium, driven over the
// DevTools protocol on a pipe, and fails on a console error, an
// exception, a request that leaves the page (it must be self-contained), a
// link to a capture or an anchor that leads nowhere, and horizontal
// overflow at a 1280-pixel-wide window. With HALFOPEN_SCREENSHOTS=DIR it
// writes DIR/overview.png (the first screen of the baseline's page) and
// DIR/timeline.png (a packet timeline), the README's screenshots.
func TestHTMLInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no %s (run `make chromium`): %v", chromiumPath, err)
	}
	dir := t.TempDir()
	shots := os.Getenv("HALFOPEN_SCREENSHOTS")

	baseline, err := Read("../ci/baseline.json")
	if err != nil {
		t.Fatal(err)
	}
	baseline.Summarise()
	timeline, err := Read("testdata/timeline/report.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		r      *Report
		opt    HTMLOptions
		limit  int
		shot   string // file name under HALFOPEN_SCREENSHOTS
		clipOf string // CSS selector of the part to photograph
	}{
		{"baseline", baseline, HTMLOptions{ReportDir: "../ci", PageDir: filepath.Join(dir, "baseline")}, pageLimit, "overview.png", "body > h1, #matrix-client"},
		// The page is written elsewhere than its report: its link to the
		// capture must still lead to the file.
		{"timeline", timeline, HTMLOptions{ReportDir: "testdata/timeline", PageDir: filepath.Join(dir, "timeline")}, 64 << 10, "timeline.png", "section h3, section svg, section table"},
	}
	b := startBrowser(t, dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var page bytes.Buffer
			if err := RenderHTML(&page, tt.r, tt.opt); err != nil {
				t.Fatal(err)
			}
			if page.Len() > tt.limit {
				t.Errorf("page is %d bytes, over its limit of %d", page.Len(), tt.limit)
			}
			t.Logf("page: %d bytes", page.Len())
			if err := os.MkdirAll(tt.opt.PageDir, 0o755); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(tt.opt.PageDir, "report.html")
			if err := os.WriteFile(file, page.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			abs, err := filepath.Abs(file)
			if err != nil {
				t.Fatal(err)
			}
			res := b.load(t, "file://"+abs)
			for _, e := range res.problems {
				t.Error(e)
			}
			if res.ScrollWidth > res.ClientWidth {
				t.Errorf("the page overflows horizontally: %d pixels wide in a %d-pixel window", res.ScrollWidth, res.ClientWidth)
			}
			for _, f := range res.BrokenAnchors {
				t.Errorf("link to #%s leads nowhere", f)
			}
			captures := 0
			for _, l := range res.Files {
				u, err := url.Parse(l)
				if err != nil {
					t.Errorf("link %q: %v", l, err)
					continue
				}
				if _, err := os.Stat(u.Path); err != nil {
					t.Errorf("broken link %s: %v", l, err)
				}
				if strings.HasSuffix(u.Path, ".pcapng") {
					captures++
				}
			}
			want := 0
			for _, c := range tt.r.Cells {
				for _, s := range c.Samples {
					if s.Pcap != "" {
						want++
					}
				}
			}
			if captures != want {
				t.Errorf("%d links to captures, want %d", captures, want)
			}
			if shots != "" && tt.shot != "" {
				png := b.screenshot(t, tt.clipOf)
				if err := os.WriteFile(filepath.Join(shots, tt.shot), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// browser is a headless Chromium driven over --remote-debugging-pipe: it
// reads DevTools commands, NUL-terminated JSON, on its fd 3 and writes
// answers and events on its fd 4. No port, no WebSocket.
type browser struct {
	cmd     *exec.Cmd
	in      *os.File // our end of its fd 3
	session string

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpMessage
	events  chan cdpMessage
}

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct{ Message string }
	SessionID string `json:"sessionId,omitempty"`
}

func startBrowser(t *testing.T, dir string) *browser {
	t.Helper()
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, chromiumPath,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--mute-audio", "--user-data-dir="+filepath.Join(dir, "chromium-profile"),
		"--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{cmdR, outW}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	cmdR.Close()
	outW.Close()
	b := &browser{cmd: cmd, in: cmdW, waiting: map[int]chan cdpMessage{}, events: make(chan cdpMessage, 4096)}
	done := make(chan struct{})
	go b.readLoop(outR, done)
	t.Cleanup(func() {
		b.call(t, "", "Browser.close", nil)
		wait := make(chan error, 1)
		go func() { wait <- cmd.Wait() }()
		select {
		case <-wait:
		case <-time.After(10 * time.Second):
			cancel()
			<-wait
		}
		cancel()
		cmdW.Close()
		<-done
		if t.Failed() {
			t.Logf("chromium's standard error:\n%s", stderr.String())
		}
	})
	var target struct{ TargetID string }
	b.decode(t, b.call(t, "", "Target.createTarget", map[string]any{"url": "about:blank"}), &target)
	var attached struct{ SessionID string }
	b.decode(t, b.call(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}), &attached)
	b.session = attached.SessionID
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		b.call(t, b.session, m, nil)
	}
	b.call(t, b.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false})
	return b
}

func (b *browser) readLoop(out *os.File, done chan struct{}) {
	defer close(done)
	defer out.Close()
	r := bufio.NewReaderSize(out, 1<<20)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.waiting {
				close(ch)
				delete(b.waiting, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.waiting[m.ID]
			delete(b.waiting, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		select {
		case b.events <- m:
		default: // a flood of events we do not read; drop
		}
	}
}

// call sends one command and waits for its answer.
func (b *browser) call(t *testing.T, session, method string, params any) json.RawMessage {
	t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.in.Write(append(data, 0)); err != nil {
		if method == "Browser.close" {
			return nil
		}
		t.Fatalf("devtools %s: %v", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			if method == "Browser.close" {
				return nil
			}
			t.Fatalf("devtools %s: chromium went away", method)
		}
		if m.Error != nil {
			t.Fatalf("devtools %s: %s", method, m.Error.Message)
		}
		return m.Result
	case <-time.After(30 * time.Second):
		if method == "Browser.close" {
			return nil
		}
		t.Fatalf("devtools %s: no answer in 30 s", method)
	}
	return nil
}

func (b *browser) decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("devtools answer %s: %v", raw, err)
	}
}

// pageCheck is what load finds in a page.
type pageCheck struct {
	ScrollWidth   int      `json:"sw"`
	ClientWidth   int      `json:"cw"`
	BrokenAnchors []string `json:"broken"`
	Files         []string `json:"files"`
	problems      []string
}

// checkScript measures the page's width and lists its fragment links
// without a target and its links to files.
const checkScript = `JSON.stringify((() => {
  const d = document.documentElement;
  const broken = [], files = [];
  for (const a of document.querySelectorAll('a[href]')) {
    const h = a.getAttribute('href');
    if (h.startsWith('#')) {
      if (!document.getElementById(decodeURIComponent(h.slice(1)))) broken.push(h.slice(1));
    } else {
      files.push(a.href);
    }
  }
  return {sw: d.scrollWidth, cw: d.clientWidth, broken, files};
})())`

// load navigates to pageURL, waits for its load event and the network to
// settle, and returns what checkScript found with the problems the
// browser reported meanwhile.
func (b *browser) load(t *testing.T, pageURL string) pageCheck {
	t.Helper()
	for len(b.events) > 0 {
		<-b.events
	}
	b.call(t, b.session, "Page.navigate", map[string]any{"url": pageURL})
	var problems []string
	deadline := time.After(30 * time.Second)
	loaded := false
	for !loaded {
		select {
		case ev := <-b.events:
			problems = append(problems, problem(ev, pageURL)...)
			loaded = ev.Method == "Page.loadEventFired"
		case <-deadline:
			t.Fatalf("%s did not load in 30 s", pageURL)
		}
	}
	// Late console messages and requests arrive within a moment.
	settle := time.After(300 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case ev := <-b.events:
			problems = append(problems, problem(ev, pageURL)...)
		case <-settle:
			waiting = false
		}
	}
	var res struct {
		Result struct{ Value string }
	}
	b.decode(t, b.call(t, b.session, "Runtime.evaluate", map[string]any{"expression": checkScript, "returnByValue": true}), &res)
	var pc pageCheck
	if err := json.Unmarshal([]byte(res.Result.Value), &pc); err != nil {
		t.Fatalf("page check %q: %v", res.Result.Value, err)
	}
	pc.problems = problems
	return pc
}

// problem turns a DevTools event into what a test must fail on: a console
// error, an uncaught exception, a failed load, a request for anything but
// the page itself.
func problem(ev cdpMessage, pageURL string) []string {
	switch ev.Method {
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string
			Args []struct{ Value any }
		}
		json.Unmarshal(ev.Params, &p)
		if p.Type == "error" || p.Type == "assert" {
			return []string{fmt.Sprintf("console %s: %v", p.Type, p.Args)}
		}
	case "Runtime.exceptionThrown":
		return []string{"exception: " + string(ev.Params)}
	case "Log.entryAdded":
		var p struct {
			Entry struct{ Level, Text, URL string }
		}
		json.Unmarshal(ev.Params, &p)
		if p.Entry.Level == "error" {
			return []string{fmt.Sprintf("console error: %s %s", p.Entry.Text, p.Entry.URL)}
		}
	case "Network.requestWillBeSent":
		var p struct{ Request struct{ URL string } }
		json.Unmarshal(ev.Params, &p)
		if u := p.Request.URL; u != pageURL && !strings.HasPrefix(u, "data:") {
			return []string{"the page requested " + u + ": it must be self-contained"}
		}
	case "Network.loadingFailed":
		return []string{"a load failed: " + string(ev.Params)}
	}
	return nil
}

// screenshot photographs the union of the boxes of the elements that
// selector matches (at most 1800 pixels tall), as PNG.
func (b *browser) screenshot(t *testing.T, selector string) []byte {
	t.Helper()
	expr := fmt.Sprintf(`JSON.stringify((() => {
  let x0 = 1e9, y0 = 1e9, x1 = 0, y1 = 0;
  for (const e of document.querySelectorAll(%q)) {
    const r = e.getBoundingClientRect();
    x0 = Math.min(x0, r.left + scrollX); y0 = Math.min(y0, r.top + scrollY);
    x1 = Math.max(x1, r.right + scrollX); y1 = Math.max(y1, r.bottom + scrollY);
  }
  return {x: Math.max(0, x0 - 12), y: Math.max(0, y0 - 12), width: x1 - x0 + 24, height: Math.min(1800, y1 - y0 + 24)};
})())`, selector)
	var res struct {
		Result struct{ Value string }
	}
	b.decode(t, b.call(t, b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}), &res)
	var clip map[string]float64
	if err := json.Unmarshal([]byte(res.Result.Value), &clip); err != nil || clip["width"] <= 0 {
		t.Fatalf("no box for %q: %s %v", selector, res.Result.Value, err)
	}
	clip["scale"] = 1
	var shot struct{ Data string }
	b.decode(t, b.call(t, b.session, "Page.captureScreenshot", map[string]any{"format": "png", "clip": clip, "captureBeyondViewport": true}), &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(errors.Join(errors.New("screenshot"), err))
	}
	return png
}

// TestBrowserCheckCatchesProblems proves the checks of TestHTMLInChromium
// fail when they should: a page with each problem, and a clean one.
func TestBrowserCheckCatchesProblems(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no %s (run `make chromium`): %v", chromiumPath, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "there.pcapng"), []byte("x"), 0o644)
	tests := []struct {
		name, body string
		problem    string // in a problem, "" for none
		overflow   bool
		broken     []string
		missing    int // links to files that do not exist
	}{
		{"clean", `<p><a href="#x" id="x">here</a> <a href="there.pcapng">capture</a></p>`, "", false, nil, 0},
		{"console error", `<script>console.error("boom")</script>`, "console error", false, nil, 0},
		{"exception", `<script>null.x</script>`, "exception", false, nil, 0},
		// Loopback's discard port: refused, and never off the machine.
		{"network", `<img src="http://127.0.0.1:9/x.png" alt="">`, "the page requested http://127.0.0.1:9/x.png", false, nil, 0},
		{"overflow", `<div style="width:3000px">wide</div>`, "", true, nil, 0},
		{"anchor", `<a href="#nowhere">x</a>`, "", false, []string{"nowhere"}, 0},
		{"capture", `<a href="gone.pcapng">x</a>`, "", false, nil, 1},
	}
	b := startBrowser(t, dir)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("p%d.html", i))
			os.WriteFile(file, []byte("<!DOCTYPE html><html><head><meta charset=utf-8><title>t</title></head><body>"+tt.body+"</body></html>"), 0o644)
			res := b.load(t, "file://"+file)
			got := strings.Join(res.problems, "\n")
			if (tt.problem == "") != (got == "") || !strings.Contains(got, tt.problem) {
				t.Errorf("problems %q, want one with %q", got, tt.problem)
			}
			if overflow := res.ScrollWidth > res.ClientWidth; overflow != tt.overflow {
				t.Errorf("overflow %v (%d > %d), want %v", overflow, res.ScrollWidth, res.ClientWidth, tt.overflow)
			}
			if strings.Join(res.BrokenAnchors, ",") != strings.Join(tt.broken, ",") {
				t.Errorf("broken anchors %v, want %v", res.BrokenAnchors, tt.broken)
			}
			missing := 0
			for _, l := range res.Files {
				u, _ := url.Parse(l)
				if _, err := os.Stat(u.Path); err != nil {
					missing++
				}
			}
			if missing != tt.missing {
				t.Errorf("%d missing files among %v, want %d", missing, res.Files, tt.missing)
			}
		})
	}
}
