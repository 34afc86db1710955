package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/halfopen/halfopen/spec"
)

// Bounds on input, so that a wrong file or a hostile one costs bounded
// memory and time, and the user gets one sentence.
const (
	// MaxReportBytes is the largest report Read accepts: 64 MiB holds some
	// 25,000 cells of the baseline's size (2.4 kB each).
	MaxReportBytes = 64 << 20
)

// Read reads and validates the report at path. Every problem is an
// *InputError naming the file and, where it can, the line. A file larger
// than MaxReportBytes is refused without being read.
func Read(path string) (*Report, error) {
	data, err := ReadBounded(path, MaxReportBytes, "a halfopen report")
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// ReadBounded reads at most limit bytes of the file at path, refusing a
// larger one by its size before reading, or after limit+1 bytes when its
// size is not known in advance (a pipe); what names the kind of file in
// the refusal ("a gate file"). An error is an *InputError naming path.
func ReadBounded(path string, limit int64, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &InputError{File: path, Msg: "cannot be read: " + errText(err), Err: err}
	}
	defer f.Close()
	tooLarge := func(size string) error {
		return &InputError{File: path, Msg: fmt.Sprintf("is %s, more than the %d MiB that %s may be", size, limit>>20, what)}
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > limit {
		return nil, tooLarge(byteSize(fi.Size()))
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &InputError{File: path, Msg: "cannot be read: " + errText(err), Err: err}
	}
	if int64(len(data)) > limit {
		return nil, tooLarge("over " + byteSize(limit))
	}
	return data, nil
}

// byteSize writes a size for people: "1.0 GiB", "64 MiB", "512 B".
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// errText returns err's text without the path that *PathError repeats.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse decodes and validates a report read from the file called name.
// It rejects empty or truncated JSON, documents that are not halfopen
// reports of this schema version, and reports whose values contradict the
// contract (unknown kinds or sides, detected samples without a time,
// negative times or counts, repeated cells). Every error is an
// *InputError.
func Parse(name string, data []byte) (*Report, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &InputError{File: name, Msg: "is empty, not a halfopen report"}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			return nil, &InputError{File: name, Line: 1, Msg: fmt.Sprintf("is a JSON %s, not a halfopen report (an object with \"schema\": %q)", te.Value, SchemaV1), Err: err}
		}
		return nil, jsonError(name, data, err)
	}
	raw, ok := top["schema"]
	if !ok {
		return nil, &InputError{File: name, Line: 1, Msg: fmt.Sprintf("has no \"schema\" field, so it is not a halfopen report (want %q)", SchemaV1)}
	}
	var schema string
	if err := json.Unmarshal(raw, &schema); err != nil || schema != SchemaV1 {
		return nil, &InputError{File: name, Line: lineOf(data, locate(data, "schema")), Msg: fmt.Sprintf("has schema %s, and this halfopen reads only %q", strings.TrimSpace(string(raw)), SchemaV1)}
	}
	if _, ok := top["cells"]; !ok {
		return nil, &InputError{File: name, Line: 1, Msg: "has no \"cells\" array"}
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, jsonError(name, data, err)
	}
	if path, msg := validate(&r); msg != "" {
		return nil, &InputError{File: name, Line: lineOf(data, locate(data, path...)), Msg: msg}
	}
	return &r, nil
}

// jsonError turns an encoding/json error into an *InputError with a line.
func jsonError(name string, data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		if se.Offset >= int64(len(bytes.TrimRight(data, " \t\r\n"))) {
			return &InputError{File: name, Line: lineOf(data, se.Offset), Msg: "ends before its JSON is complete (a truncated file?)", Err: err}
		}
		return &InputError{File: name, Line: lineOf(data, se.Offset-1), Msg: "is not valid JSON: " + se.Error(), Err: err}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "a value"
		}
		if rest, ok := strings.CutPrefix(field, "cells."); ok {
			field = fmt.Sprintf("%s %s", cellAt(data, te.Offset), rest)
		}
		return &InputError{File: name, Line: lineOf(data, te.Offset), Msg: fmt.Sprintf("%s is a JSON %s where the schema wants a %s", field, te.Value, jsonTypeName(te.Type.String())), Err: err}
	default:
		// time.Time's own parse error carries no offset.
		if strings.Contains(err.Error(), "parsing time") {
			return &InputError{File: name, Line: lineOf(data, locate(data, "started")), Msg: "started is not an RFC 3339 time: " + err.Error(), Err: err}
		}
		return &InputError{File: name, Msg: "is not a valid report: " + err.Error(), Err: err}
	}
}

func jsonTypeName(goType string) string {
	switch {
	case strings.Contains(goType, "float"):
		return "number"
	case strings.Contains(goType, "int"):
		return "whole number"
	case goType == "string":
		return "string"
	case goType == "bool":
		return "boolean"
	case strings.HasPrefix(goType, "[]"), strings.HasPrefix(goType, "*[") || strings.HasPrefix(goType, "["):
		return "array"
	case strings.HasPrefix(goType, "map"), strings.Contains(goType, "report."):
		return "object"
	}
	return goType
}

// Known values of Cell.Side, Cell.Path and Cell.Expect.
var (
	knownKinds   = []Kind{KindDetection, KindDisturbance, KindCalibration, KindScale}
	knownSides   = []string{"client", "server"}
	knownPaths   = []string{"", "direct", "toxiproxy"}
	knownExpects = []Expectation{ExpectUnknown, ExpectDetect, ExpectNever, ExpectSurvive, ExpectFalsePositives}
)

func isOneOf[T ~string](s T, set []T) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

func badNumber(v float64) bool { return v < 0 || math.IsNaN(v) || math.IsInf(v, 0) }

// validate returns the JSON path of the first value that breaks the
// contract and one clause saying why, or an empty message.
func validate(r *Report) ([]any, string) {
	if t := r.Environment.Tick; t != nil && t.HZ <= 0 {
		return []any{"environment", "tick"}, fmt.Sprintf("environment.tick.hz is %d, not a tick rate", t.HZ)
	}
	if q := r.Environment.CalibrationErrorMs; q != nil {
		if badNumber(q.P50) || badNumber(q.P99) || badNumber(q.Max) || q.N < 0 {
			return []any{"environment", "calibration_error_ms"}, "environment.calibration_error_ms has a negative value"
		}
	}
	seen := map[CellKey]int{}
	for i := range r.Cells {
		c := &r.Cells[i]
		if path, msg := validateCell(i, c); msg != "" {
			return path, msg
		}
		k := c.Key()
		if j, dup := seen[k]; dup {
			return []any{"cells", i}, fmt.Sprintf("cells[%d] repeats cells[%d] (%s); a report holds each cell once", i, j, k)
		}
		seen[k] = i
	}
	for i, p := range r.Frontier {
		if strings.TrimSpace(p.Detector) == "" {
			return []any{"frontier", i}, fmt.Sprintf("frontier[%d] has no detector", i)
		}
		if badNumber(p.ToleratedS) || badNumber(p.DetectionS) {
			return []any{"frontier", i}, fmt.Sprintf("frontier[%d] (%s) has a negative time", i, p.Detector)
		}
	}
	return nil, ""
}

func validateCell(i int, c *Cell) ([]any, string) {
	at := func(path ...any) []any { return append([]any{"cells", i}, path...) }
	where := fmt.Sprintf("cells[%d]", i)
	if c.Detector != "" || c.Fault != "" {
		where = fmt.Sprintf("cells[%d] (%s / %s / %s)", i, clipText(c.Detector), clipText(c.Fault), clipText(c.Side))
	}
	if !isOneOf(c.Kind, knownKinds) {
		return at("kind"), fmt.Sprintf("%s has kind %q; the known kinds are detection, disturbance, calibration and scale", where, c.Kind)
	}
	if strings.TrimSpace(c.Detector) == "" {
		return at(), fmt.Sprintf("cells[%d] has no detector", i)
	}
	if _, err := spec.Canonical(c.Detector); err != nil {
		return at("detector"), fmt.Sprintf("%s has a bad detector: %v", where, err)
	}
	if c.Kind != KindCalibration || c.Fault != "" {
		if strings.TrimSpace(c.Fault) == "" {
			return at(), fmt.Sprintf("cells[%d] (%s) has no fault", i, c.Detector)
		}
		if _, err := spec.Canonical(c.Fault); err != nil {
			return at("fault"), fmt.Sprintf("%s has a bad fault: %v", where, err)
		}
	}
	if !isOneOf(c.Side, knownSides) && !(c.Kind == KindCalibration && c.Side == "") {
		return at("side"), fmt.Sprintf("%s has side %q; the known sides are client and server", where, c.Side)
	}
	if !isOneOf(c.Path, knownPaths) {
		return at("path"), fmt.Sprintf("%s has path %q; the known paths are direct and toxiproxy", where, c.Path)
	}
	if !isOneOf(c.Expect, knownExpects) {
		return at("expect"), fmt.Sprintf("%s expects %q; the known expectations are detect, never, survive, false-positives and none (empty)", where, c.Expect)
	}
	if badNumber(c.BudgetS) {
		return at("budget_s"), fmt.Sprintf("%s has a negative budget_s", where)
	}
	if p := c.PredictedS; p != nil && (badNumber(p[0]) || badNumber(p[1]) || p[0] > p[1]) {
		return at("predicted_s"), fmt.Sprintf("%s has predicted_s [%g, %g], which is not a range of non-negative seconds", where, p[0], p[1])
	}
	if c.FalsePositives < 0 {
		return at("false_positives"), fmt.Sprintf("%s has negative false_positives", where)
	}
	if badNumber(c.ObservedConnS) {
		return at("observed_conn_s"), fmt.Sprintf("%s has a negative observed_conn_s", where)
	}
	for j, s := range c.Samples {
		sw := fmt.Sprintf("%s samples[%d]", where, j)
		switch {
		case s.Detected && s.Seconds == nil:
			return at("samples", j), sw + " is detected but its seconds are null"
		case s.Detected && badNumber(*s.Seconds):
			return at("samples", j, "seconds"), fmt.Sprintf("%s has negative seconds (%g)", sw, *s.Seconds)
		case !s.Detected && s.Seconds != nil:
			return at("samples", j, "seconds"), sw + " has seconds but is not detected; a censored or failed sample has null seconds"
		case s.Detected && s.Error != "":
			return at("samples", j), sw + " is detected and also has an error"
		case s.FalsePositives < 0:
			return at("samples", j, "false_positives"), sw + " has negative false_positives"
		case badNumber(s.WindowS) || badNumber(s.IdleS):
			return at("samples", j), sw + " has a negative window_s or idle_s"
		}
	}
	for j, m := range c.Mistakes {
		mw := fmt.Sprintf("%s mistakes[%d]", where, j)
		switch {
		case badNumber(m.StartS) || badNumber(m.EndS) || m.EndS < m.StartS:
			return at("mistakes", j), fmt.Sprintf("%s runs from %g s to %g s, which is not an interval of non-negative seconds", mw, m.StartS, m.EndS)
		case m.Sample < 0 || (len(c.Samples) > 0 && m.Sample >= len(c.Samples)) || (len(c.Samples) == 0 && m.Sample != 0):
			return at("mistakes", j, "sample"), fmt.Sprintf("%s names sample %d, which the cell does not have", mw, m.Sample)
		}
	}
	if sc := c.Scale; sc != nil {
		switch {
		case c.Kind != KindScale:
			return at("scale"), fmt.Sprintf("%s has scale results but kind %q", where, c.Kind)
		case sc.Conns <= 0 || sc.Freed < 0 || sc.Freed > sc.Conns:
			return at("scale"), fmt.Sprintf("%s freed %d of %d connections, which is not a count between 0 and the connections held", where, sc.Freed, sc.Conns)
		case badNumber(sc.EstablishS):
			return at("scale", "establish_s"), where + " has a negative establish_s"
		case sc.FreeMs != nil && (badNumber(sc.FreeMs.P50) || badNumber(sc.FreeMs.P99) || badNumber(sc.FreeMs.Max)):
			return at("scale", "free_ms"), where + " has a negative free time"
		}
	} else if c.Kind == KindScale {
		return at(), where + " is a scale cell without its scale results"
	}
	if o := c.Overhead; o != nil && (badNumber(o.PacketsPerConnMin) || badNumber(o.BytesPerConnMin) || badNumber(o.WatcherCPUPercent) || badNumber(o.WindowS)) {
		return at("overhead"), where + " has a negative overhead"
	}
	return nil, ""
}

// clipText shortens a value quoted in an error to its first 80 bytes, so
// that a hostile report's megabyte of text makes a sentence, not a page.
func clipText(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:77] + "..."
}

// cellAt names the element of "cells" that holds byte offset off, as
// "cells[i]". It walks the array once: a report of many cells with an
// error near its end costs one pass, not one per cell.
func cellAt(data []byte, off int64) string {
	start := locate(data, "cells")
	if start >= int64(len(data)) || data[start] != '[' || off < start {
		return "cells"
	}
	dec := json.NewDecoder(bytes.NewReader(data[start:]))
	if _, err := dec.Token(); err != nil {
		return "cells"
	}
	i := -1
	for dec.More() {
		at := start + skipSpace(data[start:], dec.InputOffset())
		if at > off {
			break
		}
		i++
		if skipValue(dec) != nil {
			break
		}
	}
	if i < 0 {
		return "cells"
	}
	return fmt.Sprintf("cells[%d]", i)
}

// locate returns the byte offset in data of the JSON value at path (object
// keys as strings, array indexes as ints). When the path cannot be
// followed to its end it returns the offset of the deepest value found.
func locate(data []byte, path ...any) int64 {
	dec := json.NewDecoder(bytes.NewReader(data))
	start := func() int64 { return skipSpace(data, dec.InputOffset()) }
	best := start()
	for _, step := range path {
		tok, err := dec.Token()
		if err != nil {
			return best
		}
		delim, ok := tok.(json.Delim)
		if !ok {
			return best
		}
		found := false
		switch {
		case delim == '{':
			key, _ := step.(string)
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return best
				}
				if k, _ := kt.(string); k == key {
					found = true
					break
				}
				if skipValue(dec) != nil {
					return best
				}
			}
		case delim == '[':
			idx, isInt := step.(int)
			for n := 0; dec.More(); n++ {
				if isInt && n == idx {
					found = true
					break
				}
				if skipValue(dec) != nil {
					return best
				}
			}
		}
		if !found {
			return best
		}
		best = start()
	}
	return best
}

func skipValue(dec *json.Decoder) error {
	var raw json.RawMessage
	return dec.Decode(&raw)
}

// skipSpace moves off past whitespace and the ',' and ':' separators that
// json.Decoder.InputOffset leaves before the next value.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}
