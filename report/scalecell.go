package report

import (
	"fmt"
	"math"
)

// judgeScale is a scale cell's outcome: the server freed every connection
// with the p99 of the time to free it inside the predicted range (± the
// tolerance), or, where theory says never, freed none within the budget.
func (c *Cell) judgeScale() Verdict {
	s := c.Scale
	held := s.Conns - s.Freed
	if c.Expect == ExpectNever {
		if s.Freed > 0 {
			return Verdict{OutcomeOutside, fmt.Sprintf("%d freed", s.Freed), fmt.Sprintf("theory says never, but the server freed %d of %d connections", s.Freed, s.Conns)}
		}
		return Verdict{OutcomeNever, "never", fmt.Sprintf("all %d connections still held after %s, as theory says", s.Conns, FormatSeconds(c.BudgetS))}
	}
	if held > 0 || s.FreeMs == nil {
		return Verdict{OutcomeOutside, fmt.Sprintf("%d held", held), fmt.Sprintf("%d of %d connections not freed within the budget %s", held, s.Conns, FormatSeconds(c.BudgetS))}
	}
	p99 := s.FreeMs.P99 / 1000
	short := "p99 " + FormatSeconds(p99)
	if p := c.PredictedS; p != nil {
		tol := PredictionTolerance.Seconds()
		if p99 < p[0]-tol || p99 > p[1]+tol {
			return Verdict{OutcomeOutside, short, fmt.Sprintf("all %d connections freed, p99 %s outside the predicted %s (± %s)", s.Conns, FormatSeconds(p99), FormatRange(p[0], p[1]), FormatSeconds(tol))}
		}
		return Verdict{OutcomeWithin, short, fmt.Sprintf("all %d connections freed, p99 %s inside the predicted %s", s.Conns, FormatSeconds(p99), FormatRange(p[0], p[1]))}
	}
	return Verdict{OutcomeMeasured, short, fmt.Sprintf("all %d connections freed, p99 %s; theory gives no range", s.Conns, FormatSeconds(p99))}
}

// scaleColumns are a scale cell's columns in its fault's table: design,
// connections, freed, the p50, p99 and max of the time from the fault to
// the server's close(), and the server's memory per connection.
func scaleColumns(c *Cell) [7]string {
	s := c.Scale
	if s == nil {
		return [7]string{"–", "–", "–", "–", "–", "–", "–"}
	}
	out := [7]string{s.Design, formatCount(float64(s.Conns)), fmt.Sprintf("%s of %s", formatCount(float64(s.Freed)), formatCount(float64(s.Conns))), "–", "–", "–", "–"}
	if q := s.FreeMs; q != nil {
		out[3], out[4], out[5] = formatMillis(q.P50), formatMillis(q.P99), formatMillis(q.Max)
	}
	if per := s.RSSPerConn(); per > 0 {
		out[6] = formatBytes(per)
	}
	return out
}

// formatBytes writes a byte count in B, KiB or MiB, three figures.
func formatBytes(v float64) string {
	switch {
	case v >= 1<<20:
		return trimFloat(sig3(v/(1<<20))) + " MiB"
	case v >= 1<<10:
		return trimFloat(sig3(v/(1<<10))) + " KiB"
	}
	return trimFloat(math.Round(v)) + " B"
}
