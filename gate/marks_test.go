package gate_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/gate"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/roles"
)

// markRole is a library with two instants in miniature: it pings its peer
// every 300 ms and marks "echo-late" the first time no echo came for 1 s
// (what a pool's health check notices), while its decision is the socket's
// error once TCP_USER_TIMEOUT (config ut, default 3 s) runs out. It dials
// by itself with a 300 ms timeout, through protocol.Redial, logging every
// attempt that fails, and prints its environment's greeting on stderr.
// Config lie=1 makes it predict a range it cannot meet, so its samples
// surprise.
var markRole = protocol.Watcher{
	Reasons: []string{"ETIMEDOUT"},
	Env:     map[string]string{"MARK_ROLE_GREETING": "hello-from-env"},
	Predict: func(c protocol.Config) (*protocol.Range, error) {
		ut, err := c.Duration("ut", 3*time.Second)
		if c.Get("lie", "") != "" {
			return &protocol.Range{Lo: 100 * time.Millisecond, Hi: 200 * time.Millisecond}, err
		}
		// The first unanswered ping leaves within 300 ms of the fault;
		// the kernel gives up ut after it (tcp_clamp_rto_to_user_timeout).
		return &protocol.Range{Lo: ut, Hi: ut + 1500*time.Millisecond}, err
	},
	Watch: watchMarks,
}

func init() { roles.Register("mark-role", markRole) }

func watchMarks(ctx context.Context, s *protocol.Session) (string, error) {
	fmt.Fprintln(os.Stderr, "greeting", os.Getenv("MARK_ROLE_GREETING"))
	ut, err := s.Config.Duration("ut", 3*time.Second)
	if err != nil {
		return "", err
	}
	attempt := 0
	conn, err := protocol.Redial(ctx, s, func(ctx context.Context) (net.Conn, error) {
		attempt++
		d := net.Dialer{Timeout: 300 * time.Millisecond, KeepAlive: -1}
		c, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			s.Logf("dial attempt %d: %v", attempt, err)
		}
		return c, err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := setUserTimeout(conn, ut); err != nil {
		return "", err
	}
	s.Connected()
	go func() {
		t := time.NewTicker(300 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := conn.Write([]byte("ping\n")); err != nil {
					return
				}
			}
		}
	}()
	late := false
	buf := make([]byte, 512)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, err := conn.Read(buf)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if !late {
				s.Mark("echo-late")
				s.Logf("no echo for 1 s")
				late = true
			}
		default:
			return protocol.Reason(err), nil
		}
	}
}

func setUserTimeout(c net.Conn, d time.Duration) error {
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	}); err != nil {
		return err
	}
	return serr
}

// TestMarksAndLogsInALab measures markRole in real labs: an honest cell
// and a lying one under a blackhole, and a router restart that outlasts
// its user timeout. Each sample records its mark after the fault and
// before its decision, keeps its log (log events, the mark, stderr with
// the role's own environment variable) beside the report, and a
// surprising sample carries the log's last lines; the router restart's
// redial goes through Redial without turning the sample into an error;
// MarkWithin passes and fails on the measured samples.
func TestMarksAndLogsInALab(t *testing.T) {
	if err := harness.Preflight(); err != nil {
		t.Skipf("no lab on this machine: %v", err)
	}
	dir := t.TempDir()
	w, err := report.Create(filepath.Join(dir, "report.json"), &report.Report{Schema: report.SchemaV1, Profile: "gate"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	run := harness.NewRun()
	defer run.Close()
	configs := []harness.CellConfig{
		{Detector: "role:name=mark-role", Fault: "blackhole", Side: protocol.SideClient, Samples: 1},
		{Detector: "role:lie=1,name=mark-role", Fault: "blackhole", Side: protocol.SideClient, Samples: 1, Budget: 6 * time.Second},
		{Detector: "role:name=mark-role,ut=1s", Fault: "router-restart:outage=2s", Side: protocol.SideClient, Samples: 1},
	}
	m, err := harness.NewMatrix(run, configs, harness.Options{Report: w, Seed: 21})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cells := m.Cells()
	for i, c := range cells {
		rec := c.Record()
		if len(rec.Samples) != 1 {
			t.Fatalf("cell %d measured %d samples", i, len(rec.Samples))
		}
		s := rec.Samples[0]
		if s.Error != "" {
			t.Fatalf("cell %d (%s): %s", i, c.Describe(), s.Error)
		}
		if s.Log == "" {
			t.Fatalf("cell %d kept no log", i)
		}
		b, err := os.ReadFile(filepath.Join(dir, s.Log))
		if err != nil {
			t.Fatal(err)
		}
		log := string(b)
		t.Logf("cell %d: %+v\n%s", i, s, log)
		for _, want := range []string{"watcher stderr: greeting hello-from-env", "watcher mark: echo-late", "watcher log: no echo for 1 s"} {
			if !strings.Contains(log, want) {
				t.Errorf("cell %d: the log %s lacks %q", i, s.Log, want)
			}
		}
		if i == 2 {
			// The router restart: a false positive after ut, and the
			// redial during the outage retried until the router came back.
			if s.FalsePositives == 0 || !strings.Contains(log, "watcher log: dial attempt") {
				t.Errorf("router restart: %d false positives, log with failed dial attempts: %v", s.FalsePositives, strings.Contains(log, "dial attempt"))
			}
			continue
		}
		at, ok := s.MarkS("echo-late")
		if !ok || at < 0.5 || at > 1.6 || !s.Detected || *s.Seconds <= at {
			t.Errorf("cell %d: mark echo-late at %v (%v), decision %v after %v: want the mark 0.7–1 s after the fault, before the decision", i, at, ok, s.Detected, s.Seconds)
		}
		res := gate.ResultOf(c.Describe(), c.Budget, rec)
		if ok, err := gate.MarkWithin("echo-late", 2*time.Second).Match(res); !ok || err != nil {
			t.Errorf("cell %d: MarkWithin(echo-late, 2s) = %v, %v", i, ok, err)
		}
		if ok, _ := gate.MarkWithin("echo-late", 300*time.Millisecond).Match(res); ok {
			t.Errorf("cell %d: MarkWithin(echo-late, 300ms) matched a mark at %v s", i, at)
		}
		surprising := rec.Surprise(s) != ""
		if surprising != (i == 1) || (len(s.LogTail) > 0) != surprising {
			t.Errorf("cell %d: surprise %q, log tail %q: want a tail exactly on the lying cell's sample", i, rec.Surprise(s), s.LogTail)
		}
	}
}

// TestMarkWithin judges a named mark over measured samples: every sample
// must have marked it in time; a sample without it, or late, fails with a
// sentence naming it; an errored sample is an error either way.
func TestMarkWithin(t *testing.T) {
	res := func(samples ...report.Sample) *gate.Result {
		return gate.ResultOf("role:name=mark-role × blackhole × client", 8*time.Second,
			report.Cell{Detector: "role:name=mark-role", Fault: "blackhole", Kind: report.KindDetection, BudgetS: 8, Samples: samples})
	}
	decided := func(secs float64, marks ...report.Mark) report.Sample {
		return report.Sample{Detected: true, Seconds: &secs, Reason: "ETIMEDOUT", Marks: marks}
	}
	redial := func(s float64) report.Mark { return report.Mark{Name: "redial", S: s} }
	tests := []struct {
		name    string
		res     *gate.Result
		ok      bool
		want    string // in the failure message, or the error
		wantErr bool
	}{
		{name: "every sample in time", res: res(decided(122, redial(44.4)), decided(121, redial(46.2))), ok: true},
		{name: "the first of its name counts", res: res(decided(122, redial(44), redial(70))), ok: true},
		{name: "one late", res: res(decided(122, redial(44.4)), decided(121, redial(51))), want: `sample 1 marked "redial" 51 s after the fault`},
		{name: "another name only", res: res(decided(122, report.Mark{Name: "ping-late", S: 3})), want: `sample 0 never marked "redial", only "ping-late" at 3 s (it decided "ETIMEDOUT" after 2 min 2 s)`},
		{name: "censored, nothing marked", res: res(report.Sample{Reason: "budget"}), want: "sample 0 marked nothing (it did not decide within its budget)"},
		{name: "an errored sample", res: res(report.Sample{Error: "peer never said connected"}), wantErr: true, want: "could not be measured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := gate.MarkWithin("redial", 50*time.Second)
			ok, err := m.Match(tt.res)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Match = %v, %v; want an error saying %q", ok, err, tt.want)
				}
				return
			}
			if err != nil || ok != tt.ok {
				t.Fatalf("Match = %v, %v; want %v", ok, err, tt.ok)
			}
			if !ok && !strings.Contains(m.FailureMessage(tt.res), tt.want) {
				t.Errorf("failure message %q lacks %q", m.FailureMessage(tt.res), tt.want)
			}
		})
	}
}
