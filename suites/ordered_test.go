package suites

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoOrderedContainerHidesFailures: in an Ordered container without
// ContinueOnFailure, one failing spec skips every later one, and with them
// the checks that the host's namespace is untouched and no lab is left.
// The suites' own checks run in AfterSuite, which runs whatever the specs
// did; an Ordered container must still say ContinueOnFailure.
func TestNoOrderedContainerHidesFailures(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			ordered, continues := false, false
			for _, a := range call.Args {
				if id, ok := a.(*ast.Ident); ok {
					ordered = ordered || id.Name == "Ordered"
					continues = continues || id.Name == "ContinueOnFailure"
				}
			}
			if ordered && !continues {
				t.Errorf("%s: an Ordered container without ContinueOnFailure hides every failure after the first", fset.Position(call.Pos()))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
