package report

// Add records one finished sample in the cell: it is the one way a sample
// enters a cell, for a run as for a merge. The sample's mistakes are put on
// its own time line (Mistake.Sample is its index), and every figure the
// cell derives from its samples is derived anew (Derive).
func (c *Cell) Add(s Sample, mistakes []Mistake) {
	index := len(c.Samples)
	c.Samples = append(c.Samples, s)
	for _, m := range mistakes {
		m.Sample = index
		c.Mistakes = append(c.Mistakes, m)
	}
	c.Derive()
}

// Derive computes what a cell holds beside its samples and mistakes from
// them: the false positives and the observed connection time (sums over the
// samples), the overhead (from the samples' wire and CPU counters, when
// they carry any: reports from before those counters keep theirs) and the
// QoS metrics.
func (c *Cell) Derive() {
	c.FalsePositives, c.ObservedConnS = 0, 0
	var packets, bytes uint64
	var cpuS float64
	counted := false
	for _, s := range c.Samples {
		c.FalsePositives += s.FalsePositives
		c.ObservedConnS += s.WindowS
		packets += s.Packets
		bytes += s.Bytes
		cpuS += s.WatcherCPUS
		counted = counted || s.Packets > 0 || s.WatcherCPUS > 0
	}
	if counted && c.Kind == KindDisturbance && c.ObservedConnS > 0 {
		mins := c.ObservedConnS / 60
		c.Overhead = &Overhead{
			PacketsPerConnMin: float64(packets) / mins,
			BytesPerConnMin:   float64(bytes) / mins,
			WatcherCPUPercent: 100 * cpuS / c.ObservedConnS,
			WindowS:           c.ObservedConnS,
		}
	}
	c.Summarise()
}
