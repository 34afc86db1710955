package gate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

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
		{"a detector", Cell{Watcher: Detector("keepalive-tuned:idle=1s,intvl=1s,cnt=3"), Fault: Blackhole()}, "keepalive-tuned:idle=1s,intvl=1s,cnt=3", ""},
		{"a detector in flight", Cell{Watcher: Detector("read-eof"), Fault: Blackhole(), Phase: tcprules.PhaseInFlight}, "read-eof", ""},
		{"a detector's peer", Cell{Watcher: Detector("external:cmd=./w.py,idle=1s"), Peer: Self, Fault: Blackhole()}, "external:cmd=./w.py,idle=1s,peer=self", ""},
		{"a detector's service", Cell{Watcher: Detector("external:cmd=./w.py"), Peer: Peer{name: "redis"}, Fault: Blackhole()}, "external:cmd=./w.py,peer=service:redis", ""},
		{"a detector without a peer", Cell{Watcher: Detector("read-eof"), Peer: Self, Fault: Blackhole()}, "", `detector "read-eof" with the peer self: detector read-eof takes no parameters, but was given "peer"`},
		{"a peer given twice", Cell{Watcher: Detector("external:cmd=./w.py,peer=self"), Peer: Self, Fault: Blackhole()}, "", "names its peer in its spec and the cell names another"},
		{"a detector's config", Cell{Watcher: Detector("read-eof"), Fault: Blackhole(), Config: map[string]string{"x": "1"}}, "", "takes its parameters in its spec"},
		{"a misspelt detector", Cell{Watcher: Detector("read-eff"), Fault: Blackhole()}, "", `no detector is called "read-eff"`},
		{"a detector's bad value", Cell{Watcher: Detector("keepalive-tuned:idle=soon"), Fault: Blackhole()}, "", "idle=soon is not a duration"},
		{"a detector in a bad phase", Cell{Watcher: Detector("read-eof"), Fault: Blackhole(), Phase: "busy"}, "", `phase "busy" is neither`},
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

// TestCellLabels: an entry is labelled with its fault's name and family,
// its side, and a Detector's name and family; a role or a program adds
// nothing of its own.
func TestCellLabels(t *testing.T) {
	tests := []struct {
		name string
		cell Cell
		want []string
	}{
		{"a role", Cell{Watcher: Role{name: "w"}, Fault: Blackhole()}, []string{"blackhole", "client"}},
		{"a program, server side", Cell{Watcher: Program("./w.py", false), Fault: HostCrash(), Side: SideServer}, []string{"host", "host-crash", "server"}},
		{"a detector", Cell{Watcher: Detector("keepalive-tuned:idle=1s"), Fault: RouterRestart(time.Second)}, []string{"client", "keepalive", "keepalive-tuned", "router", "router-restart"}},
		{"a misspelt detector", Cell{Watcher: Detector("no such"), Fault: Blackhole()}, []string{"blackhole", "client"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unique(cellLabels(tt.cell)); !slices.Equal(got, tt.want) {
				t.Errorf("cellLabels = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAllowEmpty: a suite that allows an empty run (one of several run
// together) passes having measured nothing; one that does not fails.
func TestAllowEmpty(t *testing.T) {
	defer func(s Suite) { gateSuite = s }(gateSuite)
	empty := ginkgo.Report{SuiteSucceeded: true, PreRunStats: types.PreRunStats{TotalSpecs: 4}}
	for _, tt := range []struct {
		allow bool
		fails bool
	}{{false, true}, {true, false}} {
		gateSuite = Suite{AllowEmpty: tt.allow}
		if why := measuredNothing(empty); (why != "") != tt.fails {
			t.Errorf("AllowEmpty %v: measuredNothing = %q", tt.allow, why)
		}
	}
}

// TestTablePanicsOnBadClaims: a claim that reads nothing, or reads a name
// that is no cell entry of its table, is a bug of the table's, told when
// it is declared.
func TestTablePanicsOnBadClaims(t *testing.T) {
	cell := Entry("a", Cell{Watcher: Role{name: "w"}, Fault: Blackhole()})
	check := func(map[string]*Result) {}
	for name, tc := range map[string]struct {
		entries []TableEntry
		want    string
	}{
		"no entry":      {[]TableEntry{cell, Claim("c", nil, check)}, `claim "c" names no entry`},
		"unknown entry": {[]TableEntry{cell, Claim("c", []string{"b"}, check)}, `claim "c" names "b", which is no cell entry`},
		"a claim":       {[]TableEntry{cell, Claim("c", []string{"a"}, check), Claim("d", []string{"c"}, check)}, `claim "d" names "c", which is no cell entry`},
		"a name twice":  {[]TableEntry{cell, cell}, `entry "a" given twice`},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Errorf("DescribeTable panicked with %v, want %q", r, tc.want)
				}
			}()
			DescribeTable("t", tc.entries)
		})
	}
}
