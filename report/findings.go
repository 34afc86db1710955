package report

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/halfopen/halfopen/spec"
	"github.com/halfopen/halfopen/tcprules"
)

// finding is one headline drawn from the measurements: a lead and
// sub-lines of text with links to the cells they rest on.
type finding struct {
	Title string
	Parts []findingPart
	Lines [][]findingPart
}

// findingPart is plain text, or a cell reference when Cell ≥ 0.
type findingPart struct {
	Text string
	Cell int
}

// silentFaults returns the detection faults in which the peer falls
// silent: those for which theory says at least one detector never decides
// (no FIN, no RST reaches it). The set comes from the cells' own Expect.
func silentFaults(r *Report) map[string]bool {
	out := map[string]bool{}
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Kind == KindDetection && c.Expect == ExpectNever {
			out[c.Fault] = true
		}
	}
	return out
}

// buildFindings draws the headlines from the measurements: who notices a
// silent peer and how fast (directly and behind a proxy), who drops a live
// peer under each kind of disturbance, what the ones that notice cost
// while idle, and which cells disagree with theory.
func buildFindings(r *Report, verdicts []Verdict, lb *labeller) []finding {
	var out []finding
	silent := silentFaults(r)
	for _, path := range []string{"direct", "toxiproxy"} {
		if f, ok := silentFinding(r, silent, path, lb); ok {
			out = append(out, f)
		}
	}
	out = append(out, disturbanceFindings(r, lb)...)
	if f, ok := overheadFinding(r, silent, lb); ok {
		out = append(out, f)
	}
	out = append(out, surpriseFinding(r, verdicts, lb))
	if f, ok := forecastFinding(r, lb); ok {
		out = append(out, f)
	}
	return out
}

// forecastMissesShown bounds the samples the forecast finding lists one
// by one; the Residuals section and each cell's samples hold the rest.
const forecastMissesShown = 20

// forecastFinding says how many detected samples came within ResidualGoal
// of their own forecast, and names every sample that missed it (a
// decision beyond the goal, or a censoring the judge finds against its
// forecast) with its cell, its residual and the rule.
func forecastFinding(r *Report, lb *labeller) (finding, bool) {
	f := finding{Title: "Against each sample's own forecast"}
	n, within := 0, 0
	type miss struct {
		cell, sample int
		why          string
	}
	var misses []miss
	for i := range r.Cells {
		c := &r.Cells[i]
		for j, s := range c.Samples {
			if s.Forecast == nil || s.Error != "" {
				continue
			}
			if s.Detected && s.ResidualS != nil {
				n++
				if math.Abs(*s.ResidualS) <= ResidualGoal.Seconds() {
					within++
				}
			}
			if why := c.ForecastMiss(s); why != "" {
				misses = append(misses, miss{i, j, why})
			}
		}
	}
	if n == 0 && len(misses) == 0 {
		return f, false
	}
	f.text(fmt.Sprintf("%d of %d detected samples with a forecast decided within ± %s of it", within, n, FormatSeconds(ResidualGoal.Seconds())))
	if len(misses) == 0 {
		f.text("; no sample missed its forecast.")
		return f, true
	}
	f.text(fmt.Sprintf("; %s missed it:", plural(len(misses), "sample", "samples")))
	name := func(c *Cell) string {
		return lb.of(c.Detector) + " × " + lb.of(c.Fault) + " (" + c.Side + phaseSuffix(c.Phase) + ")"
	}
	for k, m := range misses {
		if k == forecastMissesShown {
			break
		}
		c := &r.Cells[m.cell]
		f.line()
		f.cell(name(c), m.cell)
		f.text(fmt.Sprintf(" sample %d: %s", m.sample, m.why))
	}
	if len(misses) > forecastMissesShown {
		// The rest, each named still, one line per cell with each
		// sample's residual; the rule is in the cell's samples.
		f.line()
		f.text(fmt.Sprintf("and %d more, by cell (each rule with the cell's samples):", len(misses)-forecastMissesShown))
		rest := misses[forecastMissesShown:]
		for k := 0; k < len(rest); {
			c := &r.Cells[rest[k].cell]
			var parts []string
			for ; k < len(rest) && &r.Cells[rest[k].cell] == c; k++ {
				s := c.Samples[rest[k].sample]
				if s.Detected && s.ResidualS != nil {
					parts = append(parts, fmt.Sprintf("%d (%s)", rest[k].sample, signedResidual(*s.ResidualS)))
				} else {
					parts = append(parts, fmt.Sprintf("%d (censored)", rest[k].sample))
				}
			}
			word := "samples"
			if len(parts) == 1 {
				word = "sample"
			}
			f.line()
			f.cell(name(c), rest[k-1].cell)
			f.text(" " + word + " " + strings.Join(parts, ", "))
		}
	}
	return f, true
}

// phaseSuffix names a phase other than idle after a cell's side.
func phaseSuffix(p string) string {
	if p == "" || p == string(tcprules.PhaseIdle) {
		return ""
	}
	return ", " + string(p)
}

// detectorTally sums one detector's samples over a set of cells.
type detectorTally struct {
	detector string
	samples  int // without errors
	detected int
	times    []float64
	faults   map[string]bool
	cell     int // one cell to link to
}

func (t *detectorTally) p50() float64 {
	sortFloats(t.times)
	return NearestRank(t.times, 0.5)
}

// tallies adds a lead and the detectors of ts, each linked to its cell
// and followed by what suffix says of it.
func (f *finding) tallies(lead string, ts []*detectorTally, lb *labeller, suffix func(*detectorTally) string) {
	f.text(lead)
	for i, t := range ts {
		if i > 0 {
			f.text(" · ")
		}
		f.cell(lb.of(t.detector), t.cell)
		f.text(suffix(t))
	}
}

func pathOf(c *Cell) string {
	if c.Path == "" {
		return "direct"
	}
	return c.Path
}

func silentFinding(r *Report, silent map[string]bool, path string, lb *labeller) (finding, bool) {
	tallies := map[string]*detectorTally{}
	var order []string
	faults := map[string]bool{}
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Kind != KindDetection || !silent[c.Fault] || pathOf(c) != path {
			continue
		}
		faults[c.Fault] = true
		t := tallies[c.Detector]
		if t == nil {
			t = &detectorTally{detector: c.Detector, faults: map[string]bool{}, cell: i}
			tallies[c.Detector] = t
			order = append(order, c.Detector)
		}
		t.faults[c.Fault] = true
		for _, s := range c.Samples {
			if s.Error != "" {
				continue
			}
			t.samples++
			if s.Detected && s.Seconds != nil {
				t.detected++
				t.times = append(t.times, *s.Seconds)
			}
		}
	}
	if len(order) == 0 {
		return finding{}, false
	}
	var always, some, never []*detectorTally
	for _, d := range order {
		t := tallies[d]
		switch {
		case t.samples == 0:
		case t.detected == t.samples:
			always = append(always, t)
		case t.detected == 0:
			never = append(never, t)
		default:
			some = append(some, t)
		}
	}
	sort.SliceStable(always, func(i, j int) bool { return always[i].p50() < always[j].p50() })
	sort.SliceStable(some, func(i, j int) bool { return some[i].detected*some[j].samples > some[j].detected*some[i].samples })
	f := finding{Title: "A silent peer"}
	if path != "direct" {
		f.Title = "A silent peer behind " + path
	}
	names := make([]string, 0, len(faults))
	for _, ff := range sortedKeys(faults) {
		names = append(names, lb.of(ff))
	}
	f.text(fmt.Sprintf("over %s in which theory says some detector never notices the dead peer (no FIN or RST reaches it), %s measured.", plural(len(names), "fault", "faults"), plural(len(order), "detector was", "detectors were")))
	f.line()
	if len(always) == 0 {
		f.text("No detector noticed it in every sample.")
	} else {
		f.tallies("Noticed it in every sample, fastest first (p50): ", always, lb, func(t *detectorTally) string { return " " + FormatSeconds(t.p50()) })
	}
	if len(some) > 0 {
		f.line()
		f.tallies("Only sometimes: ", some, lb, func(t *detectorTally) string { return fmt.Sprintf(" %d of %d samples", t.detected, t.samples) })
	}
	if len(never) > 0 {
		f.line()
		f.tallies("Never, in any sample: ", never, lb, func(*detectorTally) string { return "" })
	}
	f.line()
	f.text("The faults: " + strings.Join(names, ", ") + ".")
	return f, true
}

// disturbanceFindings returns one finding per kind (spec name) of
// disturbance: which detectors dropped a live peer, in which of its
// variants, and how many survived every variant.
func disturbanceFindings(r *Report, lb *labeller) []finding {
	type hit struct {
		detector string
		variants []string
		fps      int
		samples  int
		cell     int
	}
	byName := map[string][]*hit{}
	var names []string
	survivors := map[string]map[string]bool{}
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Kind != KindDisturbance {
			continue
		}
		name := spec.Name(c.Fault)
		if _, ok := survivors[name]; !ok {
			survivors[name] = map[string]bool{}
			names = append(names, name)
		}
		if c.FalsePositives == 0 {
			if _, dropped := survivors[name][c.Detector]; !dropped {
				survivors[name][c.Detector] = true
			}
			continue
		}
		survivors[name][c.Detector] = false
		var h *hit
		for _, x := range byName[name] {
			if x.detector == c.Detector {
				h = x
			}
		}
		if h == nil {
			h = &hit{detector: c.Detector, cell: i}
			byName[name] = append(byName[name], h)
		}
		v := variantLabel(c.Fault, lb)
		if !slices.Contains(h.variants, v) {
			h.variants = append(h.variants, v)
		}
		h.fps += c.FalsePositives
		h.samples += len(c.Samples)
	}
	var out []finding
	var quiet []string
	for _, name := range names {
		ok := 0
		for _, v := range survivors[name] {
			if v {
				ok++
			}
		}
		hits := byName[name]
		if len(hits) == 0 {
			quiet = append(quiet, fmt.Sprintf("%s (%d)", name, ok))
			continue
		}
		f := finding{Title: "Under " + name}
		lead := plural(len(hits), "detector", "detectors") + " dropped a live connection"
		if ok > 0 {
			lead += "; " + plural(ok, "other", "others") + " survived every variant"
		}
		f.text(lead + ".")
		for _, h := range hits {
			f.line()
			f.cell(lb.of(h.detector), h.cell)
			f.text(fmt.Sprintf(": %s in %d samples", plural(h.fps, "false positive", "false positives"), h.samples))
			if v := variantsText(h.variants); v != "" {
				f.text(", at " + v)
			}
		}
		out = append(out, f)
	}
	if len(quiet) > 0 {
		f := finding{Title: "Kept the live connection"}
		f.text("every detector measured under " + strings.Join(quiet, ", ") + " (how many detectors in parentheses).")
		out = append(out, f)
	}
	return out
}

// variantsText lists the variants of a fault ("outage=600ms") sorted by
// their value when each is one duration parameter of the same key, which
// is then named once: "outage=600ms, 1.2s, 4.8s".
func variantsText(vs []string) string {
	if len(vs) == 0 || (len(vs) == 1 && vs[0] == "") {
		return ""
	}
	type kv struct {
		k, v string
		d    time.Duration
	}
	var parsed []kv
	for _, v := range vs {
		k, val, ok := strings.Cut(v, "=")
		d, err := time.ParseDuration(val)
		if !ok || err != nil || strings.Contains(val, ",") || (len(parsed) > 0 && parsed[0].k != k) {
			return strings.Join(vs, "; ")
		}
		parsed = append(parsed, kv{k, val, d})
	}
	sort.SliceStable(parsed, func(i, j int) bool { return parsed[i].d < parsed[j].d })
	vals := make([]string, len(parsed))
	for i, p := range parsed {
		vals[i] = p.v
	}
	return parsed[0].k + "=" + strings.Join(vals, ", ")
}

// variantLabel returns the parameters of a fault's short label ("outage=1s"
// of "router-restart:outage=1s"), or "" without any.
func variantLabel(fault string, lb *labeller) string {
	_, params, _ := strings.Cut(lb.of(fault), ":")
	return params
}

// overheadFinding compares the idle cost of the detectors that noticed a
// silent peer in every direct sample.
func overheadFinding(r *Report, silent map[string]bool, lb *labeller) (finding, bool) {
	always := map[string]bool{}
	missed := map[string]bool{}
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Kind != KindDetection || !silent[c.Fault] || pathOf(c) != "direct" {
			continue
		}
		st := c.Stats()
		if st.Detected == st.N-st.Errors && st.Detected > 0 {
			always[c.Detector] = true
		} else {
			missed[c.Detector] = true
		}
	}
	type cost struct {
		detector string
		pkts     []float64
		bytes    []float64
		cell     int
	}
	costs := map[string]*cost{}
	var order []string
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Overhead == nil || !always[c.Detector] || missed[c.Detector] || pathOf(c) != "direct" {
			continue
		}
		x := costs[c.Detector]
		if x == nil {
			x = &cost{detector: c.Detector, cell: i}
			costs[c.Detector] = x
			order = append(order, c.Detector)
		}
		x.pkts = append(x.pkts, c.Overhead.PacketsPerConnMin)
		x.bytes = append(x.bytes, c.Overhead.BytesPerConnMin)
	}
	if len(order) < 2 {
		return finding{}, false
	}
	med := func(xs []float64) float64 { sortFloats(xs); return NearestRank(xs, 0.5) }
	sort.SliceStable(order, func(i, j int) bool { return med(costs[order[i]].pkts) < med(costs[order[j]].pkts) })
	f := finding{Title: "The price of noticing"}
	f.text("while idle and healthy, the detectors that always noticed a silent peer cost, per connection-minute (median over the cells that measured it):")
	f.line()
	for i, d := range order {
		if i > 0 {
			f.text(" · ")
		}
		x := costs[d]
		f.cell(lb.of(d), x.cell)
		f.text(fmt.Sprintf(" %s packets, %s bytes", formatCount(med(x.pkts)), formatCount(med(x.bytes))))
	}
	return f, true
}

// surpriseFinding lists the cells that disagree with theory or errored.
func surpriseFinding(r *Report, verdicts []Verdict, lb *labeller) finding {
	var outside, errs []int
	for i, v := range verdicts {
		switch v.Outcome {
		case OutcomeOutside:
			outside = append(outside, i)
		case OutcomeError:
			errs = append(errs, i)
		}
	}
	f := finding{Title: "Against theory"}
	judged := 0
	for i := range r.Cells {
		if r.Cells[i].Kind == KindDetection && len(r.Cells[i].Samples) > 0 {
			judged++
		}
	}
	if len(outside) == 0 && len(errs) == 0 {
		if judged == 1 {
			f.text("the one detection cell matched its theory, and no sample errored.")
		} else {
			f.text(fmt.Sprintf("every one of the %d detection cells matched its theory, and no sample errored.", judged))
		}
		return f
	}
	list := func(idx []int) {
		for _, i := range idx {
			c := &r.Cells[i]
			f.line()
			f.cell(lb.of(c.Detector)+" × "+lb.of(c.Fault)+" ("+c.Side+")", i)
			f.text(": " + verdicts[i].Why)
		}
	}
	var lead []string
	if len(outside) > 0 {
		lead = append(lead, fmt.Sprintf("%s of %d detection cells fell outside their prediction", plural(len(outside), "cell", "cells"), judged))
	}
	if len(errs) > 0 {
		lead = append(lead, fmt.Sprintf("%s had samples the harness could not measure", plural(len(errs), "cell", "cells")))
	}
	f.text(strings.Join(lead, "; ") + ".")
	list(outside)
	list(errs)
	return f
}

// line starts a sub-line of the finding; text and cell then add to it.
func (f *finding) line() { f.Lines = append(f.Lines, nil) }

func (f *finding) add(p findingPart) {
	if n := len(f.Lines); n > 0 {
		f.Lines[n-1] = append(f.Lines[n-1], p)
		return
	}
	f.Parts = append(f.Parts, p)
}

func (f *finding) text(s string) { f.add(findingPart{Text: s, Cell: -1}) }

func (f *finding) cell(s string, i int) { f.add(findingPart{Text: s, Cell: i}) }
