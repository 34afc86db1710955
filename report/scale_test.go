package report

import (
	"encoding/json"
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
