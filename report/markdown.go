package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Markdown writes the report as Markdown: the run and its environment
// (calibration and sysctls included), then one table per cell kind, then
// the tolerance-vs-detection frontier.
func Markdown(w io.Writer, r *Report) error {
	var b strings.Builder
	b.WriteString("# halfopen report\n\n")
	if !r.Complete {
		b.WriteString("> **Incomplete:** this run was still writing, or was stopped, when this report was made; every sample it measured is here.\n\n")
	}
	b.WriteString("## Environment\n\n")
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", k, mdEscape(v))
		}
	}
	row("schema", r.Schema)
	row("profile", r.Profile)
	if !r.Started.IsZero() {
		row("started", r.Started.Format(time.RFC3339))
	}
	row("seed", fmt.Sprint(r.Seed))
	row("shard", r.Shard)
	row("kernel", r.Environment.Kernel)
	row("go", r.Environment.Go)
	row("halfopen", r.Environment.Halfopen)
	if r.Environment.CPUs > 0 {
		row("cpus", fmt.Sprint(r.Environment.CPUs))
	}
	if r.Environment.Pool > 0 {
		row("labs at once", fmt.Sprint(r.Environment.Pool))
	}
	if q := r.Environment.CalibrationErrorMs; q != nil {
		row("harness error", quantilesText(*q))
	} else {
		row("harness error", "not measured")
	}
	b.WriteString("\n")
	if len(r.Environment.Calibration) > 0 {
		b.WriteString("### Calibration\n\n| probe | method | error |\n|---|---|---|\n")
		for _, p := range r.Environment.Calibration {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mdEscape(p.Name), mdEscape(p.Method), mdEscape(quantilesText(p.ErrorMs)))
		}
		b.WriteString("\n")
	}
	if len(r.Environment.Sysctls) > 0 {
		b.WriteString("### Sysctls in the lab's namespaces\n\n| sysctl | value |\n|---|---|\n")
		for _, k := range sortedKeys(r.Environment.Sysctls) {
			fmt.Fprintf(&b, "| `%s` | `%s` |\n", mdCode(k), mdCode(r.Environment.Sysctls[k]))
		}
		b.WriteString("\n")
	}
	for _, kind := range cellKinds(r) {
		writeKindTable(&b, r, kind)
	}
	if len(r.Frontier) > 0 {
		b.WriteString("## Tolerance vs. detection\n\nNo detector detects death sooner than the longest outage it tolerates; the ratio (≤ 1) says how close it comes.\n\n")
		b.WriteString("| detector | tolerated outage | detection | ratio | note |\n|---|---|---|---|---|\n")
		for _, p := range r.Frontier {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mdEscape(p.Detector), durationText(p.ToleratedS), durationText(p.DetectionS), ratioText(p), mdEscape(p.Note))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// kindTitles names the cell kinds in their table headings.
var kindTitles = map[Kind]string{
	KindDetection:   "Detection: the peer is dead",
	KindDisturbance: "Disturbances: the peer is alive",
	KindCalibration: "Calibration",
}

// cellKinds returns the kinds present in r: known kinds first, in order.
func cellKinds(r *Report) []Kind {
	present := map[Kind]bool{}
	for i := range r.Cells {
		present[r.Cells[i].Kind] = true
	}
	var kinds []Kind
	for _, k := range knownKinds {
		if present[k] {
			kinds = append(kinds, k)
			delete(present, k)
		}
	}
	return append(kinds, sortedKeys(present)...)
}

func writeKindTable(b *strings.Builder, r *Report, kind Kind) {
	title := kindTitles[kind]
	if title == "" {
		title = string(kind)
	}
	fmt.Fprintf(b, "## %s\n\n", title)
	b.WriteString("Times in seconds; p50, p95 and max are nearest-rank quantiles of the detected samples; censored samples (no decision within the budget) are counted, never timed.\n\n")
	head := "| detector | fault | side | predicted | n | p50 | p95 | max | censored | errors | reasons | false positives | observed conn-s | overhead | note |\n"
	sep := "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
	if kind == KindDisturbance {
		head = strings.TrimSuffix(head, " note |\n") + " mistakes/conn-h | T_MR | T_M | P_A | note |\n"
		sep = strings.TrimSuffix(sep, "\n") + "---|---|---|---|\n"
	}
	b.WriteString(head)
	b.WriteString(sep)
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Kind != kind {
			continue
		}
		cols := cellColumns(c)
		if kind == KindDisturbance {
			note := cols[len(cols)-1]
			cols = append(cols[:len(cols)-1], qosColumns(c)...)
			cols = append(cols, note)
		}
		for j := range cols {
			cols[j] = mdEscape(cols[j])
		}
		b.WriteString("| " + strings.Join(cols, " | ") + " |\n")
	}
	b.WriteString("\n")
}

// cellColumns returns a cell's row as text: detector, fault, side,
// predicted, n, p50, p95, max, censored, errors, reasons, false
// positives, observed conn-s, overhead, note.
func cellColumns(c *Cell) []string {
	st := c.Stats()
	side := c.Side
	if c.Path == "toxiproxy" {
		side += " (via toxiproxy)"
	}
	censored := fmt.Sprint(st.Censored)
	if st.Censored > 0 && c.BudgetS > 0 {
		censored += fmt.Sprintf(" (> %gs)", c.BudgetS)
	}
	if c.Expect == "never" {
		censored += ", expected"
	}
	return []string{
		c.Detector, c.Fault, side, predictedText(c),
		fmt.Sprint(st.N), secondsPtr(st.P50), secondsPtr(st.P95), secondsPtr(st.Max),
		censored, fmt.Sprint(st.Errors), reasonsText(st.Reasons),
		fmt.Sprint(c.FalsePositives), fmt.Sprintf("%g", c.ObservedConnS),
		overheadText(c.Overhead), c.Note,
	}
}

func qosColumns(c *Cell) []string {
	q := c.QoS
	if q == nil && c.ObservedConnS > 0 {
		cp := *c
		cp.Summarise()
		q = cp.QoS
	}
	if q == nil {
		return []string{"–", "–", "–", "–"}
	}
	opt := func(p *float64) string {
		if p == nil {
			return "–"
		}
		return fmt.Sprintf("%.3gs", *p)
	}
	return []string{fmt.Sprintf("%.3g", q.MistakesPerHour), opt(q.MistakeRecurS), opt(q.MistakeDurationS), fmt.Sprintf("%.4f", q.QueryAccuracy)}
}

func predictedText(c *Cell) string {
	var s string
	if c.PredictedS == nil {
		s = "never"
	} else if c.PredictedS[0] == c.PredictedS[1] {
		s = fmt.Sprintf("%gs", c.PredictedS[0])
	} else {
		s = fmt.Sprintf("%g–%gs", c.PredictedS[0], c.PredictedS[1])
	}
	if c.PredictedRule != "" {
		s += " (" + c.PredictedRule + ")"
	}
	return s
}

func secondsPtr(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.3f", *p)
}

func reasonsText(m map[string]int) string {
	if len(m) == 0 {
		return "–"
	}
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts[i] = fmt.Sprintf("%s×%d", name, m[k])
	}
	return strings.Join(parts, ", ")
}

func overheadText(o *Overhead) string {
	if o == nil {
		return "–"
	}
	s := fmt.Sprintf("%s pkt/min, %s B/min", numText(o.PacketsPerConnMin), numText(o.BytesPerConnMin))
	if o.WatcherCPUPercent > 0 {
		s += fmt.Sprintf(", %.2g%% CPU", o.WatcherCPUPercent)
	}
	return s
}

func quantilesText(q Quantiles) string {
	s := fmt.Sprintf("p50 %.3g ms, p99 %.3g ms", q.P50, q.P99)
	if q.Max > 0 {
		s += fmt.Sprintf(", max %.3g ms", q.Max)
	}
	if q.N > 0 {
		s += fmt.Sprintf(" (n=%d)", q.N)
	}
	return s
}

func ratioText(p FrontierPoint) string {
	if p.DetectionS <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", p.ToleratedS/p.DetectionS)
}

// numText formats a count-like number: whole above 100, three significant
// digits below.
func numText(v float64) string {
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// mdCode makes s safe inside a Markdown code span in a table cell.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "|", "\\|", "\n", " ").Replace(s)
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
