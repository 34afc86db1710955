package protocol_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/halfopen/halfopen/protocol"
)

// FuzzParseEvent: a protocol line that parses says an event and a positive
// instant, and re-encodes to a line that parses to the same event, under
// the same strictness.
func FuzzParseEvent(f *testing.F) {
	// Every JSON line in the protocol's documentation, strict and not.
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		f.Fatal(err)
	}
	line := regexp.MustCompile(`\{"event":[^\n` + "`" + `]*\}`)
	for _, m := range line.FindAll(doc, -1) {
		f.Add(m, true)
		f.Add(m, false)
	}
	var buf bytes.Buffer
	em := protocol.NewEmitter(&buf)
	em.Emit(protocol.Event{Event: protocol.EventHello, Protocol: 1, Name: "x", PredictedS: &[2]float64{3, 4.5}})
	em.Emit(protocol.Event{Event: "sent", Seq: 3, Bytes: 64})
	em.Emit(protocol.Event{Event: protocol.EventConnected, Local: "198.18.2.2:4000", Remote: "198.18.1.2:7000"})
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		f.Add(append([]byte(nil), sc.Bytes()...), false)
	}
	f.Add([]byte(`{"event":"dead","t_ns":1,"reason":"EOF","event":"hello"}`), true)
	f.Add([]byte(`{"event":"hello","t_ns":1,"protocol":1,"predicted_s":[1e308,1e309]}`), true)
	f.Fuzz(func(t *testing.T, line []byte, strict bool) {
		ev, err := protocol.ParseEvent(line, strict)
		if err != nil {
			if len(err.Error()) > 600 {
				t.Errorf("ParseEvent error is %d bytes long: %.200s...", len(err.Error()), err)
			}
			return
		}
		if ev.Event == "" || ev.TNs <= 0 {
			t.Errorf("ParseEvent(%q) = %+v: no event or no positive instant", line, ev)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("ParseEvent(%q) = %+v, which does not encode: %v", line, ev, err)
		}
		again, err := protocol.ParseEvent(b, strict)
		if err != nil {
			t.Fatalf("ParseEvent(%q) = %+v, re-encoded as %s, which does not parse: %v", line, ev, b, err)
		}
		if !reflect.DeepEqual(again, ev) {
			t.Errorf("ParseEvent(%q) = %+v, re-encoded and parsed %+v", line, ev, again)
		}
	})
}
