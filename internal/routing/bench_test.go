package routing_test

import (
	"testing"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

// BenchmarkMatches compares a route with every list criterion against the
// same route with a CEL expression on top.
func BenchmarkMatches(b *testing.B) {
	match := problemhookv1alpha1.RouteMatch{
		States:      []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateOpen},
		Severities:  []string{"ERROR", "RESOURCE_CONTENTION"},
		Impacts:     []string{"INFRASTRUCTURE", "SERVICE"},
		Tags:        []string{"env:prod", "app"},
		EntityTypes: []string{"HOST"},
	}
	withCEL := match
	withCEL.Expression = `problem.title.contains("CPU") && problem.impactedEntities.exists(e, e.type == "HOST")`
	for _, bm := range []struct {
		name  string
		match problemhookv1alpha1.RouteMatch
	}{
		{name: "criteria", match: match},
		{name: "criteria+cel", match: withCEL},
	} {
		b.Run(bm.name, func(b *testing.B) {
			r, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{
				Match: bm.match, Actions: []problemhookv1alpha1.Action{jobAction("run")},
			})
			if err != nil {
				b.Fatal(err)
			}
			p := problem()
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := r.Matches(p); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// ordinaryTemplate is an SMS as a route's author writes one.
const ordinaryTemplate = "Dynatrace notification - {{.Impact}} problem ({{.DisplayID}}) {{.State}}. {{.URL}}{{range .ImpactedEntities}} {{.Name}}{{end}}"

// BenchmarkRenderDoubling measures checking a route whose template doubles
// a string 30 times with no loop, which wants 8 GiB: rendering it for the
// sample problem is refused at the value budget. Compare
// BenchmarkRenderOrdinary, from the same run.
func BenchmarkRenderDoubling(b *testing.B) {
	benchmarkCompile(b, doubling(30), false)
}

// BenchmarkRenderOrdinary measures checking a route with an ordinary
// template, which renders it for the sample problem as well.
func BenchmarkRenderOrdinary(b *testing.B) {
	benchmarkCompile(b, ordinaryTemplate, true)
}

func benchmarkCompile(b *testing.B, text string, valid bool) {
	spec := &problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{httpAction(text)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := routing.Compile(spec); (err == nil) != valid {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderBudget measures what a template bomb costs now that each
// render has a budget, against an ordinary template rendered in the same
// run: a bomb is refused at the bound of its budget, in bounded memory
// (compare B/op), instead of running forever or allocating gigabytes.
// Bombs are rendered for a problem with 200 impacted entities, past the
// sample problem that compiling a route renders for.
func BenchmarkRenderBudget(b *testing.B) {
	p := problem()
	for range 200 {
		p.ImpactedEntities = append(p.ImpactedEntities, routing.Entity{ID: "HOST-0123456789ABCDEF", Name: "web", Type: "HOST"})
	}
	for _, bm := range []struct{ name, text string }{
		{"ordinary", ordinaryTemplate},
		{"nested-ranges", "{{range .ImpactedEntities}}{{range $.ImpactedEntities}}{{range $.ImpactedEntities}}{{end}}{{end}}{{end}}"},
		{"wide-printf", `{{range .ImpactedEntities}}{{printf "%256d%256d%256d%256d" 1 2 3 4}}{{end}}`},
		{"output-flood", "{{range .ImpactedEntities}}{{range $.ImpactedEntities}}{{$.URL}}{{end}}{{end}}"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			r, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{httpAction(bm.text)}})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = r.Render("itsm", "http.body", p)
			}
		})
	}
}
