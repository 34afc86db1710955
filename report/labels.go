package report

import (
	"strings"

	"github.com/halfopen/halfopen/spec"
)

// labeller gives detectors and faults short labels: paths cut to their
// base name, and the parameters that every spec of the same name in the
// report shares left out (they tell two columns nothing apart). The full
// spec stays in titles and details.
type labeller struct {
	short map[string]string
}

func newLabeller(r *Report) *labeller {
	l := &labeller{short: map[string]string{}}
	var specs []string
	for i := range r.Cells {
		specs = append(specs, r.Cells[i].Detector, r.Cells[i].Fault)
	}
	for _, p := range r.Frontier {
		specs = append(specs, p.Detector)
	}
	// Parameters common to every spec of a name, with their value.
	type nameParams struct {
		n      int
		common map[string]string
	}
	byName := map[string]*nameParams{}
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s] {
			continue
		}
		seen[s] = true
		sp, err := spec.Parse(s)
		if err != nil {
			continue
		}
		name, params := sp.Name, sp.Params
		np := byName[name]
		if np == nil {
			byName[name] = &nameParams{n: 1, common: params}
			continue
		}
		np.n++
		for k, v := range np.common {
			if params[k] != v {
				delete(np.common, k)
			}
		}
	}
	for s := range seen {
		sp, err := spec.Parse(s)
		if err != nil {
			l.short[s] = s
			continue
		}
		name, params := sp.Name, sp.Params
		var parts []string
		for _, k := range sortedKeys(params) {
			v := params[k]
			if np := byName[name]; np != nil && np.n > 1 && np.common[k] == v && !strings.Contains(v, "/") {
				continue
			}
			if i := strings.LastIndex(v, "/"); i >= 0 {
				v = v[i+1:]
			}
			parts = append(parts, k+"="+v)
		}
		if len(parts) == 0 {
			l.short[s] = name
		} else {
			l.short[s] = name + ":" + strings.Join(parts, ",")
		}
	}
	return l
}

// of returns the short label of a spec.
func (l *labeller) of(spec string) string {
	if s, ok := l.short[spec]; ok {
		return s
	}
	return spec
}
