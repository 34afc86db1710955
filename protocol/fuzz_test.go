package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParseConfig: HALFOPEN_CONFIG that parses re-encodes to text that
// parses equal; an error is one bounded sentence.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{``, `{}`, `null`, `[]`, `{"idle":"1s","intvl":"1s","cnt":"3"}`, `{"a":1}`, `{"a":"\u00e9"}`, `{"a":"b","a":"c"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConfig(text)
		if err != nil {
			if n := len(err.Error()); n > 1024 {
				t.Errorf("ParseConfig error is %d bytes long", n)
			}
			return
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(string(b))
		if err != nil {
			t.Fatalf("ParseConfig(%q) = %v, re-encoded as %s, which does not parse: %v", text, c, b, err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Errorf("ParseConfig(%q) = %v, re-encoded and parsed %v", text, c, again)
		}
	})
}
