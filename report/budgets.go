package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

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
type Budgets struct {
	File    string   // where the budgets were read from
	Budgets []Budget // in file order
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

// yamlBudgets and yamlBudget are the file as written, decoded strictly.
type yamlBudgets struct {
	Budgets []yamlBudget `yaml:"budgets"`
}

type yamlBudget struct {
	Name           string        `yaml:"name"`
	Detector       string        `yaml:"detector"`
	Fault          string        `yaml:"fault"`
	Side           string        `yaml:"side"`
	Kind           Kind          `yaml:"kind"`
	P50            *yamlDuration `yaml:"p50"`
	P95            *yamlDuration `yaml:"p95"`
	Max            *yamlDuration `yaml:"max"`
	Censored       *yamlCount    `yaml:"censored"`
	FalsePositives *yamlCount    `yaml:"false_positives"`
	Errors         *yamlCount    `yaml:"errors"`
}

const budgetKeys = "name, detector, fault, side, kind, p50, p95, max, censored, false_positives and errors"

// yamlDuration is a non-negative Go duration such as "1.5s".
type yamlDuration struct{ d time.Duration }

// UnmarshalYAML parses a Go duration, naming the line when it cannot.
func (y *yamlDuration) UnmarshalYAML(n *yaml.Node) error {
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || d < 0 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a Go duration such as 500ms or 5s", n.Line, n.Value)}}
	}
	y.d = d
	return nil
}

// yamlCount is a non-negative integer.
type yamlCount struct{ n int }

// UnmarshalYAML parses a count, naming the line when it cannot.
func (y *yamlCount) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a count (a whole number, 0 or more)", n.Line, n.Value)}}
	}
	y.n = v
	return nil
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

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)
var unknownField = regexp.MustCompile(`^field (\S+) not found in type`)

// ParseBudgets parses a budgets file called name, strictly: an empty
// file, an unknown key, a bad duration or count, a bad spec, side or kind,
// or a file without budgets is an *InputError naming the file and line.
func ParseBudgets(name string, data []byte) (*Budgets, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &InputError{File: name, Msg: "is empty; a budgets file lists budgets under \"budgets:\""}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var file yamlBudgets
	if err := dec.Decode(&file); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &InputError{File: name, Msg: "has no YAML document; a budgets file lists budgets under \"budgets:\""}
		}
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &InputError{File: name, Line: extra.Line, Msg: "holds a second YAML document; a budgets file is one"}
	}
	if len(file.Budgets) == 0 {
		return nil, &InputError{File: name, Line: 1, Msg: "lists no budgets under \"budgets:\""}
	}
	lines := entryLines(data)
	entries := make([]Budget, 0, len(file.Budgets))
	for i, y := range file.Budgets {
		e := Budget{Name: y.Name, Detector: y.Detector, Fault: y.Fault, Side: y.Side, Kind: y.Kind}
		if i < len(lines) {
			e.Line = lines[i]
		}
		e.P50, e.P95, e.Max = y.P50.ptr(), y.P95.ptr(), y.Max.ptr()
		e.Censored, e.FalsePositives, e.Errors = y.Censored.ptr(), y.FalsePositives.ptr(), y.Errors.ptr()
		entries = append(entries, e)
	}
	return NewBudgets(name, entries)
}

func (y *yamlDuration) ptr() *time.Duration {
	if y == nil {
		return nil
	}
	d := y.d
	return &d
}

func (y *yamlCount) ptr() *int {
	if y == nil {
		return nil
	}
	n := y.n
	return &n
}

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

// yamlError turns a yaml.v3 error into an *InputError with its line.
func yamlError(name string, err error) error {
	text := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		text = te.Errors[0]
	}
	m := yamlLine.FindStringSubmatch(text)
	if m == nil {
		return &InputError{File: name, Msg: "is not valid YAML: " + strings.TrimPrefix(text, "yaml: "), Err: err}
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	if f := unknownField.FindStringSubmatch(msg); f != nil {
		msg = fmt.Sprintf("has the unknown key %q; the known keys are budgets and, in each budget, %s", f[1], budgetKeys)
	} else if te != nil {
		msg = strings.TrimPrefix(msg, "cannot unmarshal ")
		msg = "has a value of the wrong type: " + msg
	} else {
		msg = "is not valid YAML: " + msg
	}
	return &InputError{File: name, Line: line, Msg: msg, Err: err}
}

// entryLines returns the line of each item of the top-level "budgets"
// sequence.
func entryLines(data []byte) []int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "budgets" {
			var lines []int
			for _, item := range m.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines
		}
	}
	return nil
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
			g.Broken = append(g.Broken, checkCell(&bud, c)...)
		}
		if !matched {
			g.Broken = append(g.Broken, Violation{Budget: bud.Name, Line: bud.Line, Metric: "match", Measured: "no cell", Allowed: "at least one cell"})
		}
	}
	return g
}

func checkCell(b *Budget, c *Cell) []Violation {
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
		if v.Cell != nil {
			cell = v.Cell.String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", v.Budget, v.Line, cell, v.Metric, v.Measured, v.Allowed)
	}
	tw.Flush()
	return b.String()
}
