package harness

import (
	"context"
	"testing"
	"time"
)

func TestNextPoolLimit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		limit, lo, hi int
		p99           float64
		waited        bool
		want          int
	}{
		{"low error, jobs waiting: grow", 8, 4, 64, 0.2, true, 10},
		{"low error, nobody waiting: stay", 8, 4, 64, 0.2, false, 8},
		{"between the marks: stay", 8, 4, 64, 0.5, true, 8},
		{"high error: shrink by a quarter", 20, 4, 64, 1.5, true, 15},
		{"high error at the floor: stay", 4, 4, 64, 3, true, 4},
		{"low error at the ceiling: stay", 64, 4, 64, 0.1, true, 64},
	} {
		if got := nextPoolLimit(tc.limit, tc.lo, tc.hi, tc.p99, tc.waited); got != tc.want {
			t.Errorf("%s: nextPoolLimit(%d, p99 %.1f ms) = %d, want %d", tc.name, tc.limit, tc.p99, got, tc.want)
		}
	}
}

// TestPoolLimitsWhatRuns: no more jobs hold a slot than the limit, a
// raised limit lets a waiting job in at once, and a cancelled wait ends.
func TestPoolLimitsWhatRuns(t *testing.T) {
	p := newPool(1, 1, 4)
	ctx := context.Background()
	if !p.acquire(ctx) {
		t.Fatal("the first slot was refused")
	}
	got := make(chan bool, 1)
	go func() { got <- p.acquire(ctx) }()
	select {
	case <-got:
		t.Fatal("a second job ran past a limit of 1")
	case <-time.After(20 * time.Millisecond):
	}
	p.adjust(0.1) // low error and a job waited: the limit grows
	if ok := <-got; !ok {
		t.Fatal("the waiting job was refused after the limit grew")
	}
	if p.maxUsed() != 1+poolStep {
		t.Errorf("highest limit %d, want %d", p.maxUsed(), 1+poolStep)
	}
	cctx, cancel := context.WithCancel(ctx)
	p.adjust(5) // high error: back to the floor, 1, with 2 running
	go func() { got <- p.acquire(cctx) }()
	cancel()
	if ok := <-got; ok {
		t.Error("a cancelled wait took a slot")
	}
}
