package report

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Markdown writes the report as Markdown, for a pull request or a CI
// summary: the overview first (the detector × fault matrix of each side,
// each cell an Outcome glyph linked to its details, then the findings
// drawn from the measurements), then one table per fault, the
// tolerance-vs-detection frontier, the legends (rationales, notes and
// sysctl sets, each printed once and referred to by the cells) and the
// environment.
func Markdown(w io.Writer, r *Report) error {
	o := newOverview(r)
	var b strings.Builder
	b.WriteString("# halfopen report\n\n")
	b.WriteString(runLine(r) + "\n\n")
	if !r.Complete {
		b.WriteString("> **Incomplete:** this run was still writing, or was stopped, when this report was made; every sample it measured is here.\n\n")
	}
	writeMarkdownOverview(&b, o)
	writeMarkdownGroups(&b, o)
	writeMarkdownResiduals(&b, r)
	writeMarkdownLogTails(&b, r)
	if len(r.Frontier) > 0 {
		b.WriteString("## Tolerance vs. detection\n\nNo detector detects death sooner than the longest outage it tolerates; the ratio (≤ 1) says how close it comes.\n\n")
		b.WriteString("| detector | tolerated outage | detection | ratio | note |\n|---|---|---|---|---|\n")
		for _, p := range r.Frontier {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mdEscape(p.Detector), FormatSeconds(p.ToleratedS), FormatSeconds(p.DetectionS), ratioText(p), mdEscape(p.Note))
		}
		b.WriteString("\n")
	}
	writeMarkdownLegends(&b, o)
	writeMarkdownEnvironment(&b, r)
	_, err := io.WriteString(w, b.String())
	return err
}

// runLine is the one line under the title: what ran, when, where.
func runLine(r *Report) string {
	var parts []string
	if r.Profile != "" {
		parts = append(parts, "profile "+r.Profile)
	}
	if !r.Started.IsZero() {
		parts = append(parts, r.Started.Format(time.RFC3339))
	}
	parts = append(parts, fmt.Sprintf("seed %d", r.Seed))
	if r.Shard != "" {
		parts = append(parts, "shard "+r.Shard)
	}
	parts = append(parts, fmt.Sprintf("%d cells", len(r.Cells)))
	if r.Environment.Kernel != "" {
		parts = append(parts, "kernel "+r.Environment.Kernel)
	}
	if q := r.Environment.CalibrationErrorMs; q != nil {
		parts = append(parts, "harness error "+quantilesText(*q))
	}
	return mdEscape(strings.Join(parts, " · "))
}

func writeMarkdownOverview(b *strings.Builder, o *overview) {
	b.WriteString("## Overview\n\n")
	var legend []string
	for _, oc := range []Outcome{OutcomeWithin, OutcomeMeasured, OutcomeNever, OutcomeSurvived, OutcomeFalsePositive, OutcomeOutside, OutcomeError} {
		legend = append(legend, outcomeInfo[oc].emoji+" "+outcomeInfo[oc].name)
	}
	b.WriteString(strings.Join(legend, " · ") + ". Each cell links to its details.\n\n")
	for _, m := range o.matrices {
		fmt.Fprintf(b, "### Watcher is the %s\n\n", m.Side)
		b.WriteString("| fault \\ detector |")
		for j := range m.Detectors {
			fmt.Fprintf(b, " D%d |", j+1)
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(m.Detectors)) + "\n")
		var lastKind Kind
		for _, row := range m.Rows {
			label := mdEscape(faultTitle(o.labels, row.Fault, row.Phase))
			if row.Kind != lastKind {
				lastKind = row.Kind
				fmt.Fprintf(b, "| **%s** |%s\n", mdEscape(kindTitle(row.Kind)), strings.Repeat(" |", len(m.Detectors)))
			}
			fmt.Fprintf(b, "| [%s](#%s) |", label, groupAnchor(m.Side, row.Fault, row.Phase, row.Kind))
			for _, ci := range row.Cells {
				if ci < 0 {
					b.WriteString(" |")
					continue
				}
				v := o.verdicts[ci]
				fmt.Fprintf(b, " [%s](#%s) |", mdEscape(strings.TrimSpace(outcomeInfo[v.Outcome].emoji+" "+v.Short)), cellAnchor(ci))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
		var cols []string
		for j, d := range m.Detectors {
			cols = append(cols, fmt.Sprintf("D%d `%s`", j+1, mdCode(d)))
		}
		b.WriteString(strings.Join(cols, " · ") + "\n\n")
	}
	if len(o.findings) > 0 {
		b.WriteString("### Findings\n\n")
		for _, f := range o.findings {
			b.WriteString("- **" + mdEscape(f.Title) + ":** " + findingMarkdown(f.Parts) + "\n")
			for _, l := range f.Lines {
				b.WriteString("  - " + findingMarkdown(l) + "\n")
			}
		}
		b.WriteString("\n")
	}
}

func findingMarkdown(ps []findingPart) string {
	var b strings.Builder
	for _, p := range ps {
		if p.Cell >= 0 {
			fmt.Fprintf(&b, "[%s](#%s)", mdEscape(p.Text), cellAnchor(p.Cell))
		} else {
			b.WriteString(mdEscape(p.Text))
		}
	}
	return b.String()
}

func writeMarkdownGroups(b *strings.Builder, o *overview) {
	groups := faultGroups(o.r, o.matrices)
	if len(groups) == 0 {
		return
	}
	b.WriteString("## Per fault\n\nTimes as measured from the fault to the decision; p50, p95 and max are nearest-rank quantiles of the detected samples; censored samples (no decision within the budget) are shown as \"> budget\" and never timed. R, N and S refer to the legends: the rationale of the prediction, the note and the kernel parameters of the cell.\n\n")
	for _, g := range groups {
		fmt.Fprintf(b, "### <a id=\"%s\"></a>%s\n\n", groupAnchor(g.Side, g.Fault, g.Phase, g.Kind), mdEscape(g.heading(o.labels)))
		switch g.Kind {
		case KindDisturbance:
			b.WriteString("| detector | outcome | samples | false positives | mistakes/conn-h | T_MR | T_M | P_A | overhead while idle | more |\n|---|---|---|---|---|---|---|---|---|---|\n")
		case KindScale:
			b.WriteString("One server holds many idle connections from one client host, which then fails; times from the fault until the server's close() of each connection.\n\n")
			b.WriteString("| detector | design | connections | outcome | predicted | freed | p50 | p99 | max | memory per connection | overhead while idle | more |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		default:
			b.WriteString("| detector | outcome | predicted | samples | p50 | p95 | max | reasons | more |\n|---|---|---|---|---|---|---|---|---|\n")
		}
		for _, ci := range g.Cells {
			c := &o.r.Cells[ci]
			v := o.verdicts[ci]
			st := c.Stats()
			det := fmt.Sprintf("<a id=\"%s\"></a>%s", cellAnchor(ci), mdEscape(o.labels.of(c.Detector)))
			outcome := mdEscape(strings.TrimSpace(outcomeInfo[v.Outcome].emoji + " " + v.Short))
			if v.Outcome == OutcomeOutside || v.Outcome == OutcomeError || v.Outcome == OutcomeFalsePositive {
				outcome += " " + mdEscape(v.Why)
			}
			more := mdEscape(cellMore(o, c))
			var cols []string
			switch g.Kind {
			case KindDisturbance:
				q := qosColumns(c)
				cols = []string{det, outcome, mdEscape(samplesText(c)), fmt.Sprint(c.FalsePositives), q[0], q[1], q[2], q[3], mdEscape(overheadText(c.Overhead)), more}
			case KindScale:
				sc := scaleColumns(c)
				cols = []string{det, mdEscape(sc[0]), sc[1], outcome, mdEscape(predictedRange(c)), sc[2], sc[3], sc[4], sc[5], sc[6], mdEscape(overheadText(c.Overhead)), more}
			default:
				cols = []string{det, outcome, mdEscape(predictedRange(c)), mdEscape(samplesText(c)), secondsPtr(st.P50), secondsPtr(st.P95), secondsPtr(st.Max), mdEscape(reasonsText(st.Reasons)), more}
			}
			b.WriteString("| " + strings.Join(cols, " | ") + " |\n")
		}
		b.WriteString("\n")
	}
}

// cellMore is a cell's references to the legends, its note when no other
// cell shares it, and its captures.
func cellMore(o *overview, c *Cell) string {
	var parts []string
	for _, ref := range []string{o.legends.ruleRef(c), o.legends.sysctlRef(c)} {
		if ref != "" {
			parts = append(parts, "["+ref+"](#"+ref+")")
		}
	}
	if ref := o.legends.noteRef(c); ref != "" {
		if o.legends.Notes[o.legends.note[c.Note]].Cells == 1 {
			parts = append(parts, c.Note)
		} else {
			parts = append(parts, "["+ref+"](#"+ref+")")
		}
	}
	for i, s := range c.Samples {
		if s.Pcap != "" {
			parts = append(parts, fmt.Sprintf("[sample %d pcapng](%s)", i, s.Pcap))
		}
		if s.Log != "" {
			parts = append(parts, fmt.Sprintf("[sample %d log](%s)", i, s.Log))
		}
		if w := marksWords(s); w != "" {
			parts = append(parts, fmt.Sprintf("sample %d %s", i, mdEscape(strings.TrimPrefix(w, "; "))))
		}
	}
	return strings.Join(parts, " ")
}

// writeMarkdownLogTails shows the last lines of every sample's log the
// report kept (a sample that could not be measured or surprises), under
// what the sample did.
func writeMarkdownLogTails(b *strings.Builder, r *Report) {
	started := false
	for ci := range r.Cells {
		c := &r.Cells[ci]
		for i, s := range c.Samples {
			if len(s.LogTail) == 0 {
				continue
			}
			if !started {
				b.WriteString("## Logs of the samples that failed or surprised\n\n")
				started = true
			}
			fmt.Fprintf(b, "**%s × %s, sample %d** (%s)", mdEscape(c.Detector), mdEscape(c.Fault), i, mdEscape(sampleWords(c, s)))
			if s.Log != "" {
				fmt.Fprintf(b, " [whole log](%s)", s.Log)
			}
			b.WriteString(":\n\n```\n")
			for _, l := range s.LogTail {
				b.WriteString(strings.ReplaceAll(l, "```", "` ` `") + "\n")
			}
			b.WriteString("```\n\n")
		}
	}
}

func writeMarkdownLegends(b *strings.Builder, o *overview) {
	lg := o.legends
	if len(lg.Rules)+len(lg.Notes)+len(lg.Sysctls) == 0 {
		return
	}
	b.WriteString("## Legends\n\n")
	list := func(title, prefix string, es []legendEntry) {
		if len(es) == 0 {
			return
		}
		fmt.Fprintf(b, "### %s\n\n", title)
		for i, e := range es {
			fmt.Fprintf(b, "- <a id=\"%s%d\"></a>**%s%d** %s (%s)\n", prefix, i+1, prefix, i+1, mdEscape(e.Text), plural(e.Cells, "cell", "cells"))
		}
		b.WriteString("\n")
	}
	list("Why each prediction is what it is", "R", lg.Rules)
	list("Notes on the cells", "N", lg.Notes)
	if len(lg.Sysctls) > 0 {
		b.WriteString("### Kernel parameters the cells ran with\n\n")
		for i, set := range lg.Sysctls {
			fmt.Fprintf(b, "- <a id=\"S%d\"></a>**S%d** (%s):", i+1, i+1, plural(len(set.Cells), "cell", "cells"))
			for _, role := range set.Roles {
				var kv []string
				for _, v := range role.Values {
					kv = append(kv, fmt.Sprintf("`%s=%s`", mdCode(v[0]), mdCode(v[1])))
				}
				fmt.Fprintf(b, " %s: %s;", mdEscape(role.Role), strings.Join(kv, " "))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
}

func writeMarkdownEnvironment(b *strings.Builder, r *Report) {
	b.WriteString("## Environment\n\n")
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(b, "| %s | %s |\n", k, mdEscape(v))
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
	row("forecast tick", r.Environment.ForecastTick().String())
	row("go", r.Environment.Go)
	row("halfopen", r.Environment.Halfopen)
	if r.Environment.CPUs > 0 {
		row("cpus", fmt.Sprint(r.Environment.CPUs))
	}
	if r.Environment.Pool > 0 {
		row("labs at once", fmt.Sprint(r.Environment.Pool))
	}
	if len(r.Environment.PoolTicks) > 0 {
		row("pool's decisions", r.Environment.PoolDecisions())
	}
	row("idle CPUs", r.Environment.CPUIdle)
	if p := r.Environment.Privilege; p != nil {
		row("privilege", p.Text())
	}
	if t := r.Throughput(); t.Samples > 0 {
		row("throughput", t.String())
	}
	if t := r.Environment.ToleranceS; t > 0 {
		row("judge tolerance", "± "+FormatSeconds(t)+" on each side of a prediction")
	}
	if q := r.Environment.CalibrationErrorMs; q != nil {
		row("harness error", quantilesText(*q))
	} else {
		row("harness error", "not measured")
	}
	if r.Environment.ProbeUnloadedMs != nil {
		row("latency probe", r.Environment.ProbeText())
		row("probe note", r.Environment.ProbeNote())
	}
	b.WriteString("\n")
	if len(r.Environment.Calibration) > 0 {
		b.WriteString("### Calibration\n\n| probe | method | error |\n|---|---|---|\n")
		for _, p := range r.Environment.Calibration {
			fmt.Fprintf(b, "| %s | %s | %s |\n", mdEscape(p.Name), mdEscape(p.Method), mdEscape(quantilesText(p.ErrorMs)))
		}
		b.WriteString("\n")
	}
	if len(r.Environment.Sysctls) > 0 {
		b.WriteString("### Sysctls of the whole run\n\nThis report predates per-cell kernel parameters: it recorded one run-wide list, keyed by role, which cannot be attributed to single cells.\n\n| sysctl | value |\n|---|---|\n")
		for _, k := range sortedKeys(r.Environment.Sysctls) {
			fmt.Fprintf(b, "| `%s` | `%s` |\n", mdCode(k), mdCode(r.Environment.Sysctls[k]))
		}
		b.WriteString("\n")
	}
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
		return FormatSeconds(*p)
	}
	return []string{formatCount(q.MistakesPerHour), opt(q.MistakeRecurS), opt(q.MistakeDurationS), fmt.Sprintf("%.4f", q.QueryAccuracy)}
}

// predictedText is a cell's prediction with its rationale, for JUnit,
// where no legend can hold the rationale.
func predictedText(c *Cell) string {
	s := predictedRange(c)
	if c.PredictedRule != "" {
		s += " (" + c.PredictedRule + ")"
	}
	return s
}

func secondsPtr(p *float64) string {
	if p == nil {
		return "–"
	}
	return FormatSeconds(*p)
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
	s := fmt.Sprintf("%s pkt/min, %s B/min", formatCount(o.PacketsPerConnMin), formatCount(o.BytesPerConnMin))
	if o.WatcherCPUPercent > 0 {
		s += ", " + formatPercent(o.WatcherCPUPercent) + " CPU"
	}
	return s
}

func quantilesText(q Quantiles) string {
	s := fmt.Sprintf("p50 %s, p99 %s", formatMillis(q.P50), formatMillis(q.P99))
	if q.Max > 0 {
		s += ", max " + formatMillis(q.Max)
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
