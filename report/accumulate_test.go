package report

import "testing"

func TestAddPutsMistakesOnTheirSampleTimeLine(t *testing.T) {
	c := Cell{Kind: KindDisturbance}
	// Three samples of 10 s each; the first and the last each made two
	// mistakes, 1 s and 4 s into their own windows.
	line := []Mistake{{StartS: 1, EndS: 1.5}, {StartS: 4, EndS: 4.5}}
	c.Add(Sample{Reason: "heartbeat", Detected: true, FalsePositives: 2, WindowS: 10, Packets: 60, Bytes: 3600, WatcherCPUS: 0.1}, line)
	c.Add(Sample{Reason: "survived", WindowS: 10, Packets: 60, Bytes: 3600, WatcherCPUS: 0.1}, nil)
	c.Add(Sample{Reason: "heartbeat", Detected: true, FalsePositives: 2, WindowS: 10, Packets: 60, Bytes: 3600, WatcherCPUS: 0.1}, line)

	var samples []int
	for _, m := range c.Mistakes {
		samples = append(samples, m.Sample)
	}
	if len(samples) != 4 || samples[0] != 0 || samples[1] != 0 || samples[2] != 2 || samples[3] != 2 {
		t.Fatalf("mistakes lie on time lines %v, want [0 0 2 2]", samples)
	}
	if c.FalsePositives != 4 || c.ObservedConnS != 30 {
		t.Errorf("false positives %d, observed %g s; want 4 and 30 s", c.FalsePositives, c.ObservedConnS)
	}
	// T_MR pools the 3 s gap of each line; a gap across lines (sample 0's
	// last mistake to sample 2's first) would pull the mean away from 3.
	if c.QoS == nil || c.QoS.MistakeRecurS == nil || !near(*c.QoS.MistakeRecurS, 3) {
		t.Errorf("QoS %+v, want T_MR 3 s", c.QoS)
	}
	// 180 packets over 0.5 connection-minutes; 0.3 s of CPU over 30 s.
	if o := c.Overhead; o == nil || !near(o.PacketsPerConnMin, 360) || !near(o.WatcherCPUPercent, 1) {
		t.Errorf("overhead %+v, want 360 packets per connection-minute and 1 %% CPU", c.Overhead)
	}
}
