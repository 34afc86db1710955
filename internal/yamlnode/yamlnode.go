// Package yamlnode walks YAML documents node by node, strictly, for the
// file formats that name the line of every mistake: budgets files
// (package report) and gate files (package gatefile). Every function
// returns an *Error with the line and one sentence; callers add the file.
package yamlnode

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is a mistake at a line of a YAML document (0: the whole file).
type Error struct {
	Line int
	Msg  string
	Err  error // the YAML library's error, when there is one
}

// Error returns the sentence, with its line.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Unwrap returns the YAML library's error.
func (e *Error) Unwrap() error { return e.Err }

func fail(line int, format string, args ...any) *Error {
	return &Error{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// yamlLine finds the line in a yaml.v3 error's text.
var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// Syntax turns a yaml.v3 decoding error into an *Error with its line.
func Syntax(err error) *Error {
	text := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(text); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: "is not valid YAML: " + m[2], Err: err}
	}
	return &Error{Msg: "is not valid YAML: " + text, Err: err}
}

// Deref follows an alias to the node it names.
func Deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// Line returns a node's line, or 0 for none.
func Line(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

// Describe names what a node is, for messages.
func Describe(n *yaml.Node) string {
	switch {
	case n == nil:
		return "missing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return "empty"
	case n.Kind == yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias that names nothing"
}

// List joins names as "a, b and c".
func List(names []string) string {
	switch len(names) {
	case 0:
		return "none"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// Pair is one key of a mapping with its value.
type Pair struct {
	Key   string
	Line  int
	Value *yaml.Node
}

// Mapping returns the keys of a mapping node in file order, refusing a key
// that is not among known (nil: any), or given twice. what names the
// mapping in messages.
func Mapping(n *yaml.Node, what string, known []string) ([]Pair, error) {
	n = Deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, fail(Line(n), "%s is %s, where a mapping of keys to values belongs", what, Describe(n))
	}
	var out []Pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			return nil, fail(Line(n.Content[i]), "%s has a key that is %s, where a name belongs", what, Describe(k))
		}
		if known != nil && !slices.Contains(known, k.Value) {
			return nil, fail(k.Line, "%s has the unknown key %q; the known keys are %s", what, k.Value, List(known))
		}
		if first, dup := seen[k.Value]; dup {
			return nil, fail(k.Line, "%s gives %q twice (first at line %d)", what, k.Value, first)
		}
		seen[k.Value] = k.Line
		out = append(out, Pair{Key: k.Value, Line: k.Line, Value: v})
	}
	return out, nil
}

// Sequence returns the items of a sequence node, aliases followed.
func Sequence(n *yaml.Node, what string) ([]*yaml.Node, error) {
	n = Deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil, fail(Line(n), "%s is %s, where a list belongs", what, Describe(n))
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = Deref(c)
	}
	return out, nil
}

// Scalar returns a scalar's text; null is refused.
func Scalar(n *yaml.Node, what string) (string, error) {
	n = Deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", fail(Line(n), "%s is %s, where a value belongs", what, Describe(n))
	}
	return n.Value, nil
}

// Text returns a scalar's text, or "" for null.
func Text(n *yaml.Node, what string) (string, error) {
	if m := Deref(n); m != nil && m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		return "", nil
	}
	return Scalar(n, what)
}

// Duration returns a Go duration, not negative; positive says zero is
// refused too.
func Duration(n *yaml.Node, what string, positive bool) (time.Duration, error) {
	s, err := Scalar(n, what)
	if err != nil {
		return 0, err
	}
	d, perr := time.ParseDuration(strings.TrimSpace(s))
	if perr != nil || d < 0 || positive && d == 0 {
		kind := "a Go duration such as 500ms or 5s"
		if positive {
			kind = "a positive " + strings.TrimPrefix(kind, "a ")
		}
		return 0, fail(Line(n), "%s is %q, which is not %s", what, s, kind)
	}
	return d, nil
}

// Count returns a whole number, at least min.
func Count(n *yaml.Node, what string, min int) (int, error) {
	s, err := Scalar(n, what)
	if err != nil {
		return 0, err
	}
	v, cerr := strconv.Atoi(strings.TrimSpace(s))
	if cerr != nil || v < min {
		return 0, fail(Line(n), "%s is %q, which is not a whole number of %d or more", what, s, min)
	}
	return v, nil
}
