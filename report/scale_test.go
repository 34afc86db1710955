package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// scaleReport is a report of the given scale cells.
func scaleReport(cells ...Cell) []byte {
	r := Report{Schema: SchemaV1, Profile: "quick", Started: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Cells: cells}
	b, _ := json.MarshalIndent(r, "", "  ")
	return b
}

func scaleCell(design string, conns, freed int) Cell {
	return Cell{
		Detector: "keepalive-tuned:cnt=3,idle=1s,intvl=1s", Fault: "host-crash", Side: "server", Kind: KindScale,
		Samples: []Sample{}, Scale: &Scale{Design: design, Conns: conns, Freed: freed,
			FreeMs: &Quantiles{P50: 3600, P99: 4090, Max: 4091, N: freed}, BaseRSSBytes: 18 << 20, RSSBytes: 22 << 20},
	}
}

func TestParseScaleCells(t *testing.T) {
	noResults := scaleCell("epoll", 100, 100)
	noResults.Scale = nil
	onDetection := scaleCell("epoll", 100, 100)
	onDetection.Kind = KindDetection
	for _, tc := range []struct {
		name    string
		cells   []Cell
		wantErr string
	}{
		{name: "one lab per design and N", cells: []Cell{scaleCell("epoll", 100, 100), scaleCell("epoll", 10000, 10000), scaleCell("goroutine", 100, 100)}},
		{name: "censored", cells: []Cell{scaleCell("goroutine", 100, 0)}},
		{name: "the same lab twice", cells: []Cell{scaleCell("epoll", 100, 100), scaleCell("epoll", 100, 100)}, wantErr: "repeats cells[0]"},
		{name: "more freed than held", cells: []Cell{scaleCell("epoll", 100, 101)}, wantErr: "freed 101 of 100"},
		{name: "no results", cells: []Cell{noResults}, wantErr: "without its scale results"},
		{name: "results on another kind", cells: []Cell{onDetection}, wantErr: "has scale results but kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("scale.json", scaleReport(tc.cells...))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantInputError(t, err, tc.wantErr)
		})
	}
}

func TestScaleRSSPerConn(t *testing.T) {
	for _, tc := range []struct {
		s    Scale
		want float64
	}{
		{Scale{Conns: 10000, BaseRSSBytes: 18 << 20, RSSBytes: 18<<20 + 40000000}, 4000},
		{Scale{Conns: 100, BaseRSSBytes: 20 << 20, RSSBytes: 19 << 20}, 0},
		{Scale{}, 0},
	} {
		if got := tc.s.RSSPerConn(); got != tc.want {
			t.Errorf("%+v: RSSPerConn() = %g, want %g", tc.s, got, tc.want)
		}
	}
}

func TestBudgetWithoutKindSkipsScaleCells(t *testing.T) {
	detection := scaleCell("epoll", 100, 100)
	detection.Kind, detection.Scale = KindDetection, nil
	scale := scaleCell("epoll", 100, 100)
	for _, tc := range []struct {
		kind Kind
		cell Cell
		want bool
	}{
		{"", detection, true},
		{"", scale, false},
		{KindScale, scale, true},
		{KindDetection, scale, false},
	} {
		b := Budget{Detector: "keepalive-tuned:cnt=3,idle=1s,intvl=1s", Fault: "host-crash", Kind: tc.kind}
		if got := b.Matches(&tc.cell); got != tc.want {
			t.Errorf("budget of kind %q on a %s cell: Matches = %v, want %v", tc.kind, tc.cell.Kind, got, tc.want)
		}
	}
}

func TestJudgeScale(t *testing.T) {
	predicted := func(c Cell) Cell {
		c.PredictedS, c.Expect, c.BudgetS = &[2]float64{3, 4.5}, ExpectDetect, 10
		return c
	}
	slow := predicted(scaleCell("epoll", 100, 100))
	slow.Scale.FreeMs = &Quantiles{P50: 4000, P99: 6000, Max: 6100, N: 100}
	never := scaleCell("goroutine", 100, 0)
	never.Expect, never.BudgetS, never.Scale.FreeMs = ExpectNever, 10, nil
	freedAnyway := scaleCell("goroutine", 100, 3)
	freedAnyway.Expect = ExpectNever
	for _, tc := range []struct {
		name  string
		cell  Cell
		want  Outcome
		short string
	}{
		{"every connection freed in the range", predicted(scaleCell("epoll", 10000, 10000)), OutcomeWithin, "p99 4.09 s"},
		{"some held past the budget", predicted(scaleCell("epoll", 10000, 9990)), OutcomeOutside, "10 held"},
		{"p99 past the range", slow, OutcomeOutside, "p99 6 s"},
		{"never, as theory says", never, OutcomeNever, "never"},
		{"freed where theory says never", freedAnyway, OutcomeOutside, "3 freed"},
		{"no range", scaleCell("epoll", 100, 100), OutcomeMeasured, "p99 4.09 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.cell.Judge()
			if v.Outcome != tc.want || v.Short != tc.short {
				t.Errorf("Judge() = %v %q (%s), want %v %q", v.Outcome, v.Short, v.Why, tc.want, tc.short)
			}
		})
	}
}

// A scale cell's fault table shows its design, its connections, how many
// were freed and how fast, and the memory each took.
func TestScaleCellsRendered(t *testing.T) {
	c := scaleCell("epoll", 10000, 10000)
	c.PredictedS, c.Expect, c.BudgetS = &[2]float64{3, 4.5}, ExpectDetect, 10
	r, err := Parse("scale.json", scaleReport(c))
	if err != nil {
		t.Fatal(err)
	}
	var mdb strings.Builder
	if err := Markdown(&mdb, r); err != nil {
		t.Fatal(err)
	}
	md := mdb.String()
	for _, want := range []string{"| epoll | 10000 | 🟢 p99 4.09 s | 3–4.5 s | 10000 of 10000 | 3.6 s | 4.09 s | 4.09 s | 419 B |", "the server's close()"} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown report lacks %q", want)
		}
	}
	var page strings.Builder
	if err := HTML(&page, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<th>memory per connection</th>", "<td>epoll</td>", "10000 of 10000", "p99 4.09 s"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
}
