package gate

import (
	"fmt"
	"time"

	"github.com/onsi/gomega/types"

	"github.com/halfopen/halfopen/report"
)

// MarkWithin succeeds when every sample whose watcher met the fault
// marked name (protocol.Session.Mark) within d of the fault: a library's
// first instant, before the one its application sees (go-redis redials
// at about 45 s on a blackhole, while a BLPOP surfaces its error only at
// about 122 s). A sample censored without the mark fails it, as does one
// that decided without marking first; the sample's own decision is
// judged by the other matchers (DetectWithin, GiveUpWith).
func MarkWithin(name string, d time.Duration) types.GomegaMatcher {
	return &resultMatcher{what: fmt.Sprintf("mark %q within %v of the fault", name, d), check: func(r *Result) error {
		return marksWithin(r.rec, name, d)
	}}
}

// marksWithin is MarkWithin's rule on a cell's record.
func marksWithin(c report.Cell, name string, d time.Duration) error {
	for i, s := range c.Samples {
		at, ok := s.MarkS(name)
		switch {
		case !ok && len(s.Marks) == 0:
			return fmt.Errorf("sample %d marked nothing (%s)", i, sampleOutcome(s))
		case !ok:
			return fmt.Errorf("sample %d never marked %q, only %s (%s)", i, name, markNames(s), sampleOutcome(s))
		case at > d.Seconds():
			return fmt.Errorf("sample %d marked %q %s after the fault", i, name, report.FormatSeconds(at))
		}
	}
	return nil
}

// markNames lists a sample's marks by name, in their order.
func markNames(s report.Sample) string {
	out := ""
	for i, m := range s.Marks {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q at %s", m.Name, report.FormatSeconds(m.S))
	}
	return out
}

// sampleOutcome is what a sample did, in a few words.
func sampleOutcome(s report.Sample) string {
	if s.Detected && s.Seconds != nil {
		return fmt.Sprintf("it decided %q after %s", s.Reason, report.FormatSeconds(*s.Seconds))
	}
	return "it did not decide within its budget"
}
