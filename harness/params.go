package harness

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/halfopen/halfopen/spec"
)

// Param describes one parameter of a detector or fault, read from the
// struct tags of its prototype:
//
//	Idle time.Duration `param:"idle" default:"1s" min:"1s" help:"idle time before the first probe"`
//	Mode string        `param:"mode" default:"firewall" enum:"firewall|nat" help:"..."`
type Param struct {
	Key     string
	Kind    string // "duration", "int", "float", "string", "bool"
	Default string
	Enum    []string
	Min     string
	Max     string
	Help    string
	// Optional parameters may be left out and have no default (e.g. "for").
	Optional bool
	// Sysctl names the kernel parameter of the watcher's namespace that
	// this parameter is (tag `sysctl:"net.ipv4.tcp_retries2"`): left out, it
	// takes the namespace's value (the cell's sysctls, or the kernel's
	// default for a new namespace); given, it is written there.
	Sysctl string
	// NamespaceDefault is the value Sysctl has in a new lab namespace
	// ("" when it has no Sysctl, or the kernel's own default is not known).
	NamespaceDefault string
}

// params lists the parameters of a prototype (a pointer to a struct).
func params(proto any) []Param {
	t := reflect.TypeOf(proto)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []Param
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("param")
		if key == "" {
			continue
		}
		p := Param{Key: key, Default: f.Tag.Get("default"), Min: f.Tag.Get("min"), Max: f.Tag.Get("max"), Help: f.Tag.Get("help")}
		_, p.Optional = f.Tag.Lookup("optional")
		p.Sysctl = f.Tag.Get("sysctl")
		p.NamespaceDefault = namespaceDefault(p.Sysctl)
		if e := f.Tag.Get("enum"); e != "" {
			p.Enum = strings.Split(e, "|")
		}
		switch {
		case f.Type == reflect.TypeOf(time.Duration(0)):
			p.Kind = "duration"
		case f.Type.Kind() == reflect.Int:
			p.Kind = "int"
		case f.Type.Kind() == reflect.Float64:
			p.Kind = "float"
		case f.Type.Kind() == reflect.Bool:
			p.Kind = "bool"
		default:
			p.Kind = "string"
		}
		out = append(out, p)
	}
	return out
}

// decode fills the prototype's tagged fields from the spec's parameters,
// applying defaults and checking kinds, enums and bounds. Unknown keys are an
// error naming the known ones, unless the prototype has a field tagged
// `param:"*"` of type map[string]string, which collects them.
func decode(what string, sp spec.Spec, proto any) error {
	v := reflect.ValueOf(proto).Elem()
	t := v.Type()
	known := map[string]int{}
	rest := -1
	for i := 0; i < t.NumField(); i++ {
		switch key := t.Field(i).Tag.Get("param"); key {
		case "":
		case "*":
			rest = i
		default:
			known[key] = i
		}
	}
	params := params(proto)
	keys := make([]string, 0, len(params))
	for _, p := range params {
		if p.Key != "*" {
			keys = append(keys, p.Key)
		}
	}
	for k := range sp.Params {
		if _, ok := known[k]; ok {
			continue
		}
		if rest >= 0 {
			continue
		}
		if len(keys) == 0 {
			return fmt.Errorf("%s %s takes no parameters, but was given %q", what, sp.Name, k)
		}
		return fmt.Errorf("%s %s has no parameter %q; its parameters are %s", what, sp.Name, k, strings.Join(keys, ", "))
	}
	if rest >= 0 {
		m := map[string]string{}
		for k, val := range sp.Params {
			if _, ok := known[k]; !ok {
				m[k] = val
			}
		}
		v.Field(rest).Set(reflect.ValueOf(m))
	}
	for _, p := range params {
		if p.Key == "*" {
			continue
		}
		raw, given := sp.Params[p.Key]
		if !given {
			if p.Default == "" {
				continue
			}
			raw = p.Default
		}
		if err := setField(v.Field(known[p.Key]), p, raw); err != nil {
			return fmt.Errorf("%s %s: %w", what, sp.Name, err)
		}
	}
	return nil
}

func setField(f reflect.Value, p Param, raw string) error {
	if len(p.Enum) > 0 {
		ok := false
		for _, e := range p.Enum {
			ok = ok || e == raw
		}
		if !ok {
			return fmt.Errorf("%s=%s is not allowed; %s is one of %s", p.Key, raw, p.Key, strings.Join(p.Enum, ", "))
		}
	}
	switch p.Kind {
	case "duration":
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%s=%s is not a duration such as 500ms or 2s", p.Key, raw)
		}
		if err := checkBounds(p, float64(d), func(s string) (float64, error) {
			b, err := time.ParseDuration(s)
			return float64(b), err
		}); err != nil {
			return err
		}
		f.SetInt(int64(d))
	case "int":
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%s=%s is not a whole number", p.Key, raw)
		}
		if err := checkBounds(p, float64(n), func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
			return err
		}
		f.SetInt(int64(n))
	case "float":
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%s=%s is not a number", p.Key, raw)
		}
		if err := checkBounds(p, x, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
			return err
		}
		f.SetFloat(x)
	case "bool":
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%s=%s is not true or false", p.Key, raw)
		}
		f.SetBool(b)
	default:
		f.SetString(raw)
	}
	return nil
}

func checkBounds(p Param, x float64, parse func(string) (float64, error)) error {
	if p.Min != "" {
		if lo, err := parse(p.Min); err == nil && x < lo {
			return fmt.Errorf("%s must be at least %s", p.Key, p.Min)
		}
	}
	if p.Max != "" {
		if hi, err := parse(p.Max); err == nil && x > hi {
			return fmt.Errorf("%s must be at most %s", p.Key, p.Max)
		}
	}
	return nil
}
