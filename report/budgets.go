package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/halfopen/halfopen/internal/yamlnode"
	"github.com/halfopen/halfopen/spec"
)

// Budgets is a budgets file (ci/budgets.yaml): limits for cells.
//
//	budgets:
//	  - name: keepalive notices a pulled cable   # optional
//	    detector: keepalive-tuned:idle=1s,intvl=1s,cnt=3
//	    fault: peer-cable-pull
//	    side: client          # optional: both sides when absent
//	    kind: detection       # optional: every kind when absent
//	    p50: 4s               # detection-time limits, Go durations;
//	    p95: 5s               #   censored samples count as +Inf
//	    max: 6s
//	    censored: 0           # most censored samples allowed
//	    false_positives: 0    # most false positives allowed
//	    errors: 0             # most failed samples allowed; 0 when absent
//	harness:                  # optional: the harness's own timing error
//	  p99: 1ms                #   its measured error (calibration) at p99,
//	                          #   where the machine's baseline leaves room
//	  increase_p99: 300us     #   the probe's p99 under load over the
//	                          #   machine's own unloaded baseline
type Budgets struct {
	File    string   // where the budgets were read from
	Budgets []Budget // in file order
	// Harness limits the harness's own timing error; nil when the file
	// has no harness section.
	Harness *HarnessBudget
}

// HarnessBudget limits the harness's own timing error, as a report's
// environment records it. A limit that the report cannot be checked
// against (nothing measured) is broken: no green without measurement.
type HarnessBudget struct {
	Line int // line of the section in its file
	// P99 limits the harness's measured error at p99
	// (Environment.CalibrationErrorMs), where the machine's own unloaded
	// baseline leaves room under it (ProbeNote says when it does not).
	P99 *time.Duration
	// IncreaseP99 limits the latency probe's p99 under the run's load over
	// the machine's unloaded baseline (Environment.ProbeIncreaseMs).
	IncreaseP99 *time.Duration
}

// Budget is one entry of a budgets file. Nil limits are not checked,
// except Errors, which is 0 when absent: a checked cell must be measurable.
type Budget struct {
	Name     string // from the file, or made from the pattern
	Line     int    // line of the entry in the file
	Detector string // canonical detector spec
	Fault    string // canonical fault spec
	Side     string // "" matches both sides
	Kind     Kind   // "" matches every kind but scale

	P50, P95, Max  *time.Duration
	Censored       *int
	FalsePositives *int
	Errors         *int
}

// Matches reports whether the budget applies to the cell.
//
// A budget without a kind matches every kind but scale: a scale cell keeps
// its times in Cell.Scale, not in samples, so a sample budget would find
// it unmeasured.
func (b *Budget) Matches(c *Cell) bool {
	return (b.Side == "" || b.Side == c.Side) &&
		(b.Kind == c.Kind || b.Kind == "" && c.Kind != KindScale) &&
		spec.Equal(b.Detector, c.Detector) &&
		spec.Equal(b.Fault, c.Fault)
}

// budgetKeys are the keys of one budget after its subject's.
var budgetKeys = []string{"name", "fault", "side", "kind", "p50", "p95", "max", "censored", "false_positives", "errors"}

// BudgetSubject says how a list of budgets names what each one limits:
// Key is the key ("detector" in a budgets file, "watcher" in a gate
// file) and Detector turns its value into a detector spec, or says in a
// clause why it cannot ("which is not a watcher of this file"). Fault,
// when set, resolves a fault spec the same way; NewBudgets canonicalises
// both in any case.
type BudgetSubject struct {
	Key      string
	Detector func(value string) (string, error)
	Fault    func(value string) (string, error)
}

// ParseBudgetList is the one parser of budget entries, for budgets files
// and gate files alike: n is the YAML list under "budgets:" of file. Every
// mistake is an *InputError naming the file and the line.
func ParseBudgetList(file string, n *yaml.Node, subject BudgetSubject) (*Budgets, error) {
	fail := func(err error) error {
		var e *yamlnode.Error
		if errors.As(err, &e) {
			return &InputError{File: file, Line: e.Line, Msg: e.Msg, Err: e.Err}
		}
		return err
	}
	at := func(line int, format string, args ...any) error {
		return &InputError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	entries, err := yamlnode.Sequence(n, "budgets")
	if err != nil {
		return nil, fail(err)
	}
	if len(entries) == 0 {
		return nil, at(yamlnode.Line(n), "budgets lists no budget; a budgets list holds at least one")
	}
	keys := append([]string{"name", subject.Key}, budgetKeys[1:]...)
	out := make([]Budget, 0, len(entries))
	for i, e := range entries {
		what := fmt.Sprintf("budget %d", i+1)
		fields, err := yamlnode.Mapping(e, what, keys)
		if err != nil {
			return nil, fail(err)
		}
		b := Budget{Line: e.Line}
		durations := map[string]**time.Duration{"p50": &b.P50, "p95": &b.P95, "max": &b.Max}
		counts := map[string]**int{"censored": &b.Censored, "false_positives": &b.FalsePositives, "errors": &b.Errors}
		resolve := func(fd yamlnode.Pair, how func(string) (string, error)) (string, error) {
			v, err := yamlnode.Scalar(fd.Value, what+" "+fd.Key)
			if err != nil || how == nil {
				return v, err
			}
			spec, err := how(v)
			if err != nil {
				return "", at(fd.Value.Line, "%s %s is %q, %v", what, fd.Key, v, err)
			}
			return spec, nil
		}
		for _, fd := range fields {
			fw := what + " " + fd.Key
			switch fd.Key {
			case subject.Key:
				b.Detector, err = resolve(fd, subject.Detector)
			case "fault":
				b.Fault, err = resolve(fd, subject.Fault)
			case "name":
				b.Name, err = yamlnode.Text(fd.Value, fw)
			case "side":
				b.Side, err = yamlnode.Scalar(fd.Value, fw)
			case "kind":
				var k string
				k, err = yamlnode.Scalar(fd.Value, fw)
				b.Kind = Kind(k)
			case "p50", "p95", "max":
				var d time.Duration
				if d, err = yamlnode.Duration(fd.Value, fw, false); err == nil {
					*durations[fd.Key] = &d
				}
			default:
				var c int
				if c, err = yamlnode.Count(fd.Value, fw, 0); err == nil {
					*counts[fd.Key] = &c
				}
			}
			if err != nil {
				return nil, fail(err)
			}
		}
		if b.Detector == "" {
			return nil, at(e.Line, "%s has no %s; a budget names a %s and a fault", what, subject.Key, subject.Key)
		}
		if b.Fault == "" {
			return nil, at(e.Line, "%s has no fault; a budget names a %s and a fault", what, subject.Key)
		}
		out = append(out, b)
	}
	return NewBudgets(file, out)
}

// ReadBudgets reads and parses the budgets file at path.
// A file larger than MaxBudgetsBytes is refused without being read.
func ReadBudgets(path string) (*Budgets, error) {
	data, err := ReadBounded(path, MaxBudgetsBytes, "a budgets file")
	if err != nil {
		return nil, err
	}
	return ParseBudgets(path, data)
}

// MaxBudgetsBytes is the largest budgets file accepted: some 10,000 budgets.
const MaxBudgetsBytes = 1 << 20

// ParseBudgets parses a budgets file called name, strictly: an empty
// file, an unknown key, a bad duration or count, a bad spec, side or kind,
// or a file without budgets is an *InputError naming the file and line.
// Its entries are read by ParseBudgetList, as a gate file's are.
func ParseBudgets(name string, data []byte) (*Budgets, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &InputError{File: name, Msg: "is empty; a budgets file lists budgets under \"budgets:\""}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &InputError{File: name, Msg: "has no YAML document; a budgets file lists budgets under \"budgets:\""}
		}
		e := yamlnode.Syntax(err)
		return nil, &InputError{File: name, Line: e.Line, Msg: e.Msg, Err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &InputError{File: name, Line: extra.Line, Msg: "holds a second YAML document; a budgets file is one"}
	}
	if len(doc.Content) == 0 {
		return nil, &InputError{File: name, Msg: "has no YAML document; a budgets file lists budgets under \"budgets:\""}
	}
	inputErr := func(err error) error {
		var e *yamlnode.Error
		if !errors.As(err, &e) {
			return &InputError{File: name, Msg: err.Error(), Err: err}
		}
		return &InputError{File: name, Line: e.Line, Msg: e.Msg}
	}
	top, err := yamlnode.Mapping(doc.Content[0], "the budgets file", []string{"budgets", "harness"})
	if err != nil {
		return nil, inputErr(err)
	}
	var list, harness *yamlnode.Pair
	for i := range top {
		switch top[i].Key {
		case "budgets":
			list = &top[i]
		case "harness":
			harness = &top[i]
		}
	}
	if list == nil {
		return nil, &InputError{File: name, Line: 1, Msg: "lists no budgets under \"budgets:\""}
	}
	b, err := ParseBudgetList(name, list.Value, BudgetSubject{Key: "detector"})
	if err != nil || harness == nil {
		return b, err
	}
	if b.Harness, err = parseHarnessBudget(harness.Value); err != nil {
		return nil, inputErr(err)
	}
	return b, nil
}

// parseHarnessBudget reads a budgets file's harness section.
func parseHarnessBudget(n *yaml.Node) (*HarnessBudget, error) {
	fields, err := yamlnode.Mapping(n, "harness", []string{"p99", "increase_p99"})
	if err != nil {
		return nil, err
	}
	h := &HarnessBudget{Line: yamlnode.Line(n)}
	for _, fd := range fields {
		d, err := yamlnode.Duration(fd.Value, "harness "+fd.Key, false)
		if err != nil {
			return nil, err
		}
		if fd.Key == "p99" {
			h.P99 = &d
		} else {
			h.IncreaseP99 = &d
		}
	}
	if h.P99 == nil && h.IncreaseP99 == nil {
		return nil, &yamlnode.Error{Line: h.Line, Msg: "harness sets no limit; it takes p99, increase_p99 or both"}
	}
	return h, nil
}

// Validate checks that every budget names a detector and a fault that
// exist, by the names before ':'. CheckBudgets cannot know the registries, so
// the command passes their lookups.
func (b *Budgets) Validate(knownDetector, knownFault func(name string) bool) error {
	for i, e := range b.Budgets {
		if knownDetector != nil && !knownDetector(spec.Name(e.Detector)) {
			return &InputError{File: b.File, Line: e.Line, Msg: fmt.Sprintf("budget %d names the unknown detector %q", i+1, spec.Name(e.Detector))}
		}
		if knownFault != nil && !knownFault(spec.Name(e.Fault)) {
			return &InputError{File: b.File, Line: e.Line, Msg: fmt.Sprintf("budget %d names the unknown fault %q", i+1, spec.Name(e.Fault))}
		}
	}
	return nil
}

// BudgetResult is the outcome of CheckBudgets: every budget checked, every one broken.
type BudgetResult struct {
	Checked int         // budget × cell pairs checked
	Broken  []Violation // empty when every budget holds
}

// OK reports whether every budget holds.
func (g BudgetResult) OK() bool { return len(g.Broken) == 0 }

// Violation is one broken budget: a limit a cell exceeds, or a budget that
// matched no cell.
type Violation struct {
	Budget   string   // the budget's name
	Line     int      // the budget's line in its file
	Cell     *CellKey // nil when the budget matched no cell
	Metric   string   // "p50", "p95", "max", "censored", "false_positives", "errors" or "match"
	Measured string   // what the cell has, e.g. "7.2s" or "> budget"
	Allowed  string   // what the budget allows
}

// String returns the violation as one sentence.
func (v Violation) String() string {
	if v.Cell == nil && v.Metric != "match" {
		return fmt.Sprintf("budget %q (line %d) is broken: %s is %s, allowed %s", v.Budget, v.Line, v.Metric, v.Measured, v.Allowed)
	}
	if v.Cell == nil {
		return fmt.Sprintf("budget %q (line %d) matched no cell in the report, so it is broken", v.Budget, v.Line)
	}
	return fmt.Sprintf("budget %q (line %d) is broken by %s: %s is %s, allowed %s", v.Budget, v.Line, v.Cell, v.Metric, v.Measured, v.Allowed)
}

// CheckBudgets checks every cell against every budget that matches it. Detection
// times (p50, p95, max) rank censored samples as +Inf and are checked on
// detection and calibration cells; censored is checked on detection cells,
// where it means a miss; false positives and errors on every cell. A
// budget that matches no cell is broken.
func CheckBudgets(r *Report, b *Budgets) BudgetResult {
	var g BudgetResult
	for _, bud := range b.Budgets {
		matched := false
		for i := range r.Cells {
			c := &r.Cells[i]
			if !bud.Matches(c) {
				continue
			}
			matched = true
			g.Checked++
			g.Broken = append(g.Broken, bud.Check(c)...)
		}
		if !matched {
			g.Broken = append(g.Broken, Violation{Budget: bud.Name, Line: bud.Line, Metric: "match", Measured: "no cell", Allowed: "at least one cell"})
		}
	}
	if h := b.Harness; h != nil {
		g.Checked++
		g.Broken = append(g.Broken, h.Check(&r.Environment)...)
	}
	return g
}

// Check returns every limit of the harness budget that the environment
// breaks, or cannot be checked against because it was not measured.
func (h *HarnessBudget) Check(e *Environment) []Violation {
	var out []Violation
	add := func(metric, measured, allowed string) {
		out = append(out, Violation{Budget: "the harness's timing error", Line: h.Line, Metric: metric, Measured: measured, Allowed: allowed})
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if h.P99 != nil {
		limit := ms(*h.P99)
		switch q, b := e.CalibrationErrorMs, e.ProbeUnloadedMs; {
		case q == nil:
			add("harness p99", "not measured", formatMillis(limit))
		case b != nil && b.P99+ProbeIncreaseLimitMs/2 > limit:
			// The machine's own baseline leaves no room under the mark:
			// the increase over it is the limit (ProbeNote says so).
		case q.P99 > limit:
			add("harness p99", formatMillis(q.P99), formatMillis(limit))
		}
	}
	if h.IncreaseP99 != nil {
		limit := ms(*h.IncreaseP99)
		if inc, ok := e.ProbeIncreaseMs(); !ok {
			add("probe p99 increase over the unloaded baseline", "not measured", formatMillis(limit))
		} else if inc > limit {
			add("probe p99 increase over the unloaded baseline", formatMillis(inc), formatMillis(limit))
		}
	}
	return out
}

// Check is the one budget checker: it returns every limit of the budget
// that the cell breaks, whether the budget came from a budgets file, a
// gate file or a gate matcher. It does not look at whether the budget
// matches the cell (Matches).
func (b *Budget) Check(c *Cell) []Violation {
	st := c.Stats()
	key := c.Key()
	var out []Violation
	add := func(metric, measured, allowed string) {
		out = append(out, Violation{Budget: b.Name, Line: b.Line, Cell: &key, Metric: metric, Measured: measured, Allowed: allowed})
	}
	if c.Kind != KindDisturbance {
		var all []float64
		for _, s := range c.Samples {
			if s.Error == "" && s.Detected && s.Seconds != nil {
				all = append(all, *s.Seconds)
			}
		}
		sortFloats(all)
		all = censoredValues(all, st.Censored)
		for _, lim := range []struct {
			metric string
			q      float64
			limit  *time.Duration
		}{{"p50", 0.50, b.P50}, {"p95", 0.95, b.P95}, {"max", 1, b.Max}} {
			if lim.limit == nil {
				continue
			}
			if len(all) == 0 {
				add(lim.metric, "unmeasured (no sample without an error)", lim.limit.String())
				continue
			}
			v := NearestRank(all, lim.q)
			if v > lim.limit.Seconds() {
				add(lim.metric, secondsText(v, c.BudgetS), lim.limit.String())
			}
		}
	}
	if b.Censored != nil && c.Kind == KindDetection && st.Censored > *b.Censored {
		add("censored", fmt.Sprintf("%d of %d", st.Censored, st.N), strconv.Itoa(*b.Censored))
	}
	if b.FalsePositives != nil && c.FalsePositives > *b.FalsePositives {
		add("false_positives", strconv.Itoa(c.FalsePositives), strconv.Itoa(*b.FalsePositives))
	}
	maxErrors := 0
	if b.Errors != nil {
		maxErrors = *b.Errors
	}
	if st.Errors > maxErrors {
		add("errors", fmt.Sprintf("%d of %d", st.Errors, st.N), strconv.Itoa(maxErrors))
	}
	return out
}

// secondsText formats a time in seconds as a Go duration, or "> budget"
// for a censored (+Inf) value.
func secondsText(v, budgetS float64) string {
	if math.IsInf(v, 1) {
		if budgetS > 0 {
			return "> " + durationText(budgetS) + " (censored)"
		}
		return "> budget (censored)"
	}
	return durationText(v)
}

// durationText formats seconds as a Go duration rounded to the millisecond.
func durationText(s float64) string {
	return time.Duration(math.Round(s*1000) * float64(time.Millisecond)).String()
}

// Text returns the check's verdict as a table of broken budgets, or one
// line saying every budget holds.
func (g BudgetResult) Text() string {
	var b strings.Builder
	if g.OK() {
		fmt.Fprintf(&b, "gate: every budget holds (%d budget-cell checks)\n", g.Checked)
		return b.String()
	}
	fmt.Fprintf(&b, "gate: %d broken (%d budget-cell checks)\n", len(g.Broken), g.Checked)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUDGET\tLINE\tCELL\tMETRIC\tMEASURED\tALLOWED")
	for _, v := range g.Broken {
		cell := "(no cell matched)"
		switch {
		case v.Cell != nil:
			cell = v.Cell.String()
		case v.Metric != "match":
			cell = "(the run's environment)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", v.Budget, v.Line, cell, v.Metric, v.Measured, v.Allowed)
	}
	tw.Flush()
	return b.String()
}

// defaultName names a budget by its pattern when the file gives none.
func (b *Budget) defaultName() string {
	name := b.Detector + " × " + b.Fault
	var quals []string
	if b.Side != "" {
		quals = append(quals, b.Side)
	}
	if b.Kind != "" {
		quals = append(quals, string(b.Kind))
	}
	if len(quals) > 0 {
		name += " (" + strings.Join(quals, ", ") + ")"
	}
	return name
}
