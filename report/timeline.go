package report

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"

	"github.com/halfopen/halfopen/capture"
	"github.com/halfopen/halfopen/tcprules"
)

// notableKinds are drawn as dots, the routine traffic (data, ACKs) as
// thin ticks: a reader looks for the probes, retransmissions and resets.
var notableKinds = map[capture.Kind]bool{
	capture.KindKeepalive: true, capture.KindRetransmission: true, capture.KindRST: true,
	capture.KindFIN: true, capture.KindSYN: true, capture.KindICMP: true, capture.KindUrgent: true,
}

// timelinePlot draws a sample's packets as the router saw them: one lane
// per port and direction, time in seconds from the fault's injection (the
// first packet when the sample has none), a dashed red line at the fault,
// a green one at the decision and a dotted one at each of the watcher's
// marks.
func timelinePlot(events []capture.Event, smp Sample, label string) template.HTML {
	const width, left, right, laneH, top = 900.0, 10.0, 20.0, 30.0, 18.0
	if len(events) == 0 {
		return ""
	}
	events = thinEvents(events, maxTimelineEvents)
	origin := smp.InjectedNs
	if origin == 0 {
		origin = events[0].Ns
	}
	rel := func(ns int64) float64 { return float64(ns-origin) / 1e9 }
	lo, hi := rel(events[0].Ns), rel(events[0].Ns)
	for _, e := range events {
		lo, hi = math.Min(lo, rel(e.Ns)), math.Max(hi, rel(e.Ns))
	}
	if smp.InjectedNs != 0 {
		lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	}
	if smp.DecidedNs != 0 {
		hi = math.Max(hi, rel(smp.DecidedNs))
	}
	for _, m := range smp.Marks {
		hi = math.Max(hi, m.S)
	}
	fc := plottedForecast(smp, hi)
	if fc != nil {
		hi = math.Max(hi, fc.HiS)
	}
	span := hi - lo
	if span <= 0 {
		span = 1
	}
	lo, hi = lo-span*0.02, hi+span*0.03
	step := niceStep(hi - lo)
	x := func(t float64) float64 { return left + (t-lo)/(hi-lo)*(width-left-right) }

	type lane struct{ iface, src, dst string }
	var lanes []lane
	laneOf := map[lane]int{}
	for _, e := range events {
		l := lane{e.Iface, e.Src, e.Dst}
		if _, ok := laneOf[l]; !ok {
			laneOf[l] = len(lanes)
			lanes = append(lanes, l)
		}
	}
	slices.SortStableFunc(lanes, func(a, b lane) int {
		return cmp.Or(cmp.Compare(a.iface, b.iface), cmp.Compare(a.src, b.src))
	})
	for i, l := range lanes {
		laneOf[l] = i
	}
	bottom := top + float64(len(lanes))*laneH
	height := int(bottom + 44)
	if smp.State != nil {
		height += 14
	}
	s := newSVG(int(width), height, label)
	s.rect(left, top, width-left-right, bottom-top, "frame", "")
	for t := math.Ceil(lo/step) * step; t <= hi; t += step {
		t = math.Round(t/step) * step
		s.line(x(t), top, x(t), bottom, "grid")
		s.line(x(t), bottom, x(t), bottom+4, "tick")
		s.text(x(t), bottom+15, "middle", "lbl", signedSeconds(t))
	}
	for i, l := range lanes {
		y := top + float64(i)*laneH
		s.text(left+4, y+11, "start", "lbl lane", l.iface+": "+l.src+" → "+l.dst)
	}
	kinds := map[capture.Kind]bool{}
	for _, e := range events {
		kinds[e.Kind] = true
		y := top + float64(laneOf[lane{e.Iface, e.Src, e.Dst}])*laneH + 20
		t := rel(e.Ns)
		title := fmt.Sprintf("%s %s", signedSeconds(t), e.Kind)
		if e.Flags != "" {
			title += fmt.Sprintf(" [%s] seq %d ack %d len %d", e.Flags, e.Seq, e.Ack, e.Len)
		}
		if e.Info != "" {
			title += " " + e.Info
		}
		if notableKinds[e.Kind] {
			s.circle(x(t), y, 4, "ev-"+string(e.Kind), title)
		} else {
			s.rect(x(t)-0.75, y-5, 1.5, 10, "ev-"+string(e.Kind), title)
		}
	}
	if fc != nil {
		s.rect(x(fc.LoS), top, math.Max(x(fc.HiS)-x(fc.LoS), 2), bottom-top, "band", fmt.Sprintf("forecast %s [%s, %s]: %s", signedSeconds(fc.AtS), signedSeconds(fc.LoS), signedSeconds(fc.HiS), fc.Rule))
	}
	if smp.InjectedNs != 0 {
		s.line(x(0), top-4, x(0), bottom, "fault")
		s.text(x(0), top-6, "middle", "lbl budget-lbl", "fault")
	}
	if smp.DecidedNs != 0 {
		d := rel(smp.DecidedNs)
		s.line(x(d), top-4, x(d), bottom, "decide")
		anchor := "middle"
		if x(d) > width*0.75 {
			anchor = "end"
		}
		s.text(x(d), top-6, anchor, "lbl", "decided "+smp.Reason+" at "+signedSeconds(d))
	}
	// The watcher's marks: a dotted line each, named under the frame.
	for _, m := range smp.Marks {
		s.line(x(m.S), top, x(m.S), bottom+4, "mark")
		anchor := "middle"
		if x(m.S) > width*0.75 {
			anchor = "end"
		}
		s.text(x(m.S), bottom+24, anchor, "lbl", m.Name+" "+signedSeconds(m.S))
	}
	// A legend of the kinds present, in the capture package's order.
	lx := left
	for _, k := range []capture.Kind{capture.KindSYN, capture.KindData, capture.KindAck, capture.KindKeepalive, capture.KindRetransmission, capture.KindUrgent, capture.KindFIN, capture.KindRST, capture.KindICMP, capture.KindOther} {
		if !kinds[k] {
			continue
		}
		s.circle(lx+4, bottom+32, 4, "ev-"+string(k), "")
		s.text(lx+11, bottom+36, "start", "lbl", string(k))
		lx += 22 + float64(len(k))*6.2
	}
	s.text(width-right, bottom+36, "end", "lbl", "seconds from the fault")
	if smp.State != nil {
		s.text(left, bottom+50, "start", "lbl", stateWords(smp))
	}
	return s.html()
}

// plottedForecast is the sample's forecast when the timeline can show it:
// one that falls within twice the plot's span (a 924 s forecast would
// squash the packets into one column; stateWords names it instead).
func plottedForecast(smp Sample, hi float64) *tcprules.Forecast {
	f := smp.Forecast
	if f == nil || f.Never || smp.InjectedNs == 0 || f.HiS > 2*math.Max(hi, 0.5) {
		return nil
	}
	return f
}

// stateWords is one line on the connection's state at the fault and the
// sample's forecast, under its timeline.
func stateWords(smp Sample) string {
	st := smp.State
	w := fmt.Sprintf("at the fault: %s, %d unacknowledged, last data received %s and sent %s before, RTO %s",
		st.TCPState, st.Unacked, FormatSeconds(st.SinceDataRecvS), FormatSeconds(st.SinceDataSentS), FormatSeconds(st.RTOS))
	if st.Source != "" {
		w += " (" + st.Source + ")"
	}
	switch f := smp.Forecast; {
	case f == nil:
	case f.Never:
		w += "; forecast: never"
	default:
		w += "; forecast " + signedSeconds(f.AtS)
		if smp.ResidualS != nil {
			w += ", residual " + signedSeconds(*smp.ResidualS)
		}
	}
	return w
}

// signedSeconds formats an instant relative to the fault: "+1.5 s", "−200 ms".
func signedSeconds(t float64) string {
	switch {
	case t > 0:
		return "+" + FormatSeconds(t)
	case t < 0:
		return FormatSeconds(t)
	}
	return "0"
}

// maxTimelineEvents bounds the marks of one timeline, so that a page with
// many long captures stays small; 900 pixels cannot show more anyway.
const maxTimelineEvents = 1500

// thinEvents keeps every notable event (probes, retransmissions, resets,
// FINs, SYNs, ICMP) and, of the routine data and ACKs, every k-th, so that
// at most limit events remain when the notable ones allow it.
func thinEvents(events []capture.Event, limit int) []capture.Event {
	if len(events) <= limit {
		return events
	}
	notable := 0
	for _, e := range events {
		if notableKinds[e.Kind] {
			notable++
		}
	}
	routine := len(events) - notable
	keep := max(limit-notable, 1)
	step := (routine + keep - 1) / keep
	out := make([]capture.Event, 0, limit)
	i := 0
	for _, e := range events {
		if notableKinds[e.Kind] {
			out = append(out, e)
			continue
		}
		if i%step == 0 {
			out = append(out, e)
		}
		i++
	}
	return out
}
