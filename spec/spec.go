// Package spec is halfopen's one grammar for a detector or a fault with its
// parameters, used alike on the command line, in budgets, in gate files and
// in reports:
//
//	NAME[:key=value,key=value...]
//
// A name holds lower-case letters, digits and '-'; keys are unique; spaces
// around names, keys and values are dropped. Parse checks only this syntax:
// the registries in package harness check names, keys and values.
package spec

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// MaxLen bounds a spec's length: a spec names a detector or a fault with a
// few parameters, and a longer one is refused before it is split.
const MaxLen = 4096

// Spec is a parsed NAME[:key=value,...].
type Spec struct {
	Name   string
	Params map[string]string
}

// Parse parses "NAME[:key=value,...]".
func Parse(s string) (Spec, error) {
	if len(s) > MaxLen {
		return Spec{}, fmt.Errorf("spec of %d bytes is longer than the %d a detector or fault spec may have", len(s), MaxLen)
	}
	s = strings.TrimSpace(s)
	name, rest, hasParams := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if name == "" {
		return Spec{}, fmt.Errorf("spec %q has no name; write NAME or NAME:key=value,...", s)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return Spec{}, fmt.Errorf("spec %q: name %q may hold only lower-case letters, digits and '-'", s, name)
		}
	}
	sp := Spec{Name: name, Params: map[string]string{}}
	if !hasParams {
		return sp, nil
	}
	if strings.TrimSpace(rest) == "" {
		return Spec{}, fmt.Errorf("spec %q ends with ':' but gives no key=value", s)
	}
	for _, kv := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return Spec{}, fmt.Errorf("spec %q: %q is not key=value", s, strings.TrimSpace(kv))
		}
		if _, dup := sp.Params[k]; dup {
			return Spec{}, fmt.Errorf("spec %q gives %q twice", s, k)
		}
		sp.Params[k] = strings.TrimSpace(v)
	}
	return sp, nil
}

// String returns the canonical form: the name, then the keys in order, the
// values as written.
func (s Spec) String() string {
	return s.format(func(v string) string { return v })
}

// Identity returns the canonical form with every duration value in Go's own
// form ("300ms" for "0.3s", "1s" for "1000ms"): two specs that name the same
// configuration have the same identity.
func (s Spec) Identity() string {
	return s.format(normalValue)
}

func (s Spec) format(value func(string) string) string {
	if len(s.Params) == 0 {
		return s.Name
	}
	keys := make([]string, 0, len(s.Params))
	for k := range s.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(s.Name)
	for i, k := range keys {
		if i == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(value(s.Params[k]))
	}
	return b.String()
}

// normalValue writes a duration in Go's form; a bare number ("3", "0") is a
// count, not a duration, and stays as written.
func normalValue(v string) string {
	if strings.IndexFunc(v, func(r rune) bool { return r >= 'a' && r <= 'z' || r == 'µ' }) < 0 {
		return v
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d.String()
	}
	return v
}

// Canonical returns a spec's canonical form (String of Parse).
func Canonical(s string) (string, error) {
	sp, err := Parse(s)
	if err != nil {
		return "", err
	}
	return sp.String(), nil
}

// IdentityOf returns a spec's Identity, or the trimmed input when it does not
// parse (a report may hold a spec this version cannot read; it is still a
// name).
func IdentityOf(s string) string {
	sp, err := Parse(s)
	if err != nil {
		return strings.TrimSpace(s)
	}
	return sp.Identity()
}

// Equal reports whether two specs name the same configuration.
func Equal(a, b string) bool { return a == b || IdentityOf(a) == IdentityOf(b) }

// Name returns the name part of a spec: "keepalive-tuned" for
// "keepalive-tuned:idle=1s".
func Name(s string) string {
	name, _, _ := strings.Cut(s, ":")
	return strings.TrimSpace(name)
}
