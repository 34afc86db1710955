package gate

import (
	"strings"
	"testing"

	"github.com/halfopen/halfopen/tcprules"
)

// TestCellDetector: a cell's role spec carries its config, and an
// in-flight cell names its phase in it (so the role predicts for it and
// the report tells it from the idle cell); reserved keys and unknown
// phases are refused with one sentence.
func TestCellDetector(t *testing.T) {
	tests := []struct {
		name    string
		cell    Cell
		want    string
		wantErr string
	}{
		{"idle by default", Cell{Watcher: Role{name: "w"}, Fault: Blackhole(), Config: map[string]string{"idle": "1s"}}, "role:idle=1s,name=w,peer=builtin", ""},
		{"idle said", Cell{Watcher: Role{name: "w"}, Peer: Peer{name: "redis"}, Fault: Blackhole(), Phase: tcprules.PhaseIdle}, "role:name=w,peer=redis", ""},
		{"in flight", Cell{Watcher: Role{name: "w"}, Peer: Self, Fault: Blackhole(), Phase: tcprules.PhaseInFlight, Config: map[string]string{"usertimeout": "5s"}},
			"role:name=w,peer=self,phase=in-flight,usertimeout=5s", ""},
		{"an unknown phase", Cell{Watcher: Role{name: "w"}, Fault: Blackhole(), Phase: "busy"}, "", `phase "busy" is neither "idle" nor "in-flight"`},
		{"phase is the cell's", Cell{Watcher: Role{name: "w"}, Fault: Blackhole(), Config: map[string]string{"phase": "in-flight"}}, "", `config key "phase" is taken by the cell itself`},
		{"a program", Cell{Watcher: Program("./w.py", false), Peer: Peer{name: "http"}, Fault: Blackhole(), Config: map[string]string{"idle": "1s"}},
			"external:cmd=./w.py,idle=1s,peer=service:http,privileged=false", ""},
		{"a program's own keys", Cell{Watcher: Program("./w.py", false), Fault: Blackhole(), Config: map[string]string{"cmd": "x"}}, "", `config key "cmd" is taken by the cell itself`},
		{"name is the cell's", Cell{Watcher: Role{name: "w"}, Fault: Blackhole(), Config: map[string]string{"name": "x"}}, "", `config key "name" is taken by the cell itself`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cell.detector()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("detector() = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("detector() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestCellsShareTheRunsSeed: cells measured together share one run, so two
// different seeds among them are bad input, refused before any lab.
func TestCellsShareTheRunsSeed(t *testing.T) {
	_, err := RunAll(t.Context(), Cell{Watcher: Role{name: "w"}, Fault: Blackhole(), Seed: 7}, Cell{Watcher: Role{name: "w"}, Fault: HostCrash(), Seed: 8})
	if err == nil || !strings.Contains(err.Error(), "seed 8, but the cells measured together share one run and its seed, 7") {
		t.Fatalf("RunAll: %v, want the seeds refused", err)
	}
}
