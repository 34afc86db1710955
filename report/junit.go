package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// JUnit writes the report as JUnit XML for CI systems: one testsuite per
// cell kind, one testcase per cell (classname the detector, name the fault
// and side, system-out its statistics). A testcase has one failure element
// when the cell broke a budget of g (g may be nil: no budgets) or has
// samples with errors; it lists each. Budgets of g that matched no cell
// are failed testcases of a "budgets" testsuite.
func JUnit(w io.Writer, r *Report, g *BudgetResult) error {
	byCell := map[CellKey][]Violation{}
	var unmatched []Violation
	if g != nil {
		for _, v := range g.Broken {
			if v.Cell == nil {
				unmatched = append(unmatched, v)
				continue
			}
			byCell[*v.Cell] = append(byCell[*v.Cell], v)
		}
	}
	doc := junitSuites{Name: "halfopen"}
	stamp := ""
	if !r.Started.IsZero() {
		stamp = r.Started.UTC().Format("2006-01-02T15:04:05")
	}
	for _, kind := range cellKinds(r) {
		suite := junitSuite{Name: "halfopen." + string(kind), Timestamp: stamp, Properties: junitProperties(r)}
		for i := range r.Cells {
			c := &r.Cells[i]
			if c.Kind != kind {
				continue
			}
			suite.Cases = append(suite.Cases, junitCell(c, byCell[c.Key()]))
		}
		suite.count()
		doc.Suites = append(doc.Suites, suite)
	}
	if len(unmatched) > 0 {
		suite := junitSuite{Name: "halfopen.budgets", Timestamp: stamp}
		for _, v := range unmatched {
			suite.Cases = append(suite.Cases, junitCase{
				Classname: "budgets",
				Name:      v.Budget,
				Time:      "0",
				Failure:   &junitFailure{Type: "budget", Message: "budget matched no cell", Text: v.String()},
			})
		}
		suite.count()
		doc.Suites = append(doc.Suites, suite)
	}
	for _, s := range doc.Suites {
		doc.Tests += s.Tests
		doc.Failures += s.Failures
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func junitProperties(r *Report) *junitProps {
	p := &junitProps{}
	add := func(k, v string) {
		if v != "" {
			p.Props = append(p.Props, junitProp{Name: k, Value: v})
		}
	}
	add("schema", r.Schema)
	add("profile", r.Profile)
	add("seed", fmt.Sprint(r.Seed))
	add("shard", r.Shard)
	add("complete", fmt.Sprint(r.Complete))
	add("kernel", r.Environment.Kernel)
	add("halfopen", r.Environment.Halfopen)
	return p
}

func junitCell(c *Cell, broken []Violation) junitCase {
	st := c.Stats()
	var seconds float64
	for _, s := range c.Samples {
		if s.Detected && s.Seconds != nil {
			seconds += *s.Seconds
		}
	}
	seconds += c.ObservedConnS
	name := c.Fault
	if c.Side != "" {
		name += " (" + c.Side + ")"
	}
	tc := junitCase{
		Classname: c.Detector,
		Name:      name,
		Time:      fmt.Sprintf("%.3f", seconds),
		seconds:   seconds,
		SystemOut: fmt.Sprintf("n=%d p50=%s p95=%s max=%s censored=%d errors=%d false_positives=%d predicted=%s",
			st.N, secondsPtr(st.P50), secondsPtr(st.P95), secondsPtr(st.Max), st.Censored, st.Errors, c.FalsePositives, predictedText(c)),
	}
	var lines, types, summary []string
	if len(broken) > 0 {
		types = append(types, "budget")
		summary = append(summary, plural(len(broken), "broken budget", "broken budgets"))
		for _, v := range broken {
			lines = append(lines, v.String())
		}
	}
	if st.Errors > 0 {
		types = append(types, "sample-error")
		summary = append(summary, plural(st.Errors, "sample error", "sample errors"))
		for i, s := range c.Samples {
			if s.Error != "" {
				lines = append(lines, fmt.Sprintf("sample %d: %s", i, s.Error))
			}
		}
	}
	if len(lines) > 0 {
		tc.Failure = &junitFailure{Type: strings.Join(types, ","), Message: strings.Join(summary, ", "), Text: strings.Join(lines, "\n")}
	}
	return tc
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string      `xml:"name,attr"`
	Tests      int         `xml:"tests,attr"`
	Failures   int         `xml:"failures,attr"`
	Errors     int         `xml:"errors,attr"`
	Time       string      `xml:"time,attr"`
	Timestamp  string      `xml:"timestamp,attr,omitempty"`
	Properties *junitProps `xml:"properties,omitempty"`
	Cases      []junitCase `xml:"testcase"`
}

func (s *junitSuite) count() {
	s.Tests = len(s.Cases)
	s.Failures = 0
	var total float64
	for _, c := range s.Cases {
		if c.Failure != nil {
			s.Failures++
		}
		total += c.seconds
	}
	s.Time = fmt.Sprintf("%.3f", total)
}

type junitProps struct {
	Props []junitProp `xml:"property"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
	seconds   float64
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}
