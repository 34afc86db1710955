// Package specseeds gathers the detector and fault specs written in the
// repository's own files (the budgets, the baseline report, the docs) and a
// few malformed ones: the seed corpus of every fuzz target that parses
// specs.
package specseeds

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// specLine finds a spec after "detector:" or "fault:" in YAML, JSON or prose.
var specLine = regexp.MustCompile(`(?m)(?:detector|fault)"?:\s*"?([a-z0-9-]+(?::[^"\s]+)?)`)

// Malformed are specs that must be refused, or parse to something odd.
var Malformed = []string{"", ":", "a:", "a:=", "a:b", "a:b=1,b=2", " a : b = 1 , c=2 ", "a:b:c=d=e", "A", "heartbeat-inband:interval=200ms,misses=3,"}

// FromRepo returns the specs written in the repository whose top directory
// is root, then Malformed.
func FromRepo(root string) ([]string, error) {
	var out []string
	for _, p := range []string{"ci/budgets.yaml", "report/testdata/budgets.yaml", "docs/protocol.md", "README.md"} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			return nil, err
		}
		for _, m := range specLine.FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1])
		}
	}
	path := filepath.Join(root, "ci/baseline.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep struct {
		Cells []struct{ Detector, Fault string } `json:"cells"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, c := range rep.Cells {
		out = append(out, c.Detector, c.Fault)
	}
	return append(out, Malformed...), nil
}
