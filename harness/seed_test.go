package harness

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/halfopen/halfopen/report"
)

// TestSeedsIndependentOfPosition: a gate-like cell's samples get the same
// seeds and strata wherever it sits in its matrix, with the run seed 0 a
// gate passes, and other seeds under another run seed.
func TestSeedsIndependentOfPosition(t *testing.T) {
	gate := CellConfig{Detector: "keepalive-tuned:idle=1s,intvl=1s,cnt=4", Fault: "blackhole", Samples: 3}
	other := CellConfig{Detector: "read-eof", Fault: "graceful-close", Samples: 3}
	inflight := gate
	inflight.Phase = "in-flight"
	seedsOf := func(run int64, configs ...CellConfig) map[string][][2]int64 {
		t.Helper()
		m := &Matrix{opt: Options{Seed: run, Calibrations: -1}}
		for _, c := range configs {
			cell, err := Resolve(c)
			if err != nil {
				t.Fatal(err)
			}
			m.cells = append(m.cells, cell)
		}
		out := map[string][][2]int64{}
		for _, j := range m.schedule() {
			k := j.cell.Key().String()
			for len(out[k]) <= j.index {
				out[k] = append(out[k], [2]int64{})
			}
			out[k][j.index] = [2]int64{j.seed, int64(j.stratum)}
		}
		return out
	}
	first := seedsOf(0, gate, other)
	last := seedsOf(0, other, inflight, gate)
	key := mustCell(t, gate).Key().String()
	if !slices.Equal(first[key], last[key]) {
		t.Errorf("the cell's (seed, stratum) per sample moved with its position: %v first, %v last", first[key], last[key])
	}
	if ik := mustCell(t, inflight).Key().String(); slices.Equal(last[ik], last[key]) {
		t.Errorf("the in-flight cell shares the idle cell's seeds %v", last[ik])
	}
	if again := seedsOf(7, gate); slices.Equal(again[key], first[key]) {
		t.Errorf("run seeds 0 and 7 gave the same samples %v", first[key])
	}
}

func mustCell(t *testing.T, c CellConfig) *Cell {
	t.Helper()
	cell, err := Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	return cell
}

// TestStratifiedIdle: n samples of a cell cover the n strata of the idle
// range once each, for every n and seed, so that 3 samples always include
// one in the first third (the early end) and one in the last.
func TestStratifiedIdle(t *testing.T) {
	k := report.KeyOf("keepalive-tuned:idle=1s", "blackhole", "client", report.KindDetection)
	for _, n := range []int{1, 2, 3, 5, 8} {
		for run := range int64(50) {
			strata := strata(run, k, n)
			seen := make([]bool, n)
			for i, s := range strata {
				rng := rand.New(rand.NewPCG(uint64(sampleSeed(run, k, i)), 1))
				idle := stratifiedIdle(rng, s, n)
				lo := time.Duration(int64(MaxRandomIdle) / int64(n) * int64(s))
				hi := lo + MaxRandomIdle/time.Duration(n)
				if s == n-1 {
					hi = MaxRandomIdle + 1
				}
				if idle < lo || idle >= hi {
					t.Fatalf("n=%d run %d: sample %d drew %v outside its stratum %d [%v, %v)", n, run, i, idle, s, lo, hi)
				}
				seen[s] = true
			}
			if slices.Contains(seen, false) {
				t.Fatalf("n=%d run %d: strata %v do not cover all %d", n, run, strata, n)
			}
		}
	}
}

// TestRunSeed: HALFOPEN_SEED fixes a suite's or gate's seed; a bad one is
// one sentence naming the variable.
func TestRunSeed(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    int64
		wantErr string
	}{
		{"42", 42, ""},
		{"-7", -7, ""},
		{"soon", 0, `HALFOPEN_SEED="soon" is not an integer seed`},
	} {
		t.Setenv(envSeed, tc.env)
		got, err := RunSeed()
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: %v, %v; want the error %q", tc.env, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %d", tc.env, got, err, tc.want)
		}
	}
}
