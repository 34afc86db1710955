// Package gatefile reads a gate file: one YAML file, kept in a library's
// repository, that names the real servers to run unmodified on the peer
// host (services), the programs that watch them through the library
// (watchers, speaking protocol v1 in any language), the cells to measure
// and the budgets they must hold. `halfopen check` runs it.
//
//	[peer host: a service]  ==veth==  [router: the fault]  ==veth==  [watcher host: a watcher]
//	 redis-server {ip} {port}                                         ./bin/redis-blpop
//
// A gate file, version 1:
//
//	version: 1
//	services:                    # real servers run as the peer, unmodified
//	  redis:
//	    cmd: [redis-server, --bind, "{ip}", --port, "{port}"]
//	    package: redis-server    # named when the program is missing
//	watchers:                    # protocol v1 programs
//	  blpop:
//	    cmd: ./bin/redis-blpop   # relative to the gate file's directory
//	    peer: redis              # a service, builtin or self
//	    config: {timeout: 5s}    # → HALFOPEN_CONFIG
//	cells:
//	  - watchers: [blpop]
//	    faults: [blackhole, host-crash]
//	budgets:
//	  - watcher: blpop
//	    fault: blackhole
//	    p95: 12s
//
// Parsing is strict and reads nothing but the registries of faults and
// detectors (the file's faults and sysctls are resolved as the harness
// will, without touching the machine): an unknown key, a bad duration, an
// unknown name or a budget that matches no cell is a *report.InputError
// naming the file and the line. docs/gatefile.md is the full reference.
package gatefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	// A gate file's faults and sysctls are checked by resolving them with a
	// built-in detector: both registries must be complete.
	_ "github.com/halfopen/halfopen/detectors"
	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/yamlnode"
	"github.com/halfopen/halfopen/protocol"
	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/spec"
)

// Version is the gate file version this package reads.
const Version = 1

// MaxSize bounds a gate file, in bytes.
const MaxSize = 1 << 20

// MaxCells bounds the cells a gate file makes (watchers × faults × sides).
const MaxCells = 10000

// DefaultSamples is a cell's number of samples when the file gives none.
const DefaultSamples = 3

// File is a parsed gate file.
type File struct {
	// Path is the file's name as given; errors and budgets name it.
	Path string
	// Dir is the file's directory, absolute: a watcher's relative cmd is
	// taken from here, so the command runs from it.
	Dir string
	// Services are the real servers to register, in file order.
	Services []harness.Service
	// Watchers are the protocol v1 programs, in file order.
	Watchers []Watcher
	// Cells are the cells to measure, one per watcher × fault × side, in
	// file order.
	Cells []Cell
	// Budgets are the limits the cells must hold; each budget's detector is
	// its watcher's detector spec.
	Budgets *report.Budgets
}

// Watcher is a protocol v1 program that watches the peer through the
// library under test.
type Watcher struct {
	Name string
	Line int // of its name in the file
	// Cmd is the program as written: relative paths are taken from the
	// gate file's directory, a name without '/' is looked up in PATH.
	Cmd string
	// Peer is builtin, self, service:NAME, or a path as written.
	Peer       string
	Privileged bool
	// Config goes to the program in HALFOPEN_CONFIG.
	Config map[string]string
	// Detector is the watcher as a detector spec, the cells' name in
	// reports: external:cmd=CMD,peer=PEER,privileged=BOOL,CONFIG...
	Detector string
}

// Cell is one cell of the file: a watcher against a fault on one side.
type Cell struct {
	harness.CellConfig
	// Watcher names the cell's watcher.
	Watcher string
	// Line is the line of the cells entry it comes from.
	Line int
	// Kind is what the fault makes of the cell: detection, or disturbance
	// for a fault the connection must survive.
	Kind report.Kind
}

// Configs returns the cells as the harness runs them.
func (f *File) Configs() []harness.CellConfig {
	out := make([]harness.CellConfig, len(f.Cells))
	for i, c := range f.Cells {
		out[i] = c.CellConfig
	}
	return out
}

// Watcher returns the watcher called name.
func (f *File) Watcher(name string) (Watcher, bool) {
	for _, w := range f.Watchers {
		if w.Name == name {
			return w, true
		}
	}
	return Watcher{}, false
}

// RegisterServices makes the file's services known to the harness, for the
// watchers' peer=service:NAME. A service already registered under the same
// name with the same definition is kept; with another, it is an error.
func (f *File) RegisterServices() error {
	for _, s := range f.Services {
		if old, ok := harness.LookupService(s.Name); ok {
			if old.Setup != nil || !reflect.DeepEqual(old, s) {
				return fmt.Errorf("%s: service %s is already registered with another definition", f.Path, s.Name)
			}
			continue
		}
		harness.RegisterService(s)
	}
	return nil
}

// Read reads and parses the gate file at path. A file larger than MaxSize
// is refused by its size, before it is read; one whose size is not known in
// advance (a pipe) once MaxSize+1 bytes have come.
func Read(path string) (*File, error) {
	data, err := report.ReadBounded(path, MaxSize, "a gate file")
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Known keys, in the order the messages list them.
var (
	topKeys     = []string{"version", "services", "watchers", "cells", "budgets"}
	serviceKeys = []string{"cmd", "env", "package", "user", "protocol", "ready_timeout"}
	watcherKeys = []string{"cmd", "peer", "privileged", "config"}
	cellKeys    = []string{"watchers", "faults", "sides", "samples", "budget", "idle", "sysctls"}
	budgetKeys  = []string{"name", "watcher", "fault", "side", "kind", "p50", "p95", "max", "censored", "false_positives", "errors"}
)

// reservedPeers are the peers that are not services.
var reservedPeers = []string{"builtin", "self"}

var (
	plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// parser holds what one Parse has read so far.
type parser struct {
	name string
	f    *File
}

// fail returns an *report.InputError at line.
func (p *parser) fail(line int, format string, args ...any) error {
	return &report.InputError{File: p.name, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses a gate file called name (its path: relative commands are
// taken from its directory), strictly.
func Parse(name string, data []byte) (*File, error) {
	p := &parser{name: name}
	dir, err := filepath.Abs(filepath.Dir(name))
	if err != nil {
		return nil, p.fail(0, "has a directory that cannot be made absolute: %v", err)
	}
	p.f = &File{Path: name, Dir: dir}
	if len(data) > MaxSize {
		return nil, p.fail(0, "is %d bytes, more than the %d a gate file may have", len(data), MaxSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, p.fail(0, "is empty; a gate file starts with \"version: 1\"")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.fail(0, "has no YAML document; a gate file starts with \"version: 1\"")
		}
		return nil, p.syntax(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, p.fail(extra.Line, "holds a second YAML document; a gate file is one")
	case !errors.Is(err, io.EOF):
		return nil, p.syntax(err)
	}
	if len(doc.Content) == 0 {
		return nil, p.fail(0, "has no YAML document; a gate file starts with \"version: 1\"")
	}
	if err := p.file(doc.Content[0]); err != nil {
		return nil, err
	}
	return p.f, nil
}

// syntax turns a YAML syntax error into an *report.InputError with its line.
func (p *parser) syntax(err error) error { return p.node(yamlnode.Syntax(err)) }

// node turns a *yamlnode.Error into an *report.InputError naming the file;
// other errors pass unchanged.
func (p *parser) node(err error) error {
	var e *yamlnode.Error
	if errors.As(err, &e) {
		return &report.InputError{File: p.name, Line: e.Line, Msg: e.Msg, Err: e.Err}
	}
	return err
}

// pair is one key of a mapping with its value.
type pair = yamlnode.Pair

// mapping returns the keys of a mapping node, refusing a key that is not
// among known, or given twice. what names the mapping in messages.
func (p *parser) mapping(n *yaml.Node, what string, known []string) ([]pair, error) {
	out, err := yamlnode.Mapping(n, what, known)
	return out, p.node(err)
}

// sequence returns the items of a sequence node.
func (p *parser) sequence(n *yaml.Node, what string) ([]*yaml.Node, error) {
	out, err := yamlnode.Sequence(n, what)
	return out, p.node(err)
}

// scalar returns a scalar's text; null is refused.
func (p *parser) scalar(n *yaml.Node, what string) (string, error) {
	out, err := yamlnode.Scalar(n, what)
	return out, p.node(err)
}

// text returns a scalar's text, or "" for null.
func (p *parser) text(n *yaml.Node, what string) (string, error) {
	out, err := yamlnode.Text(n, what)
	return out, p.node(err)
}

// word returns a non-empty scalar free of commas and control characters,
// which a spec could not carry.
func (p *parser) word(n *yaml.Node, what string) (string, error) {
	s, err := p.scalar(n, what)
	if err != nil {
		return "", err
	}
	switch {
	case strings.TrimSpace(s) == "":
		return "", p.fail(n.Line, "%s is empty", what)
	case strings.TrimSpace(s) != s:
		return "", p.fail(n.Line, "%s %q begins or ends with a space", what, s)
	case strings.Contains(s, ","):
		return "", p.fail(n.Line, "%s %q holds a comma, which a spec cannot carry", what, s)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "", p.fail(n.Line, "%s %q holds a control character", what, s)
	}
	return s, nil
}

// boolean returns a YAML boolean (true or false).
func (p *parser) boolean(n *yaml.Node, what string) (bool, error) {
	s, err := p.scalar(n, what)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, p.fail(n.Line, "%s is %q, where true or false belongs", what, s)
}

// duration returns a Go duration; positive says zero is refused.
func (p *parser) duration(n *yaml.Node, what string, positive bool) (time.Duration, error) {
	d, err := yamlnode.Duration(n, what, positive)
	return d, p.node(err)
}

// count returns a whole number, at least min.
func (p *parser) count(n *yaml.Node, what string, min int) (int, error) {
	v, err := yamlnode.Count(n, what, min)
	return v, p.node(err)
}

// stringMap returns a mapping of names to scalars, with its keys in file
// order.
func (p *parser) stringMap(n *yaml.Node, what string, validKey func(string) bool, keyRule string) ([]pair, map[string]string, error) {
	pairs, err := p.mapping(n, what, nil)
	if err != nil {
		return nil, nil, err
	}
	m := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		if !validKey(kv.Key) {
			return nil, nil, p.fail(kv.Line, "%s has the key %q, which is not %s", what, kv.Key, keyRule)
		}
		v, err := p.scalar(kv.Value, what+"."+kv.Key)
		if err != nil {
			return nil, nil, err
		}
		m[kv.Key] = v
	}
	return pairs, m, nil
}

// file reads the top-level mapping, in the order its parts depend on each
// other.
func (p *parser) file(root *yaml.Node) error {
	pairs, err := p.mapping(root, "the gate file", topKeys)
	if err != nil {
		return err
	}
	top := map[string]pair{}
	for _, kv := range pairs {
		top[kv.Key] = kv
	}
	v, ok := top["version"]
	if !ok {
		return p.fail(lineOf(root), "has no version; a gate file starts with \"version: %d\"", Version)
	}
	if s, err := p.scalar(v.Value, "version"); err != nil {
		return err
	} else if s != strconv.Itoa(Version) {
		return p.fail(v.Value.Line, "is version %q; this halfopen reads version %d", s, Version)
	}
	if s, ok := top["services"]; ok {
		if err := p.services(s.Value); err != nil {
			return err
		}
	}
	for _, need := range []string{"watchers", "cells", "budgets"} {
		if _, ok := top[need]; !ok {
			return p.fail(lineOf(root), "has no %s; a gate file names watchers, the cells to measure and the budgets they must hold", need)
		}
	}
	if err := p.watchers(top["watchers"].Value); err != nil {
		return err
	}
	if err := p.cells(top["cells"].Value); err != nil {
		return err
	}
	return p.budgets(top["budgets"].Value)
}

func (p *parser) services(n *yaml.Node) error {
	pairs, err := p.mapping(n, "services", nil)
	if err != nil {
		return err
	}
	for _, kv := range pairs {
		what := "service " + kv.Key
		if !plainName.MatchString(kv.Key) || slices.Contains(reservedPeers, kv.Key) {
			return p.fail(kv.Line, "service name %q is not a plain name (letters, digits, '_', '.', '-'), or is builtin or self, which name other peers", kv.Key)
		}
		fields, err := p.mapping(kv.Value, what, serviceKeys)
		if err != nil {
			return err
		}
		s := harness.Service{Name: kv.Key}
		hasCmd := false
		for _, fd := range fields {
			fw := what + " " + fd.Key
			switch fd.Key {
			case "cmd":
				hasCmd = true
				if err := p.serviceCmd(&s, fd.Value, fw); err != nil {
					return err
				}
			case "env":
				pairs, m, err := p.stringMap(fd.Value, fw, envName.MatchString, "an environment variable name")
				if err != nil {
					return err
				}
				for _, e := range pairs {
					s.Env = append(s.Env, e.Key+"="+m[e.Key])
				}
			case "package":
				s.Package, err = p.text(fd.Value, fw)
			case "user":
				s.User, err = p.text(fd.Value, fw)
			case "protocol":
				s.Protocol, err = p.boolean(fd.Value, fw)
			case "ready_timeout":
				s.ReadyTimeout, err = p.duration(fd.Value, fw, true)
			}
			if err != nil {
				return err
			}
		}
		if !hasCmd {
			return p.fail(kv.Line, "%s has no cmd; write cmd: [program, arg, ...] with {ip}, {port}, {addr} and {dir} where its address and directory go", what)
		}
		p.f.Services = append(p.f.Services, s)
	}
	return nil
}

// serviceCmd reads a service's program and arguments: a list, or one word
// for a program without arguments. A relative path is taken from the gate
// file's directory.
func (p *parser) serviceCmd(s *harness.Service, n *yaml.Node, what string) error {
	var argv []string
	if m := deref(n); m != nil && m.Kind == yaml.ScalarNode {
		w, err := p.scalar(m, what)
		if err != nil {
			return err
		}
		argv = []string{w}
	} else {
		items, err := p.sequence(n, what)
		if err != nil {
			return err
		}
		for i, it := range items {
			a, err := p.text(it, fmt.Sprintf("%s[%d]", what, i))
			if err != nil {
				return err
			}
			argv = append(argv, a)
		}
	}
	if len(argv) == 0 || strings.TrimSpace(argv[0]) == "" {
		return p.fail(lineOf(n), "%s names no program", what)
	}
	prog := argv[0]
	if strings.Contains(prog, "/") && !filepath.IsAbs(prog) {
		prog = filepath.Join(p.f.Dir, prog)
	}
	s.Path, s.Args = prog, argv[1:]
	return nil
}

func (p *parser) watchers(n *yaml.Node) error {
	pairs, err := p.mapping(n, "watchers", nil)
	if err != nil {
		return err
	}
	if len(pairs) == 0 {
		return p.fail(lineOf(n), "watchers lists no watcher")
	}
	for _, kv := range pairs {
		what := "watcher " + kv.Key
		if !plainName.MatchString(kv.Key) {
			return p.fail(kv.Line, "watcher name %q is not a plain name (letters, digits, '_', '.', '-')", kv.Key)
		}
		fields, err := p.mapping(kv.Value, what, watcherKeys)
		if err != nil {
			return err
		}
		w := Watcher{Name: kv.Key, Line: kv.Line, Peer: "builtin", Config: map[string]string{}}
		for _, fd := range fields {
			fw := what + " " + fd.Key
			switch fd.Key {
			case "cmd":
				w.Cmd, err = p.word(fd.Value, fw)
			case "peer":
				w.Peer, err = p.peer(fd.Value, fw)
			case "privileged":
				w.Privileged, err = p.boolean(fd.Value, fw)
			case "config":
				err = p.config(&w, fd.Value, fw)
			}
			if err != nil {
				return err
			}
		}
		if w.Cmd == "" {
			return p.fail(kv.Line, "%s has no cmd; write cmd: ./path/to/program (relative to the gate file's directory)", what)
		}
		if w.Detector, err = detectorSpec(w); err != nil {
			return p.fail(kv.Line, "%s: %v", what, err)
		}
		p.f.Watchers = append(p.f.Watchers, w)
	}
	return nil
}

// peer reads a watcher's peer: a service of the file, builtin, self, or a
// program's path.
func (p *parser) peer(n *yaml.Node, what string) (string, error) {
	s, err := p.word(n, what)
	if err != nil {
		return "", err
	}
	switch {
	case slices.Contains(reservedPeers, s):
		return s, nil
	case strings.Contains(s, "/"):
		return s, nil
	}
	var names []string
	for _, svc := range p.f.Services {
		if svc.Name == s {
			return "service:" + s, nil
		}
		names = append(names, svc.Name)
	}
	if len(names) == 0 {
		return "", p.fail(n.Line, "%s is %q, which is not builtin, self or a program's path, and the file defines no services", what, s)
	}
	return "", p.fail(n.Line, "%s is %q, which is not a service of this file (%s), builtin, self or a program's path", what, s, list(names))
}

// config reads a watcher's HALFOPEN_CONFIG keys.
func (p *parser) config(w *Watcher, n *yaml.Node, what string) error {
	pairs, err := p.mapping(n, what, nil)
	if err != nil {
		return err
	}
	for _, kv := range pairs {
		if !plainName.MatchString(kv.Key) {
			return p.fail(kv.Line, "%s has the key %q, which is not a plain name (letters, digits, '_', '.', '-')", what, kv.Key)
		}
		if slices.Contains(watcherKeys[:3], kv.Key) {
			return p.fail(kv.Line, "%s has the key %q, which is the watcher's own; write it beside config, not in it", what, kv.Key)
		}
		v, err := p.scalar(kv.Value, what+"."+kv.Key)
		if err != nil {
			return err
		}
		switch {
		case strings.TrimSpace(v) != v:
			return p.fail(kv.Value.Line, "%s.%s %q begins or ends with a space", what, kv.Key, v)
		case strings.Contains(v, ","):
			return p.fail(kv.Value.Line, "%s.%s %q holds a comma, which a spec cannot carry", what, kv.Key, v)
		case strings.IndexFunc(v, unicode.IsControl) >= 0:
			return p.fail(kv.Value.Line, "%s.%s %q holds a control character", what, kv.Key, v)
		}
		w.Config[kv.Key] = v
	}
	return nil
}

// detectorSpec is the watcher as the external detector: its cmd as
// written, so that its cells have the same name on every machine, and
// every parameter the registry would fill in, so that budgets match.
func detectorSpec(w Watcher) (string, error) {
	sp := spec.Spec{Name: "external", Params: map[string]string{
		"cmd": w.Cmd, "peer": w.Peer, "privileged": strconv.FormatBool(w.Privileged),
	}}
	for k, v := range w.Config {
		sp.Params[k] = v
	}
	s := sp.String()
	back, err := spec.Parse(s)
	if err != nil {
		return "", err
	}
	if !reflect.DeepEqual(back.Params, sp.Params) {
		return "", fmt.Errorf("its detector spec %q does not read back as written", s)
	}
	return s, nil
}

// cellKey identifies a cell of the file, to refuse one given twice.
type cellKey struct{ watcher, fault, side string }

func (p *parser) cells(n *yaml.Node) error {
	entries, err := p.sequence(n, "cells")
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return p.fail(lineOf(n), "cells lists no cell")
	}
	seen := map[cellKey]int{}
	for i, e := range entries {
		what := fmt.Sprintf("cell %d", i+1)
		fields, err := p.mapping(e, what, cellKeys)
		if err != nil {
			return err
		}
		base := harness.CellConfig{Samples: DefaultSamples}
		var watchers []string
		type fault struct {
			text, canonical string
			line            int
		}
		var faults []fault
		sides := []protocol.Side{protocol.SideClient}
		sysctlLine := 0
		for _, fd := range fields {
			fw := what + " " + fd.Key
			switch fd.Key {
			case "watchers":
				items, err := p.sequence(fd.Value, fw)
				if err != nil {
					return err
				}
				for _, it := range items {
					name, err := p.scalar(it, fw+" item")
					if err != nil {
						return err
					}
					if _, ok := p.f.Watcher(name); !ok {
						return p.fail(it.Line, "%s names %q, which is not a watcher of this file (%s)", fw, name, list(p.watcherNames()))
					}
					watchers = append(watchers, name)
				}
			case "faults":
				items, err := p.sequence(fd.Value, fw)
				if err != nil {
					return err
				}
				for _, it := range items {
					text, err := p.scalar(it, fw+" item")
					if err != nil {
						return err
					}
					c, err := harness.CanonicalFault(text)
					if err != nil {
						return p.fail(it.Line, "%s: %v", fw, err)
					}
					faults = append(faults, fault{text: text, canonical: c, line: it.Line})
				}
			case "sides":
				items, err := p.sequence(fd.Value, fw)
				if err != nil {
					return err
				}
				sides = nil
				for _, it := range items {
					text, err := p.scalar(it, fw+" item")
					if err != nil {
						return err
					}
					s, err := protocol.ParseSide(text)
					if err != nil {
						return p.fail(it.Line, "%s: %v", fw, err)
					}
					sides = append(sides, s)
				}
			case "samples":
				base.Samples, err = p.count(fd.Value, fw, 1)
			case "budget":
				base.Budget, err = p.duration(fd.Value, fw, true)
			case "idle":
				base.Idle, err = p.duration(fd.Value, fw, false)
				base.FixedIdle = true
			case "sysctls":
				_, base.Sysctls, err = p.stringMap(fd.Value, fw, func(string) bool { return true }, "")
				sysctlLine = fd.Line
			}
			if err != nil {
				return err
			}
		}
		for _, need := range []struct {
			key string
			n   int
		}{{"watchers", len(watchers)}, {"faults", len(faults)}, {"sides", len(sides)}} {
			if need.n == 0 {
				return p.fail(e.Line, "%s has no %s; a cell names watchers, faults and (optionally) sides", what, need.key)
			}
		}
		for _, flt := range faults {
			// The cell's fault and sysctls resolved with a built-in
			// detector: the harness's own checks, without the machine.
			probe := base
			probe.Detector, probe.Fault, probe.Side = "read-eof", flt.text, sides[0]
			rc, err := harness.Resolve(probe)
			if err != nil {
				line := flt.line
				if sysctlLine > 0 && strings.Contains(err.Error(), "sysctl") {
					line = sysctlLine
				}
				return p.fail(line, "%s: %v", what, err)
			}
			for _, w := range watchers {
				for _, s := range sides {
					k := cellKey{w, spec.IdentityOf(flt.canonical), string(s)}
					if len(p.f.Cells) == MaxCells {
						return p.fail(e.Line, "%s makes more than the %d cells a gate file may have", what, MaxCells)
					}
					if first, dup := seen[k]; dup {
						return p.fail(flt.line, "%s: watcher %s against %s on side %s is already a cell (line %d)", what, w, flt.text, s, first)
					}
					seen[k] = flt.line
					wt, _ := p.f.Watcher(w)
					c := base
					c.Detector, c.Fault, c.Side = wt.Detector, flt.canonical, s
					p.f.Cells = append(p.f.Cells, Cell{CellConfig: c, Watcher: w, Line: e.Line, Kind: rc.Kind})
				}
			}
		}
	}
	return nil
}

// budgets reads the file's budgets with report's one budget parser: a
// budget names a watcher of this file, whose detector spec it limits.
func (p *parser) budgets(n *yaml.Node) error {
	watcherOf := map[string]string{} // detector spec → watcher name
	bs, err := report.ParseBudgetList(p.name, n, report.BudgetSubject{
		Key: "watcher",
		Detector: func(name string) (string, error) {
			w, ok := p.f.Watcher(name)
			if !ok {
				return "", fmt.Errorf("which is not a watcher of this file (%s)", list(p.watcherNames()))
			}
			watcherOf[w.Detector] = name
			return w.Detector, nil
		},
		Fault: func(text string) (string, error) {
			f, err := harness.CanonicalFault(text)
			if err != nil {
				return "", fmt.Errorf("which is not a fault: %w", err)
			}
			return f, nil
		},
	})
	if err != nil {
		return err
	}
	for i, b := range bs.Budgets {
		if !p.matchesACell(&b) {
			return p.fail(b.Line, "budget %d (%s against %s) matches no cell of this gate file, so it could never hold", i+1, watcherOf[b.Detector], b.Fault)
		}
	}
	p.f.Budgets = bs
	return nil
}

// matchesACell reports whether a budget applies to a cell of the file.
func (p *parser) matchesACell(b *report.Budget) bool {
	for _, c := range p.f.Cells {
		if b.Matches(&report.Cell{Detector: c.Detector, Fault: c.Fault, Side: string(c.Side), Kind: c.Kind}) {
			return true
		}
	}
	return false
}

func (p *parser) watcherNames() []string {
	var out []string
	for _, w := range p.f.Watchers {
		out = append(out, w.Name)
	}
	return out
}

// lineOf returns a node's line, or 0 for none.
func lineOf(n *yaml.Node) int { return yamlnode.Line(n) }

// describe names what a node is, for messages.
func describe(n *yaml.Node) string { return yamlnode.Describe(n) }

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node { return yamlnode.Deref(n) }

// list joins names as "a, b and c".
func list(names []string) string { return yamlnode.List(names) }
