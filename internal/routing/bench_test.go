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
