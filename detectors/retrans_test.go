package detectors

import (
	"testing"
	"time"
)

// The ranges bracket what this kernel did (write-probe against blackhole,
// 2 samples each): retries2=1 1.76–1.82 s, 2 3.43–3.50 s, 3 6.80–6.82 s,
// 4 6.74–6.83 s, 5 13.50–13.56 s.
func TestRetransmitPredictionHoldsMeasurements(t *testing.T) {
	for _, tc := range []struct {
		retries2       int
		measuredLo, hi float64
	}{
		{1, 1.76, 1.82}, {2, 3.43, 3.50}, {3, 6.80, 6.82}, {4, 6.74, 6.83}, {5, 13.50, 13.56},
	} {
		p := retransmitPrediction(tc.retries2, 200*time.Millisecond)
		if p.Lo.Seconds() > tc.measuredLo || p.Hi.Seconds() < tc.hi {
			t.Errorf("retries2=%d: predicted [%v, %v] does not hold the measured [%v, %v] s", tc.retries2, p.Lo, p.Hi, tc.measuredLo, tc.hi)
		}
	}
}
