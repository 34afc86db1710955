package harness

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halfopen/halfopen/spec"
)

type testParams struct {
	Idle    time.Duration     `param:"idle" default:"1s" min:"1s" help:"idle"`
	Cnt     int               `param:"cnt" default:"3" min:"1" max:"127" help:"count"`
	Percent float64           `param:"percent" default:"10" min:"0" max:"100" help:"loss"`
	Mode    string            `param:"mode" default:"firewall" enum:"firewall|nat" help:"mode"`
	For     time.Duration     `param:"for" optional:"" min:"1ms" help:"heal after"`
	Fast    bool              `param:"fast" help:"flag"`
	Rest    map[string]string `param:"*"`
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		check   func(p *testParams) bool
		wantErr string
	}{
		{spec: "x", check: func(p *testParams) bool {
			return p.Idle == time.Second && p.Cnt == 3 && p.Mode == "firewall" && p.For == 0
		}},
		{spec: "x:idle=2s,cnt=9,mode=nat,for=300ms,fast=true", check: func(p *testParams) bool {
			return p.Idle == 2*time.Second && p.Cnt == 9 && p.Mode == "nat" && p.For == 300*time.Millisecond && p.Fast
		}},
		{spec: "x:cmd=./a,other=1", check: func(p *testParams) bool { return p.Rest["cmd"] == "./a" && p.Rest["other"] == "1" }},
		{spec: "x:percent=150", wantErr: "percent must be at most 100"},
		{spec: "x:percent=-1", wantErr: "percent must be at least 0"},
		{spec: "x:idle=-1s", wantErr: "idle must be at least 1s"},
		{spec: "x:for=-5s", wantErr: "for must be at least 1ms"},
		{spec: "x:idle=soon", wantErr: "not a duration"},
		{spec: "x:cnt=2.5", wantErr: "not a whole number"},
		{spec: "x:mode=bridge", wantErr: "mode is one of firewall, nat"},
		{spec: "x:fast=maybe", wantErr: "not true or false"},
	} {
		sp, err := spec.Parse(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		var p testParams
		err = decode("detector", sp, &p)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Decode(%q) error = %v, want %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !tc.check(&p) {
			t.Errorf("Decode(%q) = %+v, %v", tc.spec, p, err)
		}
	}
}

func TestDecodeRefusesUnknownKeysNamingTheKnownOnes(t *testing.T) {
	type strict struct {
		Every time.Duration `param:"every" default:"1s"`
		Size  int           `param:"size" default:"1"`
	}
	sp, _ := spec.Parse("probe:evrey=1s")
	err := decode("detector", sp, &strict{})
	if err == nil || !strings.Contains(err.Error(), `has no parameter "evrey"; its parameters are every, size`) {
		t.Errorf("error = %v", err)
	}
	sp, _ = spec.Parse("quiet:x=1")
	if err := decode("fault", sp, &struct{}{}); err == nil || !strings.Contains(err.Error(), "takes no parameters") {
		t.Errorf("error = %v", err)
	}
}

func TestSysctlPath(t *testing.T) {
	for _, tc := range []struct{ key, want, wantErr string }{
		{key: "net.ipv4.tcp_retries2", want: "/proc/sys/net/ipv4/tcp_retries2"},
		{key: "kernel.pid_max", wantErr: "not per network namespace"},
		{key: "net.ipv4/../../x", wantErr: "not a dotted"},
		{key: "", wantErr: "not a dotted"},
	} {
		got, err := sysctlPath(tc.key)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("sysctlPath(%q) error = %v, want %q", tc.key, err, tc.wantErr)
			}
			continue
		}
		if got != tc.want || err != nil {
			t.Errorf("sysctlPath(%q) = %q, %v", tc.key, got, err)
		}
	}
}

func TestShard(t *testing.T) {
	var cells []CellConfig
	for i := 0; i < 7; i++ {
		cells = append(cells, CellConfig{Detector: string(rune('a' + i))})
	}
	seen := map[string]int{}
	for i := 1; i <= 3; i++ {
		got, err := Shard(cells, fmt.Sprintf("%d/3", i))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range got {
			seen[c.Detector]++
		}
	}
	if len(seen) != 7 {
		t.Errorf("shards 1..3/3 cover %d of 7 cells", len(seen))
	}
	for d, n := range seen {
		if n != 1 {
			t.Errorf("cell %s is in %d shards", d, n)
		}
	}
	for _, bad := range []string{"0/3", "4/3", "1/0", "x", "1-3"} {
		if _, err := Shard(cells, bad); err == nil {
			t.Errorf("Shard(%q) accepted", bad)
		}
	}
}
