package gate

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
	gtypes "github.com/onsi/gomega/types"
)

// TableEntry is one cell of a table (DescribeTable) with what it must
// show: built by Entry.
type TableEntry struct {
	name   string
	cell   Cell
	expect []gtypes.GomegaMatcher
	checks []func(*Result)
	decos  []any
}

// Entry is one entry of a table: its name (the spec's text, and the key
// of its result and its gmeasure experiment), its cell, and then, in any
// order, the Gomega matchers its result must satisfy (DetectWithin,
// Survive, ...), funcs that check its *Result themselves, and Ginkgo
// decorators for its spec (Label("recommended"), Serial, ...). Entries
// are told apart by name: a name given twice in one table panics.
func Entry(name string, cell Cell, args ...any) TableEntry {
	e := TableEntry{name: name, cell: cell}
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

// DefaultTableTimeout bounds the measurement of a table's chosen entries
// unless the table is given a ginkgo.NodeTimeout.
const DefaultTableTimeout = 30 * time.Minute

// DescribeTable is a gate: a Ginkgo container named text whose entries
// (Entry) are each a spec of their own, with their own labels, and are
// measured together in one run of the harness's pool before the first of
// them is judged. Only the entries Ginkgo's filters (--focus, --skip,
// --label-filter, focused specs) choose are measured; each entry's spec
// then finds its own result by name, records its samples in gmeasure
// under the entry's name, and asserts what the entry expects. Besides
// entries, args takes Ginkgo decorators for the container (Label(...),
// applied to every entry) and a ginkgo.NodeTimeout for the measurement
// (default DefaultTableTimeout).
//
// It needs the suite to be run by RunSpecs (this package's), which
// previews the filters' choice; a table run by Ginkgo's own RunSpecs
// fails with a sentence saying so.
func DescribeTable(text string, args ...any) bool {
	var entries []TableEntry
	var decos []any
	timeout := ginkgo.NodeTimeout(DefaultTableTimeout)
	seen := map[string]bool{}
	for _, a := range args {
		switch v := a.(type) {
		case TableEntry:
			if seen[v.name] {
				panic(fmt.Sprintf("gate table %q: entry %q given twice; entries are found by name", text, v.name))
			}
			seen[v.name] = true
			entries = append(entries, v)
		case []TableEntry:
			for _, e := range v {
				if seen[e.name] {
					panic(fmt.Sprintf("gate table %q: entry %q given twice; entries are found by name", text, e.name))
				}
				seen[e.name] = true
				entries = append(entries, e)
			}
		case ginkgo.NodeTimeout:
			timeout = v
		default:
			decos = append(decos, v)
		}
	}
	results := map[string]*Result{}
	var measureErr error
	body := func() {
		ginkgo.BeforeAll(func(ctx ginkgo.SpecContext) {
			var chosen []TableEntry
			var cells []Cell
			for _, e := range entries {
				if chosenEntry(text, e.name) {
					chosen = append(chosen, e)
					cells = append(cells, e.cell)
				}
			}
			if len(cells) == 0 {
				return
			}
			names := make([]string, len(chosen))
			for i, e := range chosen {
				names[i] = e.name
			}
			ginkgo.GinkgoWriter.Printf("gate %s: measuring %d of %d entries together: %s\n", text, len(chosen), len(entries), strings.Join(names, "; "))
			requireLab()
			out, err := RunAll(ctx, cells...)
			if err != nil {
				measureErr = err
				ginkgo.Fail(err.Error())
			}
			for i, r := range out {
				r.Entry = chosen[i].name
				results[chosen[i].name] = r
			}
		}, timeout)
		for _, e := range entries {
			ginkgo.It(e.name, append([]any{func() {
				r := results[e.name]
				if r == nil {
					if measureErr != nil {
						ginkgo.Fail(fmt.Sprintf("entry %q was not measured: %v", e.name, measureErr))
					}
					ginkgo.Fail(fmt.Sprintf("entry %q was not measured: the filters Ginkgo previewed did not choose it; is the suite run by gate.RunSpecs?", e.name))
				}
				record(e.name, r)
				ginkgo.AddReportEntry(e.name, r.String())
				for _, m := range e.expect {
					gomega.Expect(r).To(m)
				}
				for _, check := range e.checks {
					check(r)
				}
			}}, e.decos...)...)
		}
	}
	return ginkgo.Describe(text, append([]any{ginkgo.Ordered, ginkgo.ContinueOnFailure, body}, decos...)...)
}

// The entries the filters chose, as RunSpecs previewed them: table text →
// entry name → chosen. previewed says RunSpecs previewed the suite.
var preview struct {
	sync.Mutex
	previewed bool
	chosen    map[string]map[string]bool
}

// chosenEntry says whether Ginkgo will run the entry named name of the
// table text; a suite RunSpecs did not preview fails the running node.
func chosenEntry(table, name string) bool {
	preview.Lock()
	defer preview.Unlock()
	if !preview.previewed {
		ginkgo.Fail("gate: a gate.DescribeTable needs its suite run by gate.RunSpecs (not ginkgo.RunSpecs), which previews which entries the filters choose so that only those are measured")
	}
	return preview.chosen[table][name]
}

// RunSpecs runs a gate suite in place of Ginkgo's RunSpecs, with the same
// arguments: it previews which specs the filters choose (so that a table
// measures only those entries), names the suite's report after the gate
// (see the package doc), and runs the specs. It registers Gomega's fail
// handler.
func RunSpecs(t *testing.T, description string, args ...any) bool {
	t.Helper()
	gomega.RegisterFailHandler(ginkgo.Fail)
	suiteName = description
	rep := ginkgo.PreviewSpecs(description, args...)
	chosen := map[string]map[string]bool{}
	for _, sr := range rep.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt || sr.State != types.SpecStatePassed || len(sr.ContainerHierarchyTexts) == 0 {
			continue
		}
		table := sr.ContainerHierarchyTexts[len(sr.ContainerHierarchyTexts)-1]
		if chosen[table] == nil {
			chosen[table] = map[string]bool{}
		}
		chosen[table][sr.LeafNodeText] = true
	}
	preview.Lock()
	preview.previewed, preview.chosen = true, chosen
	preview.Unlock()
	return ginkgo.RunSpecs(t, description, args...)
}
