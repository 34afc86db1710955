package halfopen_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A backticked relative path: no spaces, at least one slash or a file
// extension, not a URL, not an absolute path.
var backticked = regexp.MustCompile("`([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]*)+|[A-Za-z0-9_-]+\\.(?:go|md|css|tmpl|yaml))`")

// section returns the README's section that starts with heading, up to the
// next section of the same level.
func section(t *testing.T, text, heading string) string {
	t.Helper()
	i := strings.Index(text, "\n"+heading)
	if i < 0 {
		t.Fatalf("README.md has no section %q", heading)
	}
	rest := text[i+1+len(heading):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// Every file or folder the README's newcomer's tour and the architecture
// page name exists.
func TestArchitectureDocsNameExistingFiles(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	arch, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, text string }{
		{"README.md, architecture section", section(t, string(readme), "## Architecture")},
		{"docs/architecture.md", string(arch)},
	} {
		found := backticked.FindAllStringSubmatch(tc.text, -1)
		if len(found) == 0 {
			t.Errorf("%s names no file", tc.name)
		}
		for _, m := range found {
			if _, err := os.Stat(strings.TrimSuffix(m[1], "/")); err != nil {
				t.Errorf("%s names %s, which does not exist", tc.name, m[1])
			}
		}
	}
}

// exportedNames counts a package directory's top-level exported names.
func exportedNames(t *testing.T, dir string) int {
	t.Helper()
	pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil && d.Name.IsExported() {
						n++
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.TypeSpec:
							if s.Name.IsExported() {
								n++
							}
						case *ast.ValueSpec:
							for _, id := range s.Names {
								if id.IsExported() {
									n++
								}
							}
						}
					}
				}
			}
		}
	}
	return n
}

// The architecture page's table of exported names is what the packages
// export.
func TestArchitectureCountsExportedNames(t *testing.T) {
	arch, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`(?m)^\| ([a-z]+) +\| +([0-9]+) \|$`).FindAllStringSubmatch(string(arch), -1)
	if len(rows) < 6 {
		t.Fatalf("docs/architecture.md lists %d packages' exported names, want gate, harness, protocol, report, spec, tcprules", len(rows))
	}
	for _, r := range rows {
		want, _ := strconv.Atoi(r[2])
		if got := exportedNames(t, r[1]); got != want {
			t.Errorf("docs/architecture.md says %s exports %d names; it exports %d: write %d there", r[1], want, got, got)
		}
	}
}
