package routing_test

import (
	"strings"
	"testing"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

// FuzzRouteTemplate compiles any text as a message template and renders it
// for a problem holding any title and tag: compiling fails with a field
// error or succeeds, and rendering fails or stays within MaxRenderedBytes.
// Nothing panics, loops forever or grows without bound.
func FuzzRouteTemplate(f *testing.F) {
	for _, seed := range []string{
		"{{.Title}}",
		`{"title": {{json .Title}}, "tags": {{json .Tags}}}`,
		`{{range .ImpactedEntities}}- {{.Name}} ({{.Type}})
{{end}}`,
		`{{.Tags | join ", "}}{{upper .Severity}}{{lower .State}}`,
		`{{define "x"}}{{template "x" .}}{{end}}{{template "x" .}}`,
		`{{range $i, $e := .Tags}}{{range $.Tags}}{{range $.Tags}}{{$e}}{{end}}{{end}}{{end}}`,
		`{{printf "%0128d" 1}}`,
		`{{$s := .Title}}{{range 40}}{{$s = print $s $s}}{{end}}{{len $s}}`,
		"{{.Titel}}",
		"{{",
		"{{with .ImpactedEntities}}{{index . 7}}{{end}}",
	} {
		f.Add(seed, "CPU saturation", "env:prod")
	}
	f.Fuzz(func(t *testing.T, text, title, tag string) {
		spec := &problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{
			{Name: "hook", HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://hooks.example/x", Body: text}},
		}}
		route, p := compileFuzzed(t, spec, title, tag)
		if route == nil {
			return
		}
		out, err := route.Render("hook", "http.body", p)
		if err == nil && len(out) > routing.MaxRenderedBytes {
			t.Fatalf("rendered %d bytes, more than %d", len(out), routing.MaxRenderedBytes)
		}
	})
}

// FuzzRouteExpression compiles any text as a CEL match expression and
// evaluates it for a problem holding any title and tag: compiling fails
// with a field error or succeeds, and evaluating returns a bool or an
// error within the cost limit. Nothing panics or runs away.
func FuzzRouteExpression(f *testing.F) {
	for _, seed := range []string{
		`problem.severity == "AVAILABILITY"`,
		`problem.tags.exists(t, t.startsWith("env:"))`,
		`problem.impactedEntities.all(e, e.type == "HOST") && size(problem.title) > 3`,
		`problem.title.matches("^CPU.*")`,
		`problem.tags.map(t, problem.tags.map(u, problem.tags.map(v, t + u + v))).size() > 0`,
		`[1,2,3].map(x, [1,2,3].map(y, [1,2,3].map(z, x*y*z))).size() == 3`,
		`problem.titel == ""`,
		`1 + `,
		`"a"`,
	} {
		f.Add(seed, "CPU saturation", "env:prod")
	}
	f.Fuzz(func(t *testing.T, expr, title, tag string) {
		if strings.TrimSpace(expr) == "" {
			return // an empty expression is no expression
		}
		spec := &problemhookv1alpha1.IntegrationRouteSpec{
			Match:   problemhookv1alpha1.RouteMatch{Expression: expr},
			Actions: []problemhookv1alpha1.Action{{Name: "hook", HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://hooks.example/x"}}},
		}
		route, p := compileFuzzed(t, spec, title, tag)
		if route == nil {
			return
		}
		_, _ = route.Matches(p)
	})
}

// compileFuzzed compiles a fuzzed route spec and wants a field error when
// it does not compile (then it returns nil), and returns the route with a
// problem holding the fuzzed title and tag.
func compileFuzzed(t *testing.T, spec *problemhookv1alpha1.IntegrationRouteSpec, title, tag string) (*routing.Route, *routing.Problem) {
	t.Helper()
	route, err := routing.Compile(spec)
	if err != nil {
		if len(routing.FieldErrors(err)) == 0 {
			t.Fatalf("compile error names no field: %v", err)
		}
		return nil, nil
	}
	p := problem()
	p.Title, p.Tags = title, append(p.Tags, tag)
	return route, p
}
