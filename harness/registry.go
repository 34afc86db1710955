package harness

import (
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/halfopen/halfopen/spec"
)

// Entry is a registered fault or detector.
type Entry struct {
	Name   string
	Doc    string
	Params []Param
	proto  reflect.Type
}

type registry struct {
	what    string
	mu      sync.Mutex
	entries map[string]Entry
}

func (r *registry) register(name, doc string, proto any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.entries[name]; dup {
		panic(fmt.Sprintf("halfopen: %s %q registered twice", r.what, name))
	}
	t := reflect.TypeOf(proto)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("halfopen: %s %q: prototype must be a pointer to a struct", r.what, name))
	}
	r.entries[name] = Entry{Name: name, Doc: doc, Params: params(proto), proto: t.Elem()}
}

func (r *registry) list() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (r *registry) names() string {
	var names []string
	for _, e := range r.list() {
		names = append(names, e.Name)
	}
	return strings.Join(names, ", ")
}

// built is a decoded fault or detector with its canonical spec and the
// kernel parameters its sysctl-backed parameters stand for.
type built struct {
	value any
	spec  spec.Spec
	// sysctls are the watcher-namespace values of the sysctl-backed
	// parameters; given names those the spec set explicitly.
	sysctls map[string]string
	given   map[string]bool
}

// build parses a spec, finds its entry and decodes a fresh copy. A
// parameter left out takes its default; a sysctl-backed one takes
// namespace(key), the value the watcher's namespace will have.
func (r *registry) build(text string, namespace func(key string) string) (built, error) {
	return r.decode(text, namespace, true)
}

// decode is build, with the prototype's own Validate only when validate
// is set: a canonical spec needs the parameters, not the machine's word
// that a program or a role exists.
func (r *registry) decode(text string, namespace func(key string) string, validate bool) (built, error) {
	sp, err := spec.Parse(text)
	if err != nil {
		return built{}, fmt.Errorf("%s %w", r.what, err)
	}
	r.mu.Lock()
	e, ok := r.entries[sp.Name]
	r.mu.Unlock()
	if !ok {
		return built{}, fmt.Errorf("no %s is called %q; the known %ss are %s", r.what, sp.Name, r.what, r.names())
	}
	b := built{sysctls: map[string]string{}, given: map[string]bool{}}
	// The canonical spec names every parameter, defaults included, so that
	// "heartbeat-inband" and "heartbeat-inband:interval=200ms,misses=3" are
	// one cell in reports, budgets and comparisons.
	filled := spec.Spec{Name: sp.Name, Params: maps.Clone(sp.Params)}
	for _, p := range e.Params {
		_, given := sp.Params[p.Key]
		switch {
		case p.Key == "*":
		case p.Sysctl != "":
			b.given[p.Sysctl] = given
			if !given {
				filled.Params[p.Key] = namespace(p.Sysctl)
			}
			b.sysctls[p.Sysctl] = filled.Params[p.Key]
		case !given && p.Default != "":
			filled.Params[p.Key] = p.Default
		}
	}
	v := reflect.New(e.proto).Interface()
	if err := decode(r.what, filled, v); err != nil {
		return built{}, err
	}
	if c, ok := v.(Validator); ok && validate {
		if err := c.Validate(); err != nil {
			return built{}, fmt.Errorf("%s %s: %w", r.what, sp.Name, err)
		}
	}
	b.value, b.spec = v, filled
	return b, nil
}

var (
	faults    = &registry{what: "fault", entries: map[string]Entry{}}
	detectors = &registry{what: "detector", entries: map[string]Entry{}}
)

// RegisterFault adds a fault to the registry; proto is a pointer to its
// parameter struct, which must implement Fault. A duplicate name panics.
func RegisterFault(name, doc string, proto Fault) { faults.register(name, doc, proto) }

// RegisterDetector adds a detector to the registry; proto is a pointer to
// its parameter struct, which must implement Detector.
func RegisterDetector(name, doc string, proto Detector) { detectors.register(name, doc, proto) }

// Faults lists the registered faults by name.
func Faults() []Entry { return faults.list() }

// Detectors lists the registered detectors by name.
func Detectors() []Entry { return detectors.list() }

// NewFault builds a fault from its spec; the error is one sentence naming
// what is known when the name or a key is not.
func NewFault(text string) (Fault, spec.Spec, error) {
	b, err := faults.build(text, namespaceDefault)
	if err != nil {
		return nil, spec.Spec{}, err
	}
	return b.value.(Fault), b.spec, nil
}

// NewDetector builds a detector from its spec, for a watcher namespace with
// the kernel's defaults.
func NewDetector(text string) (Detector, spec.Spec, error) {
	b, err := detectors.build(text, namespaceDefault)
	if err != nil {
		return nil, spec.Spec{}, err
	}
	return b.value.(Detector), b.spec, nil
}

// CanonicalDetector returns a detector spec's canonical form: keys sorted,
// defaults filled in. It checks names, keys and values, not what only the
// machine can say (that a program or a role exists).
func CanonicalDetector(text string) (string, error) {
	b, err := detectors.decode(text, namespaceDefault, false)
	return b.spec.String(), err
}

// CanonicalFault returns a fault spec's canonical form, its parameters
// checked against each other (a fault's Validate needs no machine).
func CanonicalFault(text string) (string, error) {
	b, err := faults.build(text, namespaceDefault)
	return b.spec.String(), err
}
