package report

import (
	"slices"
	"sort"
	"time"

	"github.com/halfopen/halfopen/spec"
)

// overview is what the first screen of a report shows: a matrix per side
// and the findings, with the names and legends they refer to.
type overview struct {
	r        *Report
	verdicts []Verdict // per cell index
	labels   *labeller
	matrices []matrix
	findings []finding
	legends  legends
}

// matrix is the detector × fault table of one side.
type matrix struct {
	Side      string
	Detectors []string // columns, full specs
	Rows      []matrixRow
}

// matrixRow is one fault of a matrix: one entry per detector column.
type matrixRow struct {
	Fault string
	Kind  Kind
	// Phase is the cells' phase ("" for idle): an in-flight cell has a
	// row of its own under its fault.
	Phase string
	Cells []int // index into Report.Cells, −1 where none was measured
}

func newOverview(r *Report) *overview {
	o := &overview{r: r, verdicts: make([]Verdict, len(r.Cells))}
	for i := range r.Cells {
		o.verdicts[i] = r.Cells[i].Judge()
	}
	o.labels = newLabeller(r)
	o.legends = newLegends(r)
	o.matrices = buildMatrices(r, o.verdicts)
	o.findings = buildFindings(r, o.verdicts, o.labels)
	return o
}

// buildMatrices returns one matrix per side: faults as rows (detection
// faults first, then disturbances, each in the order the run measured
// them), detectors as columns in the order the run measured them.
func buildMatrices(r *Report, verdicts []Verdict) []matrix {
	var out []matrix
	for _, side := range sidesOf(r) {
		m := matrix{Side: side}
		col := map[string]int{}
		type rowKey struct {
			fault string
			kind  Kind
			phase string
		}
		rowIdx := map[rowKey]int{}
		var rows []matrixRow
		for i := range r.Cells {
			c := &r.Cells[i]
			if c.Side != side || c.Kind == KindCalibration {
				continue
			}
			if _, ok := col[c.Detector]; !ok {
				col[c.Detector] = len(m.Detectors)
				m.Detectors = append(m.Detectors, c.Detector)
			}
			k := rowKey{c.Fault, c.Kind, c.Phase}
			if _, ok := rowIdx[k]; !ok {
				rowIdx[k] = len(rows)
				rows = append(rows, matrixRow{Fault: c.Fault, Kind: c.Kind, Phase: c.Phase})
			}
		}
		for i := range rows {
			rows[i].Cells = slices.Repeat([]int{-1}, len(m.Detectors))
		}
		for i := range r.Cells {
			c := &r.Cells[i]
			if c.Side != side || c.Kind == KindCalibration {
				continue
			}
			row := &rows[rowIdx[rowKey{c.Fault, c.Kind, c.Phase}]]
			j := col[c.Detector]
			// Two cells in one place (a re-run): show the worse.
			if prev := row.Cells[j]; prev < 0 || verdicts[i].Outcome > verdicts[prev].Outcome {
				row.Cells[j] = i
			}
		}
		// Detection faults, then disturbances; the variants of one fault
		// together, where its name first appeared, in the order of their
		// parameters' durations.
		first := map[string]int{}
		for i, row := range rows {
			if _, ok := first[spec.Name(row.Fault)]; !ok {
				first[spec.Name(row.Fault)] = i
			}
		}
		sort.SliceStable(rows, func(a, b int) bool {
			ra, rb := rows[a], rows[b]
			if ka, kb := kindRank(ra.Kind), kindRank(rb.Kind); ka != kb {
				return ka < kb
			}
			if fa, fb := first[spec.Name(ra.Fault)], first[spec.Name(rb.Fault)]; fa != fb {
				return fa < fb
			}
			if ra.Fault != rb.Fault {
				return specLess(ra.Fault, rb.Fault)
			}
			return ra.Phase < rb.Phase
		})
		m.Rows = rows
		out = append(out, m)
	}
	return out
}

// specLess orders two specs of one name by the first parameter in which
// they differ, as durations when both values are (outage=600ms before
// outage=1.2s); false when that cannot tell, which keeps their order.
func specLess(a, b string) bool {
	sa, errA := spec.Parse(a)
	sb, errB := spec.Parse(b)
	if errA != nil || errB != nil {
		return false
	}
	pa, pb := sa.Params, sb.Params
	for _, k := range sortedKeys(pa) {
		if pa[k] == pb[k] {
			continue
		}
		da, errA := time.ParseDuration(pa[k])
		db, errB := time.ParseDuration(pb[k])
		if errA == nil && errB == nil {
			return da < db
		}
		return false
	}
	return false
}

func kindRank(kind Kind) int {
	if i := slices.Index(knownKinds, kind); i >= 0 {
		return i
	}
	return len(knownKinds)
}

// sidesOf returns the sides present in r, client first.
func sidesOf(r *Report) []string {
	seen := map[string]bool{}
	for i := range r.Cells {
		if r.Cells[i].Kind != KindCalibration {
			seen[r.Cells[i].Side] = true
		}
	}
	var out []string
	for _, s := range []string{"client", "server"} {
		if seen[s] {
			out = append(out, s)
			delete(seen, s)
		}
	}
	return append(out, sortedKeys(seen)...)
}
