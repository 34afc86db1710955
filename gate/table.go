package gate

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"
	gtypes "github.com/onsi/gomega/types"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/spec"
)

// maxListed is how many entries' names the line that starts a table's
// measuring lists.
const maxListed = 12

// shardEnv names the environment variable that shards a run ("i/n", as
// harness.Shard reads it): a table measures every n-th of its chosen
// entries' cells, from the i-th.
const shardEnv = "HALFOPEN_SHARD"

// TableEntry is one entry of a table (DescribeTable): a cell with what it
// must show (Entry), or a claim over other entries' results (Claim).
type TableEntry struct {
	name   string
	cell   Cell
	expect []gtypes.GomegaMatcher
	checks []func(*Result)
	// needs and claim are a Claim's: the entries it reads, and what it
	// asserts of their results.
	needs []string
	claim func(map[string]*Result)
	decos []any
	// at is where the entry was declared, its spec's location.
	at types.CodeLocation
}

// Entry is one entry of a table: its name (the spec's text, and the key
// of its result and its gmeasure experiment), its cell, and then, in any
// order, the Gomega matchers its result must satisfy (DetectWithin,
// Survive, ...), funcs that check its *Result themselves, and Ginkgo
// decorators for its spec (Label("recommended"), Serial, ...). Each entry
// is also labelled with its cell: the fault's name and its family (the
// name's first word: "host-crash", "host"), the side ("client",
// "server"), and a Detector's name and family, so that
// --label-filter='blackhole && server' chooses without labels written by
// hand. Entries are told apart by name: a name given twice in one table
// panics.
func Entry(name string, cell Cell, args ...any) TableEntry {
	e := TableEntry{name: name, cell: cell, at: types.NewCodeLocation(1)}
	for _, a := range args {
		switch v := a.(type) {
		case gtypes.GomegaMatcher:
			e.expect = append(e.expect, v)
		case func(*Result):
			e.checks = append(e.checks, v)
		default:
			e.decos = append(e.decos, v)
		}
	}
	return e
}

// Claim is an entry of a table that measures no cell of its own but
// asserts over the results of other entries of the same table, each found
// by its entry's name (results[name]): a comparison of two cells, a claim
// over a sweep. Choosing a claim (--focus, --label-filter) measures the
// entries it names even where the filters leave their own specs out; it
// is labelled with their cells' labels, and args are Ginkgo decorators
// for its spec. A claim that names no entry, or a name that is not a cell
// entry of its table, panics when the table is declared.
func Claim(name string, entries []string, check func(results map[string]*Result), args ...any) TableEntry {
	return TableEntry{name: name, needs: entries, claim: check, decos: args, at: types.NewCodeLocation(1)}
}

// DefaultTableTimeout bounds the measurement of a table's chosen entries
// unless the table is given a ginkgo.NodeTimeout.
const DefaultTableTimeout = 30 * time.Minute

// DescribeTable is a gate: a Ginkgo container named text whose entries
// (Entry, Claim) are each a spec of their own, with their own labels, and
// are measured together in one run of the harness's pool before the first
// of them is judged. Only the entries Ginkgo's filters (--focus, --skip,
// --label-filter, focused specs) choose are measured, with those their
// chosen claims read; each entry's spec then finds its own result by
// name, records its samples in gmeasure under the entry's name, and
// asserts what the entry expects. A spec is known by its node (the
// containers it is in, where each was declared, and its name), so two
// tables may name entries alike. Bad input in one entry (a Detector that
// does not parse, say) fails that entry's spec alone. With HALFOPEN_SHARD
// set to i/n, the table measures every n-th of the chosen cells (as
// harness.Shard splits them) and skips the others' specs. Besides
// entries, args takes Ginkgo decorators for the container (Label(...),
// applied to every entry) and a ginkgo.NodeTimeout for the measurement
// (default DefaultTableTimeout).
//
// It needs the suite to be run by RunSpecs (this package's), which
// previews the filters' choice; a table run by Ginkgo's own RunSpecs
// fails with a sentence saying so.
func DescribeTable(text string, args ...any) bool {
	t := &table{text: text, results: map[string]*Result{}, errs: map[string]error{}, elsewhere: map[string]bool{}}
	var decos []any
	timeout := ginkgo.NodeTimeout(DefaultTableTimeout)
	for _, a := range args {
		switch v := a.(type) {
		case TableEntry:
			t.add(v)
		case []TableEntry:
			for _, e := range v {
				t.add(e)
			}
		case ginkgo.NodeTimeout:
			timeout = v
		default:
			decos = append(decos, v)
		}
	}
	labels, cellLabelsOf := map[string][]string{}, map[string][]string{}
	for _, e := range t.entries {
		if e.claim == nil {
			labels[e.name] = cellLabels(e.cell)
			cellLabelsOf[e.name] = labels[e.name]
		}
	}
	for _, e := range t.entries {
		if e.claim == nil {
			continue
		}
		if len(e.needs) == 0 {
			panic(fmt.Sprintf("gate table %q: claim %q names no entry", text, e.name))
		}
		for _, n := range e.needs {
			l, ok := cellLabelsOf[n]
			if !ok {
				panic(fmt.Sprintf("gate table %q: claim %q names %q, which is no cell entry of the table", text, e.name, n))
			}
			labels[e.name] = append(labels[e.name], l...)
		}
	}
	body := func() {
		ginkgo.BeforeAll(t.measure, timeout)
		for _, e := range t.entries {
			ginkgo.It(e.name, append([]any{func() { t.judge(e) }, e.at, ginkgo.Label(unique(labels[e.name])...)}, e.decos...)...)
		}
		ginkgo.AfterAll(func() {
			if t.runErr != nil {
				ginkgo.Fail(fmt.Sprintf("gate %s: the run: %v", t.text, t.runErr))
			}
		})
	}
	return ginkgo.Describe(text, append([]any{ginkgo.Ordered, ginkgo.ContinueOnFailure, ginkgo.Offset(1), body}, decos...)...)
}

// table is one DescribeTable: its entries and, once measured, their
// results.
type table struct {
	text    string
	entries []TableEntry
	// results are the measured entries' results by name; errs the bad
	// input of an entry's cell; elsewhere the entries of another shard.
	results   map[string]*Result
	errs      map[string]error
	elsewhere map[string]bool
	// measureErr says why nothing was measured; runErr what went wrong
	// in a run that measured (an interrupt, a report that could not keep
	// a sample), which the table's last node reports.
	measureErr, runErr error
}

// add adds an entry; a name given twice panics.
func (t *table) add(e TableEntry) {
	for _, o := range t.entries {
		if o.name == e.name {
			panic(fmt.Sprintf("gate table %q: entry %q given twice; entries are found by name", t.text, e.name))
		}
	}
	t.entries = append(t.entries, e)
}

// measure measures the cells of the entries the filters chose, and those
// their chosen claims read, in one run.
func (t *table) measure(ctx ginkgo.SpecContext) {
	sr := ginkgo.CurrentSpecReport()
	need := map[string]bool{}
	for _, e := range t.entries {
		if !chosenEntry(specKey(sr.ContainerHierarchyTexts, sr.ContainerHierarchyLocations, e.name)) {
			continue
		}
		if e.claim == nil {
			need[e.name] = true
		}
		for _, n := range e.needs {
			need[n] = true
		}
	}
	var todo []TableEntry
	cellEntries := 0
	for _, e := range t.entries {
		if e.claim == nil {
			cellEntries++
			if need[e.name] {
				todo = append(todo, e)
			}
		}
	}
	if len(todo) == 0 {
		return
	}
	shard := os.Getenv(shardEnv)
	mine, err := harness.Shard(todo, shard)
	if err != nil {
		ginkgo.Fail(fmt.Sprintf("gate: %s: %v", shardEnv, err))
	}
	for _, e := range todo {
		if !slices.ContainsFunc(mine, func(m TableEntry) bool { return m.name == e.name }) {
			t.elsewhere[e.name] = true
		}
	}
	if len(mine) == 0 {
		return
	}
	names := make([]string, len(mine))
	for i, e := range mine {
		names[i] = e.name
	}
	listed := strings.Join(names, "; ")
	if len(names) > maxListed {
		listed = strings.Join(names[:maxListed], "; ") + fmt.Sprintf("; and %d more", len(names)-maxListed)
	}
	of := fmt.Sprintf("%d of %d entries", len(mine), cellEntries)
	if shard != "" {
		of += " (shard " + shard + ")"
	}
	ginkgo.GinkgoWriter.Printf("gate %s: measuring %s together: %s\n", t.text, of, listed)
	requireLab()
	// Bad input in an entry is that entry's failure alone.
	var cells []Cell
	names = names[:0]
	for _, e := range mine {
		cfg, err := e.cell.config()
		if err == nil {
			if _, rerr := harness.Resolve(cfg); rerr != nil {
				err = fmt.Errorf("gate cell %s: %w", e.cell.name(), rerr)
			}
		}
		if err != nil {
			t.errs[e.name] = err
			ginkgo.GinkgoWriter.Printf("gate %s: entry %q is not measured: %v\n", t.text, e.name, err)
			continue
		}
		cells = append(cells, e.cell)
		names = append(names, e.name)
	}
	if len(cells) == 0 {
		return
	}
	prefix := reportName() + " "
	out, err := runAll(ctx, cells, func(p harness.Progress) { ginkgo.GinkgoWriter.Println(prefix + p.String()) })
	if out == nil {
		t.measureErr = err
		ginkgo.Fail(err.Error())
	}
	t.runErr = err
	for i, r := range out {
		r.Entry = names[i]
		t.results[names[i]] = r
	}
	if w, _, err := sharedReport(); err == nil {
		ginkgo.GinkgoWriter.Printf("gate %s: samples in %s\n", t.text, w.Path())
		if q := w.Snapshot().Environment.CalibrationErrorMs; q != nil {
			exp := gmeasure.NewExperiment(t.text)
			exp.RecordValue("calibration p99", q.P99, gmeasure.Units("ms"))
			ginkgo.AddReportEntry(exp.Name, exp, ginkgo.ReportEntryVisibilityFailureOrVerbose)
		}
	}
}

// result is the result of the entry named name: an entry of another
// shard skips the running spec, and one that was not measured fails it,
// saying why.
func (t *table) result(name string) *Result {
	ginkgo.GinkgoHelper()
	switch {
	case t.elsewhere[name]:
		ginkgo.Skip(fmt.Sprintf("entry %q belongs to another shard than %s", name, os.Getenv(shardEnv)))
	case t.errs[name] != nil:
		ginkgo.Fail(fmt.Sprintf("entry %q: %v", name, t.errs[name]))
	case t.results[name] == nil && t.measureErr != nil:
		ginkgo.Fail(fmt.Sprintf("entry %q was not measured: %v", name, t.measureErr))
	case t.results[name] == nil:
		ginkgo.Fail(fmt.Sprintf("entry %q was not measured: the filters Ginkgo previewed did not choose it; is the suite run by gate.RunSpecs?", name))
	}
	return t.results[name]
}

// judge is an entry's spec: its result against what it expects, or a
// claim over the results it reads.
func (t *table) judge(e TableEntry) {
	if e.claim != nil {
		rs := map[string]*Result{}
		for _, n := range e.needs {
			rs[n] = t.result(n)
			ginkgo.AddReportEntry(measuredEntry, rs[n].Describe, ginkgo.ReportEntryVisibilityNever)
		}
		e.claim(rs)
		return
	}
	r := t.result(e.name)
	record(e.name, r)
	ginkgo.AddReportEntry(e.name, r.String(), ginkgo.ReportEntryVisibilityFailureOrVerbose)
	for _, m := range e.expect {
		gomega.Expect(r).To(m)
	}
	for _, check := range e.checks {
		check(r)
	}
}

// cellLabels are an entry's labels from its cell: the fault's name and
// family, the side, and a Detector's name and family.
func cellLabels(c Cell) []string {
	var out []string
	add := func(name string) {
		out = append(out, name)
		if family, _, ok := strings.Cut(name, "-"); ok {
			out = append(out, family)
		}
	}
	if c.Fault.spec != "" {
		add(spec.Name(c.Fault.spec))
	}
	side := c.Side
	if side == "" {
		side = SideClient
	}
	out = append(out, string(side))
	if c.Watcher.detector != "" && c.Watcher.err == nil {
		add(spec.Name(c.Watcher.detector))
	}
	return out
}

// unique is labels sorted, each once.
func unique(labels []string) []string {
	out := slices.Clone(labels)
	slices.Sort(out)
	return slices.Compact(out)
}

// specKey names a spec by its node: the containers it is in, each by its
// text and where it was declared, and its own text (an entry's name,
// unique in its table).
func specKey(texts []string, at []types.CodeLocation, leaf string) string {
	var b strings.Builder
	for i, text := range texts {
		fmt.Fprintf(&b, "%s@%s\x00", text, at[i])
	}
	b.WriteString(leaf)
	return b.String()
}

// The specs the filters chose, as RunSpecs previewed them, by specKey.
// previewed says RunSpecs previewed the suite.
var preview struct {
	sync.Mutex
	previewed bool
	chosen    map[string]bool
}

// chosenEntry says whether Ginkgo will run the spec key names; a suite
// RunSpecs did not preview fails the running node.
func chosenEntry(key string) bool {
	preview.Lock()
	defer preview.Unlock()
	if !preview.previewed {
		ginkgo.Fail("gate: a gate.DescribeTable needs its suite run by gate.RunSpecs (not ginkgo.RunSpecs), which previews which entries the filters choose so that only those are measured")
	}
	return preview.chosen[key]
}

// RunSpecs runs a gate suite in place of Ginkgo's RunSpecs, with the same
// arguments and a Suite among them if the suite names its report: it
// previews which specs the filters choose (so that a table measures only
// those entries), names the suite's report (Suite, or the package doc's
// rule), and runs the specs. It registers Gomega's fail handler.
func RunSpecs(t *testing.T, description string, args ...any) bool {
	t.Helper()
	gomega.RegisterFailHandler(ginkgo.Fail)
	suiteName = description
	var rest []any
	for _, a := range args {
		if s, ok := a.(Suite); ok {
			gateSuite = s
			continue
		}
		rest = append(rest, a)
	}
	rep := ginkgo.PreviewSpecs(description, rest...)
	chosen := map[string]bool{}
	for _, sr := range rep.SpecReports {
		if sr.LeafNodeType == types.NodeTypeIt && sr.State == types.SpecStatePassed {
			chosen[specKey(sr.ContainerHierarchyTexts, sr.ContainerHierarchyLocations, sr.LeafNodeText)] = true
		}
	}
	preview.Lock()
	preview.previewed, preview.chosen = true, chosen
	preview.Unlock()
	return ginkgo.RunSpecs(t, description, rest...)
}
