package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEmitterGoldenLines(t *testing.T) {
	tests := []struct {
		name string
		emit func(*Emitter)
		want string
	}{
		{"hello with a range", func(e *Emitter) {
			e.Emit(Event{Event: EventHello, TNs: 42, Protocol: Version, Name: "mypool", PredictedS: &[2]float64{9, 12.5}})
		}, `{"event":"hello","t_ns":42,"protocol":1,"name":"mypool","predicted_s":[9,12.5]}`},
		{"hello without a range says null", func(e *Emitter) {
			e.Emit(Event{Event: EventHello, TNs: 42, Protocol: Version, Name: "never"})
		}, `{"event":"hello","t_ns":42,"protocol":1,"name":"never","predicted_s":null}`},
		{"ready", func(e *Emitter) { e.Emit(Event{Event: EventReady, TNs: 7}) }, `{"event":"ready","t_ns":7}`},
		{"connected", func(e *Emitter) { e.Emit(Event{Event: EventConnected, TNs: 7}) }, `{"event":"connected","t_ns":7}`},
		{"dead", func(e *Emitter) { e.Emit(Event{Event: EventDead, TNs: 7, Reason: "ETIMEDOUT"}) }, `{"event":"dead","t_ns":7,"reason":"ETIMEDOUT"}`},
		{"log escapes", func(e *Emitter) {
			e.Emit(Event{Event: EventLog, TNs: 7, Msg: "a \"quote\"\nand a line"})
		}, `{"event":"log","t_ns":7,"msg":"a \"quote\"\nand a line"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			tt.emit(NewEmitter(&out))
			if got := out.String(); got != tt.want+"\n" {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestEmitterHelpers parses each helper's line back as JSON and checks the
// fields protocol v1 asks for, and that t_ns is CLOCK_MONOTONIC read at the
// moment of the event.
func TestEmitterHelpers(t *testing.T) {
	tests := []struct {
		name string
		emit func(*Emitter)
		want map[string]any // besides t_ns
	}{
		{"hello range", func(e *Emitter) { e.Hello("ka", &Range{Lo: 3 * time.Second, Hi: 4500 * time.Millisecond}) },
			map[string]any{"event": "hello", "protocol": 1.0, "name": "ka", "predicted_s": []any{3.0, 4.5}}},
		{"hello never", func(e *Emitter) { e.Hello("ka", nil) },
			map[string]any{"event": "hello", "protocol": 1.0, "name": "ka", "predicted_s": nil}},
		{"ready", (*Emitter).Ready, map[string]any{"event": "ready"}},
		{"connected", (*Emitter).Connected, map[string]any{"event": "connected"}},
		{"dead", func(e *Emitter) { e.Dead("ECONNRESET") }, map[string]any{"event": "dead", "reason": "ECONNRESET"}},
		{"log", func(e *Emitter) { e.Logf("%d probes", 3) }, map[string]any{"event": "log", "msg": "3 probes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			before := Now()
			tt.emit(NewEmitter(&out))
			after := Now()
			var got map[string]any
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("line %q: %v", out.String(), err)
			}
			tns, ok := got["t_ns"].(float64)
			if !ok || int64(tns) < before || int64(tns) > after+1000 { // float64 rounds the last digits
				t.Errorf("t_ns %v is not CLOCK_MONOTONIC between %d and %d", got["t_ns"], before, after)
			}
			delete(got, "t_ns")
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEmitterConcurrent: lines written from many goroutines stay whole, and
// each writer's stamps do not go backwards.
func TestEmitterConcurrent(t *testing.T) {
	var out bytes.Buffer
	e := NewEmitter(&out)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e.Logf("%d %d %s", w, i, strings.Repeat("x", 100))
			}
		}()
	}
	wg.Wait()
	last := map[string]int64{}
	n := 0
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d %q: %v", n, sc.Text(), err)
		}
		w := strings.Fields(ev.Msg)[0]
		if ev.TNs <= 0 || ev.TNs < last[w] {
			t.Fatalf("writer %s: t_ns %d after %d", w, ev.TNs, last[w])
		}
		last[w] = ev.TNs
		n++
	}
	if n != writers*each {
		t.Fatalf("%d lines, want %d", n, writers*each)
	}
}

func TestNowIsMonotonic(t *testing.T) {
	a := Now()
	time.Sleep(10 * time.Millisecond)
	b := Now()
	if a <= 0 || b-a < int64(10*time.Millisecond) {
		t.Fatalf("Now went from %d to %d over a 10 ms sleep", a, b)
	}
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		line    string
		strict  bool
		want    string
		wantErr string
	}{
		{line: `{"event":"hello","t_ns":5,"protocol":1,"name":"x","predicted_s":[3,4]}`, strict: true, want: EventHello},
		{line: `{"event":"hello","t_ns":5,"protocol":1,"name":"x","predicted_s":null}`, strict: true, want: EventHello},
		{line: `{"event":"dead","t_ns":9,"reason":"ETIMEDOUT"}`, strict: true, want: EventDead},
		{line: `{"event":"sent","t_ns":9,"seq":1}`, strict: false, want: "sent"},
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
		{line: `{"event":"mark","t_ns":9,"name":"redial"}`, strict: true, want: EventMark},
		{line: `{"event":"mark","t_ns":9}`, strict: true, wantErr: "mark without a name"},
	}
	for _, tc := range tests {
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

// TestEmitterLinesParse: what the emitter writes, the parser reads back,
// the agents' own fields included, with Now's instant unless the event
// carries its own.
func TestEmitterLinesParse(t *testing.T) {
	var buf bytes.Buffer
	em := NewEmitter(&buf)
	before := Now()
	em.Emit(Event{Event: EventReady})
	em.Emit(Event{Event: EventDead, Reason: "EOF", TNs: 42})
	em.Emit(Event{Event: EventConnected, Local: "198.18.2.2:4000", Remote: "198.18.1.2:7000"})
	em.Emit(Event{Event: EventHello, Protocol: Version, Name: "x", Msg: "kept", Seq: 3})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
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
	ev, err = ParseEvent([]byte(lines[2]), false)
	if err != nil || ev.Local != "198.18.2.2:4000" || ev.Remote != "198.18.1.2:7000" {
		t.Errorf("connected with addresses = %+v, %v", ev, err)
	}
	ev, err = ParseEvent([]byte(lines[3]), false)
	if err != nil || ev.Msg != "kept" || ev.Seq != 3 || ev.PredictedS != nil {
		t.Errorf("hello with the agents' fields = %+v, %v (line %s)", ev, err, lines[3])
	}
}
