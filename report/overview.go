package report

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/halfopen/halfopen/spec"
)

// PredictionTolerance is added on both sides of a predicted range when a
// detected sample is judged inside it: process wake-ups and scheduling on
// a busy machine, not the kernel's timers. The fault suites assert with
// the same margin.
const PredictionTolerance = 150 * time.Millisecond

// Outcome is what a cell's samples say against theory, at a glance.
type Outcome int

// Outcomes, from the ones a reader can skip to the ones a reader must look
// at; a matrix shows the worst of the cells it merges.
const (
	// OutcomeNone is a cell without samples.
	OutcomeNone Outcome = iota
	// OutcomeWithin is a detection cell whose every sample decided inside
	// its predicted range (± PredictionTolerance), with a predicted reason.
	OutcomeWithin
	// OutcomeMeasured is a detection cell whose every sample decided, where
	// theory gives no range to check it against.
	OutcomeMeasured
	// OutcomeNever is a detection cell in which, as theory says, no sample
	// decided within its budget.
	OutcomeNever
	// OutcomeSurvived is a disturbance the connection survived with no
	// false positive.
	OutcomeSurvived
	// OutcomeFalsePositive is a disturbance in which the detector decided
	// that a live peer was dead.
	OutcomeFalsePositive
	// OutcomeOutside is a detection cell that disagrees with theory: a
	// sample outside its predicted range or with an unpredicted reason, a
	// censored sample where theory says it detects, or a decision where
	// theory says never.
	OutcomeOutside
	// OutcomeError is a cell with a sample the harness could not measure.
	OutcomeError
)

// outcomeInfo is how an outcome is named and drawn.
var outcomeInfo = map[Outcome]struct {
	name  string // the legend's words
	class string // CSS class in the HTML
	emoji string // Markdown glyph
}{
	OutcomeNone:          {"no samples", "o-none", "▫️"},
	OutcomeWithin:        {"detected within its prediction (p50 shown)", "o-within", "🟢"},
	OutcomeMeasured:      {"detected; theory gives no range (p50 shown)", "o-measured", "🔵"},
	OutcomeNever:         {"never detected, as theory says", "o-never", "⚪"},
	OutcomeSurvived:      {"survived the disturbance, as it should", "o-survived", "✅"},
	OutcomeFalsePositive: {"false positives: dropped a live peer (count shown)", "o-fp", "🟠"},
	OutcomeOutside:       {"outside its prediction: look at it", "o-outside", "🔴"},
	OutcomeError:         {"a sample could not be measured", "o-error", "❌"},
}

// String returns the outcome's words, as in the legend.
func (o Outcome) String() string { return outcomeInfo[o].name }

// Verdict is a cell's outcome with the few words that explain it.
type Verdict struct {
	Outcome Outcome
	// Short is what fits in a matrix cell: the p50, the false-positive
	// count, "never", "ok" or "err".
	Short string
	// Why is one sentence on how the outcome was reached.
	Why string
}

// Judge returns the cell's outcome against its theory.
func (c *Cell) Judge() Verdict {
	if c.Kind == KindScale && c.Scale != nil {
		return c.judgeScale()
	}
	st := c.Stats()
	if st.N == 0 {
		return Verdict{OutcomeNone, "", "no samples"}
	}
	if st.Errors > 0 {
		first := ""
		for i, s := range c.Samples {
			if s.Error != "" {
				first = fmt.Sprintf("sample %d: %s", i, s.Error)
				break
			}
		}
		return Verdict{OutcomeError, "err", fmt.Sprintf("%d of %d samples could not be measured (%s)", st.Errors, st.N, first)}
	}
	p50 := ""
	if st.P50 != nil {
		p50 = FormatSeconds(*st.P50)
	}
	if c.Kind == KindDisturbance {
		if c.FalsePositives > 0 {
			return Verdict{OutcomeFalsePositive, fmt.Sprintf("✗%d", c.FalsePositives), fmt.Sprintf("%s in %s", plural(c.FalsePositives, "false positive", "false positives"), plural(st.N, "sample", "samples"))}
		}
		return Verdict{OutcomeSurvived, "ok", fmt.Sprintf("survived all %d samples", st.N)}
	}
	if c.Expect == ExpectNever {
		if st.Detected > 0 {
			return Verdict{OutcomeOutside, p50, fmt.Sprintf("theory says never, but %d of %d samples decided (p50 %s)", st.Detected, st.N, p50)}
		}
		return Verdict{OutcomeNever, "never", fmt.Sprintf("no decision within %s in %d samples, as theory says", FormatSeconds(c.BudgetS), st.N)}
	}
	if st.Censored > 0 {
		short := "> " + FormatSeconds(c.BudgetS)
		if st.Detected > 0 {
			short = p50 + "+"
		}
		return Verdict{OutcomeOutside, short, fmt.Sprintf("%d of %d samples did not decide within the budget %s", st.Censored, st.N, FormatSeconds(c.BudgetS))}
	}
	if c.PredictedS == nil {
		return Verdict{OutcomeMeasured, p50, fmt.Sprintf("all %d samples decided, p50 %s; theory gives no range", st.N, p50)}
	}
	for i, s := range c.Samples {
		if why := c.Surprise(s); why != "" {
			return Verdict{OutcomeOutside, p50, fmt.Sprintf("sample %d %s", i, why)}
		}
	}
	return Verdict{OutcomeWithin, p50, fmt.Sprintf("all %d samples inside the predicted %s, p50 %s", st.N, FormatRange(c.PredictedS[0], c.PredictedS[1]), p50)}
}

// Surprise says why one sample of the cell needs a reader's eyes, or ""
// when it agrees with theory: it could not be measured; in a disturbance,
// the detector decided that the live peer was dead; in a detection cell,
// it decided where theory says never, did not decide within the budget
// where theory says it does, or decided outside its predicted range
// (± PredictionTolerance) or with a reason theory does not allow. Judge
// applies it to every sample; a runner keeps the packet capture of a
// sample for which it says something.
func (c *Cell) Surprise(s Sample) string {
	decided := s.Detected && s.Seconds != nil
	switch {
	case s.Error != "":
		return "could not be measured: " + s.Error
	case c.Kind == KindDisturbance && c.Expect == ExpectFalsePositives:
		if s.FalsePositives == 0 && !s.Detected {
			return "survived, where theory says it cannot tell this disturbance from a death"
		}
		return ""
	case c.Kind == KindDisturbance:
		if s.FalsePositives > 0 || s.Detected {
			return fmt.Sprintf("decided the live peer dead (%s)", plural(max(s.FalsePositives, 1), "false positive", "false positives"))
		}
		return ""
	case c.Kind != KindDetection:
		return ""
	case c.Expect == ExpectNever:
		if decided {
			return fmt.Sprintf("decided %s after %s, where theory says never", s.Reason, FormatSeconds(*s.Seconds))
		}
		return ""
	case !decided:
		return "did not decide within the budget " + FormatSeconds(c.BudgetS)
	}
	if p := c.PredictedS; p != nil {
		tol := PredictionTolerance.Seconds()
		if v := *s.Seconds; v < p[0]-tol || v > p[1]+tol {
			return fmt.Sprintf("decided after %s, outside the predicted %s (± %s)", FormatSeconds(v), FormatRange(p[0], p[1]), FormatSeconds(tol))
		}
	}
	if len(c.Reasons) > 0 && !slices.Contains(c.Reasons, s.Reason) {
		return fmt.Sprintf("decided with %s; theory allows %s", s.Reason, strings.Join(c.Reasons, ", "))
	}
	return ""
}

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
	Cells []int // index into Report.Cells, −1 where none was measured
}

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
			k := rowKey{c.Fault, c.Kind}
			if _, ok := rowIdx[k]; !ok {
				rowIdx[k] = len(rows)
				rows = append(rows, matrixRow{Fault: c.Fault, Kind: c.Kind})
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
			row := &rows[rowIdx[rowKey{c.Fault, c.Kind}]]
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
			return specLess(ra.Fault, rb.Fault)
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

// labeller gives detectors and faults short labels: paths cut to their
// base name, and the parameters that every spec of the same name in the
// report shares left out (they tell two columns nothing apart). The full
// spec stays in titles and details.
type labeller struct {
	short map[string]string
}

func newLabeller(r *Report) *labeller {
	l := &labeller{short: map[string]string{}}
	var specs []string
	for i := range r.Cells {
		specs = append(specs, r.Cells[i].Detector, r.Cells[i].Fault)
	}
	for _, p := range r.Frontier {
		specs = append(specs, p.Detector)
	}
	// Parameters common to every spec of a name, with their value.
	type nameParams struct {
		n      int
		common map[string]string
	}
	byName := map[string]*nameParams{}
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s] {
			continue
		}
		seen[s] = true
		sp, err := spec.Parse(s)
		if err != nil {
			continue
		}
		name, params := sp.Name, sp.Params
		np := byName[name]
		if np == nil {
			byName[name] = &nameParams{n: 1, common: params}
			continue
		}
		np.n++
		for k, v := range np.common {
			if params[k] != v {
				delete(np.common, k)
			}
		}
	}
	for s := range seen {
		sp, err := spec.Parse(s)
		if err != nil {
			l.short[s] = s
			continue
		}
		name, params := sp.Name, sp.Params
		var parts []string
		for _, k := range sortedKeys(params) {
			v := params[k]
			if np := byName[name]; np != nil && np.n > 1 && np.common[k] == v && !strings.Contains(v, "/") {
				continue
			}
			if i := strings.LastIndex(v, "/"); i >= 0 {
				v = v[i+1:]
			}
			parts = append(parts, k+"="+v)
		}
		if len(parts) == 0 {
			l.short[s] = name
		} else {
			l.short[s] = name + ":" + strings.Join(parts, ",")
		}
	}
	return l
}

// of returns the short label of a spec.
func (l *labeller) of(spec string) string {
	if s, ok := l.short[spec]; ok {
		return s
	}
	return spec
}

// legends numbers the long texts that many cells share (the rationales of
// their predictions, their notes and their sysctl sets), so each is
// printed once and cells refer to it.
type legends struct {
	Rules   []legendEntry
	Notes   []legendEntry
	Sysctls []sysctlSet
	rule    map[string]int // text → index
	note    map[string]int
	sysctl  map[string]int // canonical set → index
}

// legendEntry is one numbered text and how many cells refer to it.
type legendEntry struct {
	Text  string
	Cells int
}

// sysctlSet is one distinct set of per-role sysctls and the cells that ran
// with it.
type sysctlSet struct {
	Roles []sysctlRole
	Cells []int
}

// sysctlRole is one host role's sysctls.
type sysctlRole struct {
	Role   string
	Values [][2]string
}

func newLegends(r *Report) legends {
	lg := legends{rule: map[string]int{}, note: map[string]int{}, sysctl: map[string]int{}}
	add := func(list *[]legendEntry, idx map[string]int, text string) {
		if text == "" {
			return
		}
		i, ok := idx[text]
		if !ok {
			i = len(*list)
			idx[text] = i
			*list = append(*list, legendEntry{Text: text})
		}
		(*list)[i].Cells++
	}
	for i := range r.Cells {
		c := &r.Cells[i]
		add(&lg.Rules, lg.rule, c.PredictedRule)
		add(&lg.Notes, lg.note, c.Note)
		if len(c.Sysctls) == 0 {
			continue
		}
		key := sysctlKey(c.Sysctls)
		j, ok := lg.sysctl[key]
		if !ok {
			j = len(lg.Sysctls)
			lg.sysctl[key] = j
			set := sysctlSet{}
			// Hosts that ran with the same values share one entry.
			byValues := map[string]int{}
			for _, role := range sortedKeys(c.Sysctls) {
				key := sysctlKey(map[string]map[string]string{"": c.Sysctls[role]})
				if j, ok := byValues[key]; ok {
					set.Roles[j].Role += ", " + role
					continue
				}
				byValues[key] = len(set.Roles)
				sr := sysctlRole{Role: role}
				for _, k := range sortedKeys(c.Sysctls[role]) {
					sr.Values = append(sr.Values, [2]string{k, c.Sysctls[role][k]})
				}
				set.Roles = append(set.Roles, sr)
			}
			lg.Sysctls = append(lg.Sysctls, set)
		}
		lg.Sysctls[j].Cells = append(lg.Sysctls[j].Cells, i)
	}
	return lg
}

// sysctlKey is a canonical text of a set of per-role sysctls.
func sysctlKey(m map[string]map[string]string) string {
	var b strings.Builder
	for _, role := range sortedKeys(m) {
		for _, k := range sortedKeys(m[role]) {
			fmt.Fprintf(&b, "%s/%s=%s\n", role, k, m[role][k])
		}
	}
	return b.String()
}

// ruleRef, noteRef and sysctlRef return the legend labels of a cell's
// rationale, note and sysctl set ("R3", "N1", "S2"), or "".
func (lg *legends) ruleRef(c *Cell) string {
	if i, ok := lg.rule[c.PredictedRule]; ok && c.PredictedRule != "" {
		return fmt.Sprintf("R%d", i+1)
	}
	return ""
}

func (lg *legends) noteRef(c *Cell) string {
	if i, ok := lg.note[c.Note]; ok && c.Note != "" {
		return fmt.Sprintf("N%d", i+1)
	}
	return ""
}

func (lg *legends) sysctlRef(c *Cell) string {
	if len(c.Sysctls) == 0 {
		return ""
	}
	if i, ok := lg.sysctl[sysctlKey(c.Sysctls)]; ok {
		return fmt.Sprintf("S%d", i+1)
	}
	return ""
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
	return out
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

// cellAnchor is the fragment id of a cell's details.
func cellAnchor(i int) string { return fmt.Sprintf("c%d", i) }

// faultGroup is the cells of one fault on one side, in the order they were
// measured: the unit of the per-fault details.
type faultGroup struct {
	Side  string
	Fault string
	Kind  Kind
	Cells []int
}

// faultGroups returns the report's cells grouped by side, kind and fault,
// in the order of the overview's matrices, then the cells no matrix shows
// (calibration), grouped alike in the order of the report: every cell is
// in exactly one group.
func faultGroups(r *Report, ms []matrix) []faultGroup {
	var out []faultGroup
	type key struct {
		side, fault string
		kind        Kind
	}
	index := map[key]int{}
	add := func(k key) {
		if _, ok := index[k]; !ok {
			index[k] = len(out)
			out = append(out, faultGroup{Side: k.side, Fault: k.fault, Kind: k.kind})
		}
	}
	for _, m := range ms {
		for _, row := range m.Rows {
			add(key{m.Side, row.Fault, row.Kind})
		}
	}
	for i := range r.Cells {
		c := &r.Cells[i]
		k := key{c.Side, c.Fault, c.Kind}
		add(k)
		out[index[k]].Cells = append(out[index[k]].Cells, i)
	}
	return out
}

// heading says what a group is: its fault, its side and its kind.
func (g faultGroup) heading(lb *labeller) string {
	parts := []string{}
	if g.Fault != "" {
		parts = append(parts, lb.of(g.Fault))
	}
	if g.Side != "" {
		parts = append(parts, "watcher is the "+g.Side)
	}
	return strings.Join(append(parts, kindTitle(g.Kind)), " · ")
}

// groupAnchor is the fragment id of a fault group's section.
func groupAnchor(side, fault string, kind Kind) string {
	var b strings.Builder
	b.WriteString("f-" + side + "-" + string(kind[:min(len(kind), 3)]) + "-")
	for _, r := range strings.ToLower(fault) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// samplesText lists a cell's samples as people read them.
func samplesText(c *Cell) string {
	parts := make([]string, 0, len(c.Samples))
	for _, s := range c.Samples {
		switch {
		case s.Error != "":
			parts = append(parts, "error")
		case s.Detected && s.Seconds != nil:
			parts = append(parts, FormatSeconds(*s.Seconds))
		case c.Kind == KindDisturbance:
			if s.FalsePositives > 0 {
				parts = append(parts, fmt.Sprintf("✗%d", s.FalsePositives))
			} else {
				parts = append(parts, "ok")
			}
		default:
			parts = append(parts, "> "+FormatSeconds(c.BudgetS))
		}
	}
	return strings.Join(parts, ", ")
}

// predictedRange returns a cell's predicted range as text, "never" when
// theory predicts no detection.
func predictedRange(c *Cell) string {
	if c.PredictedS == nil {
		if c.Kind == KindDisturbance {
			return "survives"
		}
		return "never"
	}
	return FormatRange(c.PredictedS[0], c.PredictedS[1])
}
