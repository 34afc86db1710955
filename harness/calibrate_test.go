package harness

import "testing"

// The harness's error is what its stamps take; the machine's timer
// lateness is reported beside it, not in it.
func TestHarnessErrorLeavesTimerLatenessOut(t *testing.T) {
	var c calibration
	c.add(probeScheduled, 5, 6, 7)
	if q, probes := c.quantiles(); q != nil || len(probes) != 1 {
		t.Fatalf("timer lateness alone: error %v, %d probes; want no error and one probe", q, len(probes))
	}
	c.add(probeDatagram, 0.1, 0.2)
	c.add(probeFIN, 0.3)
	q, probes := c.quantiles()
	if q == nil || q.N != 3 || q.Max != 0.3 {
		t.Fatalf("harness error %+v, want the 3 stamp errors only (max 0.3 ms)", q)
	}
	if len(probes) != 3 {
		t.Fatalf("%d probes, want 3", len(probes))
	}
	for _, p := range probes {
		if p.Method == "" {
			t.Errorf("probe %s says nothing of how it measures", p.Name)
		}
	}
}
