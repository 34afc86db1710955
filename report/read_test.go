package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadTestdata(t *testing.T) {
	r := testdataReport(t)
	if len(r.Cells) != 3 || len(r.Frontier) != 2 || !r.Complete {
		t.Fatalf("read %d cells, %d frontier points, complete %v", len(r.Cells), len(r.Frontier), r.Complete)
	}
	if r.Cells[2].Mistakes[1].Sample != 1 {
		t.Errorf("mistake sample index not read")
	}
	// A report survives a write and a read unchanged.
	path := filepath.Join(t.TempDir(), "again.json")
	data, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	data2, _ := Encode(again)
	if string(data) != string(data2) {
		t.Error("report changed on a write-read round trip")
	}
}

func TestParseRejects(t *testing.T) {
	good := string(testdataBytes(t, "report.json"))
	// edit returns the testdata with old replaced by new once, and the line
	// of new in the result.
	edit := func(old, new string) (string, int) {
		if !strings.Contains(good, old) {
			t.Fatalf("%q not in testdata", old)
		}
		s := strings.Replace(good, old, new, 1)
		return s, strings.Count(s[:strings.Index(s, new)], "\n") + 1
	}
	type tc struct {
		name  string
		data  string
		line  int // 0: any
		wants []string
	}
	var tests []tc
	add := func(name, data string, line int, wants ...string) {
		tests = append(tests, tc{name, data, line, wants})
	}
	add("empty", "  \n", 0, "is empty")
	add("truncated", good[:len(good)/2], strings.Count(good[:len(good)/2], "\n")+1, "truncated")
	add("syntax", "{\n\"schema\": \"halfopen.report/v1\",\n\"cells\": [,]\n}", 3, "not valid JSON")
	add("array", "[1, 2]", 1, "not a halfopen report")
	add("no schema", `{"name": "package.json"}`, 1, `no "schema"`)
	add("other schema", "{\n  \"schema\": \"halfopen.report/v2\", \"cells\": []}", 2, `"halfopen.report/v2"`)
	add("schema not string", `{"schema": 1, "cells": []}`, 1, "schema 1")
	add("no cells", `{"schema": "halfopen.report/v1"}`, 1, `no "cells"`)
	d, l := edit(`"kind": "disturbance"`, `"kind": "storm"`)
	add("unknown kind", d, l, `cells[2]`, `kind "storm"`)
	d, l = edit(`"side": "server"`, `"side": "both"`)
	add("unknown side", d, l, `cells[1]`, `side "both"`)
	d, l = edit(`"path": "direct"`, `"path": "vpn"`)
	add("unknown path", d, l, `path "vpn"`)
	d, l = edit(`"expect": "detect"`, `"expect": "maybe"`)
	add("unknown expect", d, l, `expects "maybe"`)
	d, l = edit(`{ "detected": true, "seconds": 3.512,`, `{ "detected": true, "seconds": null,`)
	add("detected without seconds", d, l, "cells[0]", "samples[1]", "seconds are null")
	d, l = edit(`"seconds": 0.532`, `"seconds": -0.532`)
	add("negative seconds", d, l, "samples[1]", "negative seconds")
	d, l = edit(`{ "detected": false, "seconds": null, "reason": "budget"`, `{ "detected": false, "seconds": 4.2, "reason": "budget"`)
	add("censored with seconds", d, l, "samples[4]", "not detected")
	d, l = edit(`"seconds": 3.981`, `"seconds": "fast"`)
	add("seconds a string", d, l, "seconds", "string")
	d, l = edit(`"false_positives": 2,`, `"false_positives": -1,`)
	add("negative false positives", d, l, "false_positives")
	d, l = edit(`"predicted_s": [3, 4]`, `"predicted_s": [4, 3]`)
	add("reversed prediction", d, l, "predicted_s [4, 3]")
	d, l = edit(`{ "start_s": 45.2, "end_s": 45.5, "sample": 1 }`, `{ "start_s": 45.2, "end_s": 44.5, "sample": 1 }`)
	add("mistake ends before it starts", d, l, "mistakes[1]")
	d, l = edit(`{ "start_s": 45.2, "end_s": 45.5, "sample": 1 }`, `{ "start_s": 45.2, "end_s": 45.5, "sample": 9 }`)
	add("mistake of a missing sample", d, l, "sample 9")
	d, _ = edit(`"fault": "host-crash"`, `"fault": "peer-cable-pull"`)
	d = strings.Replace(d, `"side": "server"`, `"side": "client"`, 1)
	d = strings.Replace(d, `"detector": "heartbeat-inband:interval=200ms,misses=3",
      "fault": "peer-cable-pull"`, `"detector": "keepalive-tuned:intvl=1s,idle=1s,cnt=3",
      "fault": "peer-cable-pull"`, 1)
	add("repeated cell", d, strings.Count(d[:strings.Index(d, "keepalive-tuned:intvl=1s")], "\n"), "cells[1] repeats cells[0]")
	d, l = edit(`"detector": "keepalive-tuned:cnt=3,idle=1s,intvl=1s",
      "fault"`, `"detector": "keepalive-tuned:cnt",
      "fault"`)
	add("bad spec", d, l, "bad detector")
	d, l = edit(`"started": "2026-03-14T09:26:53Z"`, `"started": "yesterday"`)
	add("bad time", d, l, "RFC 3339")
	d, l = edit(`"tolerated_s": 0.35`, `"tolerated_s": -0.35`)
	add("negative frontier", d, l, "frontier[0]")

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("reports/faults.json", []byte(tt.data))
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			ie := wantInputError(t, err, append(tt.wants, "reports/faults.json")...)
			if tt.line > 0 {
				if ie.Line != tt.line {
					t.Errorf("line %d, want %d (%v)", ie.Line, tt.line, err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("line %d", tt.line)) {
					t.Errorf("error %q does not name line %d", err, tt.line)
				}
			}
		})
	}
}

func TestReadMissingFile(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), "nope.json"))
	wantInputError(t, err, "nope.json", "cannot be read")
}

func TestLocate(t *testing.T) {
	data := []byte("{\n \"a\": 1,\n \"cells\": [\n  {\"x\": 1},\n  {\"samples\": [\n   1,\n   {\"s\": 2}\n  ]}\n ]\n}\n")
	tests := []struct {
		path []any
		line int
	}{
		{nil, 1},
		{[]any{"a"}, 2},
		{[]any{"cells"}, 3},
		{[]any{"cells", 1}, 5},
		{[]any{"cells", 1, "samples", 1}, 7},
		{[]any{"cells", 1, "samples", 1, "s"}, 7},
		{[]any{"cells", 7}, 3},
		{[]any{"missing"}, 1},
	}
	for _, tt := range tests {
		if got := lineOf(data, locate(data, tt.path...)); got != tt.line {
			t.Errorf("locate(%v) is on line %d, want %d", tt.path, got, tt.line)
		}
	}
}
