package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// printTable prints one row per cell: prediction, every sample, and the
// calibration error the samples were measured with.
func printTable(w io.Writer, m *harness.Matrix) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var detection, disturbance []*harness.Cell
	for _, c := range m.Cells() {
		if c.Kind == report.KindDisturbance {
			disturbance = append(disturbance, c)
		} else {
			detection = append(detection, c)
		}
	}
	if len(detection) > 0 {
		fmt.Fprintln(tw, "DETECTOR\tFAULT\tSIDE\tPREDICTED\tSAMPLES\tREASONS\tCENSORED\tERRORS")
	}
	for _, c := range detection {
		rec := c.Record()
		pred := "never"
		if p := c.Prediction.Seconds(); p != nil {
			pred = report.FormatRange(p[0], p[1])
		}
		var secs []string
		reasons := map[string]int{}
		censored, errs := 0, 0
		for _, s := range rec.Samples {
			switch {
			case s.Error != "":
				errs++
				secs = append(secs, "err")
			case s.Detected:
				secs = append(secs, report.FormatSeconds(*s.Seconds))
				reasons[s.Reason]++
			default:
				censored++
				secs = append(secs, "> "+report.FormatSeconds(c.Budget.Seconds()))
			}
		}
		var rs []string
		for r, n := range reasons {
			rs = append(rs, fmt.Sprintf("%s×%d", r, n))
		}
		sort.Strings(rs)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", c.DetSpec, c.FaultSpec, sideOf(c), pred,
			strings.Join(secs, " "), strings.Join(rs, " "), censored, errs)
	}
	tw.Flush()
	if len(disturbance) > 0 {
		if len(detection) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(tw, "DETECTOR\tFAULT (disturbance)\tSIDE\tFALSE POSITIVES\tOBSERVED\tPACKETS/CONN-MIN\tBYTES/CONN-MIN\tWATCHER CPU\tERRORS")
		for _, c := range disturbance {
			rec := c.Record()
			errs := 0
			for _, s := range rec.Samples {
				if s.Error != "" {
					errs++
				}
			}
			pk, by, cpu := "-", "-", "-"
			if o := rec.Overhead; o != nil {
				pk, by, cpu = fmt.Sprintf("%.1f", o.PacketsPerConnMin), fmt.Sprintf("%.0f", o.BytesPerConnMin), fmt.Sprintf("%.2f%%", o.WatcherCPUPercent)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\n", c.DetSpec, c.FaultSpec, sideOf(c), rec.FalsePositives, report.FormatSeconds(rec.ObservedConnS), pk, by, cpu, errs)
		}
		tw.Flush()
	}
	for _, c := range m.Cells() {
		for _, s := range c.Record().Samples {
			if s.Error != "" {
				fmt.Fprintf(w, "error in %s: %s\n", c.Describe(), s.Error)
			}
		}
	}
	fmt.Fprintf(w, "throughput: %s\n", m.Throughput())
	if q, probes := m.CalibrationMs(); q != nil {
		ms := func(v float64) string { return report.FormatSeconds(v / 1000) }
		fmt.Fprintf(w, "harness timing error: p50 %s, p99 %s (n=%d", ms(q.P50), ms(q.P99), q.N)
		for _, p := range probes {
			fmt.Fprintf(w, "; %s p99 %s", p.Name, ms(p.ErrorMs.P99))
		}
		fmt.Fprintln(w, ")")
	}
}
