package report

import (
	"embed"
	"html/template"
	"sync"
)

// pageFiles holds the HTML pages' templates and the one stylesheet that
// every page inlines.
//
//go:embed page/overview.html.tmpl page/compare.html.tmpl page/style.css
var pageFiles embed.FS

// stylesheet returns page/style.css, trusted as CSS: a template inlines it
// with {{stylesheet}} inside its <style> element, so each page is one file.
// It is read at its first use, not at init: every agent process links this
// package and never writes a page.
var stylesheet = sync.OnceValue(func() template.CSS {
	b, err := pageFiles.ReadFile("page/style.css")
	if err != nil {
		panic("report: the embedded stylesheet cannot be read: " + err.Error())
	}
	return template.CSS(b)
})

// parsePage returns a function that parses the embedded template
// page/name with funcs and the stylesheet at its first call, and returns
// that template at every call. Parsing waits for a page to be written, as
// stylesheet does. It panics on a bad template, which the package's tests
// catch.
func parsePage(name string, funcs template.FuncMap) func() *template.Template {
	return sync.OnceValue(func() *template.Template {
		t := template.New(name).Funcs(template.FuncMap{"stylesheet": stylesheet})
		if funcs != nil {
			t = t.Funcs(funcs)
		}
		return template.Must(t.ParseFS(pageFiles, "page/"+name))
	})
}
