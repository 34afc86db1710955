package report

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// CanonicalSpec returns the canonical form of a detector or fault spec,
// "name" or "name:k1=v1,k2=v2" with the keys sorted and the spaces around
// names, keys and values removed. Values are kept as written. It fails on
// an empty name, an empty key, a parameter without '=' or a repeated key.
func CanonicalSpec(s string) (string, error) {
	name, params, err := parseSpec(s)
	if err != nil {
		return "", err
	}
	if len(params) == 0 {
		return name, nil
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	for i, k := range keys {
		if i == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	return b.String(), nil
}

// SpecName returns the name part of a spec: "keepalive-tuned" for
// "keepalive-tuned:idle=1s".
func SpecName(s string) string {
	name, _, _ := strings.Cut(s, ":")
	return strings.TrimSpace(name)
}

func parseSpec(s string) (string, map[string]string, error) {
	name, rest, hasParams := strings.Cut(strings.TrimSpace(s), ":")
	name = strings.TrimSpace(name)
	if name == "" {
		return "", nil, fmt.Errorf("spec %q has no name", s)
	}
	params := map[string]string{}
	if !hasParams {
		return name, params, nil
	}
	if strings.TrimSpace(rest) == "" {
		return "", nil, fmt.Errorf("spec %q has a ':' but no parameters", s)
	}
	for _, kv := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return "", nil, fmt.Errorf("spec %q: parameter %q is not key=value", s, strings.TrimSpace(kv))
		}
		if _, dup := params[k]; dup {
			return "", nil, fmt.Errorf("spec %q sets %q twice", s, k)
		}
		params[k] = v
	}
	return name, params, nil
}

// SpecsEqual reports whether two specs name the same configuration: equal
// canonical forms, or the same name and keys with values that are equal
// strings or equal Go durations ("1s" and "1000ms"). Specs that do not
// parse are compared as strings.
func SpecsEqual(a, b string) bool {
	if a == b {
		return true
	}
	na, pa, errA := parseSpec(a)
	nb, pb, errB := parseSpec(b)
	if errA != nil || errB != nil {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	if na != nb || len(pa) != len(pb) {
		return false
	}
	for k, va := range pa {
		vb, ok := pb[k]
		if !ok {
			return false
		}
		if va == vb {
			continue
		}
		da, errA := time.ParseDuration(va)
		db, errB := time.ParseDuration(vb)
		if errA != nil || errB != nil || da != db {
			return false
		}
	}
	return true
}

// canonicalOrRaw is CanonicalSpec that falls back to the trimmed input.
func canonicalOrRaw(s string) string {
	c, err := CanonicalSpec(s)
	if err != nil {
		return strings.TrimSpace(s)
	}
	return c
}

// CellKey identifies a cell: the same key in two reports is the same
// measurement.
type CellKey struct {
	Detector string `json:"detector"`
	Fault    string `json:"fault"`
	Side     string `json:"side"`
	Kind     string `json:"kind"`
}

// Key returns the cell's key with its specs in canonical form.
func (c *Cell) Key() CellKey {
	return CellKey{
		Detector: canonicalOrRaw(c.Detector),
		Fault:    canonicalOrRaw(c.Fault),
		Side:     c.Side,
		Kind:     c.Kind,
	}
}

// String returns "detector / fault / side / kind".
func (k CellKey) String() string {
	side := k.Side
	if side == "" {
		side = "-"
	}
	return fmt.Sprintf("%s / %s / %s / %s", k.Detector, k.Fault, side, k.Kind)
}

// id returns the key with every duration value of its specs in one form
// ("300ms" for "0.3s"), so that keys that SpecsEqual calls equal are equal
// map keys.
func (k CellKey) id() CellKey {
	k.Detector = normalizedSpec(k.Detector)
	k.Fault = normalizedSpec(k.Fault)
	return k
}

func normalizedSpec(s string) string {
	name, params, err := parseSpec(s)
	if err != nil {
		return strings.TrimSpace(s)
	}
	parts := make([]string, 0, len(params))
	for k, v := range params {
		if d, err := time.ParseDuration(v); err == nil {
			v = d.String()
		}
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return name
	}
	return name + ":" + strings.Join(parts, ",")
}
