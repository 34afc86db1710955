package report

import (
	"embed"
	"html/template"
)

// pageFiles holds the HTML pages' templates and the one stylesheet that
// every page inlines.
//
//go:embed page/overview.html.tmpl page/compare.html.tmpl page/style.css
var pageFiles embed.FS

// stylesheet is page/style.css, trusted as CSS: a template inlines it with
// {{stylesheet}} inside its <style> element, so each page is one file.
var stylesheet = func() template.CSS {
	b, err := pageFiles.ReadFile("page/style.css")
	if err != nil {
		panic("report: the embedded stylesheet cannot be read: " + err.Error())
	}
	return template.CSS(b)
}()

// parsePage parses the embedded template page/name with funcs and the
// stylesheet; it panics on a bad template, which the package's tests catch.
func parsePage(name string, funcs template.FuncMap) *template.Template {
	t := template.New(name).Funcs(template.FuncMap{"stylesheet": func() template.CSS { return stylesheet }})
	if funcs != nil {
		t = t.Funcs(funcs)
	}
	return template.Must(t.ParseFS(pageFiles, "page/"+name))
}
