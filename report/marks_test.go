package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/halfopen/halfopen/capture"
)

// TestMarksAndLogsShown: a sample's marks are drawn and named on its
// timeline and in its words; the Markdown report links its log and shows
// the kept tail of a surprising one, and nothing for the others.
func TestMarksAndLogsShown(t *testing.T) {
	const s = int64(1e9)
	events := []capture.Event{
		{Ns: 9 * s, Iface: "to-watcher", Src: "198.18.1.2:7000", Dst: "198.18.2.2:40000", Kind: capture.KindData, Flags: "PA", Len: 40},
		{Ns: 12 * s, Iface: "to-watcher", Src: "198.18.2.2:40000", Dst: "198.18.1.2:7000", Kind: capture.KindKeepalive, Flags: "A"},
	}
	secs := 122.0
	smp := Sample{Detected: true, Seconds: &secs, Reason: "EOF", InjectedNs: 10 * s, DecidedNs: 132 * s,
		Marks: []Mark{{Name: "redial", S: 44.5}}, Log: "logs/blackhole-1.log",
		LogTail: []string{"+44.500s watcher mark: redial", "+122.000s watcher log: BLPOP: EOF"}}
	svg := string(timelinePlot(events, smp, "t"))
	if !strings.Contains(svg, `class="mark"`) || !strings.Contains(svg, "redial +44.5 s") {
		t.Errorf("the timeline does not draw the mark:\n%s", svg)
	}
	c := Cell{Detector: "role:name=redis-blpop", Fault: "blackhole", Kind: KindDetection, BudgetS: 200, Samples: []Sample{smp, {Reason: "budget", Log: "logs/blackhole-2.log"}}}
	if w := sampleWords(&c, smp); w != "decided EOF after 2 min 2 s; marked redial at +44.5 s" {
		t.Errorf("sample words %q", w)
	}
	var b bytes.Buffer
	if err := Markdown(&b, &Report{Schema: SchemaV1, Cells: []Cell{c}}); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{"[sample 0 log](logs/blackhole-1.log)", "[sample 1 log](logs/blackhole-2.log)", "sample 0 marked redial at +44.5 s",
		"## Logs of the samples that failed or surprised", "**role:name=redis-blpop × blackhole, sample 0**", "+122.000s watcher log: BLPOP: EOF"} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "sample 1**") {
		t.Errorf("a sample without a kept tail is shown under the logs:\n%s", md)
	}
}
