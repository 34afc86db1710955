package report

import (
	"bytes"
	"fmt"
)

// InputError is bad input: a report, a budgets file or a set of reports
// that cannot be used. The command maps it to exit code 2.
type InputError struct {
	File string // the file the input came from; empty when there is none
	Line int    // 1-based line of the problem; 0 when unknown
	Msg  string // what is wrong, without the file and line
	Err  error  // the underlying error, if any
}

// Error returns one sentence naming the file and the line.
func (e *InputError) Error() string {
	msg := e.Msg
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s line %d: %s", e.File, e.Line, msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, msg)
	default:
		return msg
	}
}

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }

// lineOf returns the 1-based line of byte offset off in data.
func lineOf(data []byte, off int64) int {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}
