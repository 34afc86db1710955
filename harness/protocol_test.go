package harness

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		line    string
		strict  bool
		want    string
		wantErr string
	}{
		{line: `{"event":"hello","t_ns":5,"protocol":1,"name":"x","predicted_s":[3,4]}`, strict: true, want: EventHello},
		{line: `{"event":"hello","t_ns":5,"protocol":1,"name":"x","predicted_s":null}`, strict: true, want: EventHello},
		{line: `{"event":"dead","t_ns":9,"reason":"ETIMEDOUT"}`, strict: true, want: EventDead},
		{line: `{"event":"sent","t_ns":9,"seq":1}`, strict: false, want: EventSent},
		{line: `{"event":"sent","t_ns":9}`, strict: true, wantErr: "not one of hello"},
		{line: `hello world`, wantErr: "not a JSON object"},
		{line: `[1,2]`, wantErr: "not a JSON object"},
		{line: `{"t_ns":5}`, wantErr: `no "event"`},
		{line: `{"event":"ready"}`, wantErr: `"t_ns"`},
		{line: `{"event":"ready","t_ns":-3}`, wantErr: `"t_ns"`},
		{line: `{"event":"ready","t_ns":"5"}`, wantErr: "does not follow protocol v1"},
		{line: `{"event":"hello","t_ns":5,"protocol":2}`, wantErr: "speaks protocol 2"},
		{line: `{"event":"hello","t_ns":5,"protocol":1,"predicted_s":[4,3]}`, wantErr: "not a range"},
		{line: `{"event":"dead","t_ns":5}`, wantErr: "without a reason"},
	} {
		ev, err := ParseEvent([]byte(tc.line), tc.strict)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseEvent(%s) error = %v, want %q", tc.line, err, tc.wantErr)
			}
			continue
		}
		if err != nil || ev.Event != tc.want {
			t.Errorf("ParseEvent(%s) = %+v, %v", tc.line, ev, err)
		}
	}
}

func TestEmitterStampsMonotonicInstants(t *testing.T) {
	var buf bytes.Buffer
	em := NewEmitter(&buf)
	before := Now()
	em.Emit(Event{Event: EventReady})
	em.Emit(Event{Event: EventDead, Reason: "EOF", TNs: 42})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines", len(lines))
	}
	ev, err := ParseEvent([]byte(lines[0]), true)
	if err != nil || ev.TNs < before || ev.TNs > Now() {
		t.Errorf("ready = %+v, %v; want an instant between %d and now", ev, err, before)
	}
	ev, err = ParseEvent([]byte(lines[1]), true)
	if err != nil || ev.TNs != 42 {
		t.Errorf("dead kept its own instant? %+v, %v", ev, err)
	}
}

func TestErrnoName(t *testing.T) {
	if got := ErrnoName(nil); got != "EOF" {
		t.Errorf("nil → %q", got)
	}
}
