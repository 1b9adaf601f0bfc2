package routing_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

func TestMatches(t *testing.T) {
	type match = problemhookv1alpha1.RouteMatch
	open, resolved := problemhookv1alpha1.StateOpen, problemhookv1alpha1.StateResolved
	withImpact := func(impact string) func(*routing.Problem) {
		return func(p *routing.Problem) { p.Impact = impact }
	}
	withSeverity := func(severity string) func(*routing.Problem) {
		return func(p *routing.Problem) { p.Severity = severity }
	}
	tests := []struct {
		name    string
		targets []string
		match   match
		modify  func(*routing.Problem)
		want    bool
	}{
		{name: "empty match", want: true},
		{name: "target listed", targets: []string{"guance", "dynatrace"}, want: true},
		{name: "target not listed", targets: []string{"guance"}, want: false},

		{name: "state", match: match{States: []problemhookv1alpha1.ProblemState{open}}, want: true},
		{name: "other state", match: match{States: []problemhookv1alpha1.ProblemState{resolved}}, want: false},

		{name: "severity ignoring case", match: match{Severities: []string{"ERROR", "resource_contention"}}, want: true},
		{name: "other severity", match: match{Severities: []string{"AVAILABILITY", "ERROR"}}, want: false},
		{name: "INFO is nothing abnormal: a route that names no severity leaves it alone", modify: withSeverity("INFO"), want: false},
		{name: "INFO runs a route that names it", match: match{Severities: []string{"info"}}, modify: withSeverity("INFO"), want: true},
		{name: "INFO does not run a route that names others", match: match{Severities: []string{"CRITICAL"}}, modify: withSeverity("INFO"), want: false},

		{name: "impact", match: match{Impacts: []string{"INFRASTRUCTURE"}}, want: true},
		{name: "other impact", match: match{Impacts: []string{"APPLICATION", "SERVICE"}}, want: false},
		{name: "impact SERVICES matches SERVICE", match: match{Impacts: []string{"SERVICES"}}, modify: withImpact("SERVICE"), want: true},
		{name: "impact SERVICE matches SERVICES", match: match{Impacts: []string{"SERVICE"}}, modify: withImpact("SERVICES"), want: true},
		{name: "impact application matches APPLICATIONS", match: match{Impacts: []string{"application"}}, modify: withImpact("APPLICATIONS"), want: true},
		{name: "impact SERVICE does not match APPLICATIONS", match: match{Impacts: []string{"SERVICE"}}, modify: withImpact("APPLICATIONS"), want: false},
		{name: "impact wanted, problem has none", match: match{Impacts: []string{"SERVICE"}}, modify: withImpact(""), want: false},

		{name: "tag key:value", match: match{Tags: []string{"env:prod"}}, want: true},
		{name: "tag other value", match: match{Tags: []string{"env:dev"}}, want: false},
		{name: "tag key matches key:value", match: match{Tags: []string{"env"}}, want: true},
		{name: "tag key prefix is not a key", match: match{Tags: []string{"en"}}, want: false},
		{name: "tag key matches key alone", match: match{Tags: []string{"team"}}, want: true},
		{name: "tag key:value does not match key alone", match: match{Tags: []string{"team:ops"}}, want: false},
		{name: "tag value with colon", match: match{Tags: []string{"owner:ops:night"}}, want: true},
		{name: "tag surrounding spaces", match: match{Tags: []string{"  env:prod "}}, modify: func(p *routing.Problem) { p.Tags = []string{" env:prod"} }, want: true},
		{name: "tag without context matches prefixed tag", match: match{Tags: []string{"app:shop"}}, want: true},
		{name: "tag key without context matches prefixed tag", match: match{Tags: []string{"app"}}, want: true},
		{name: "tag with context matches exactly", match: match{Tags: []string{"[Kubernetes]app:shop"}}, want: true},
		{name: "tag with other context", match: match{Tags: []string{"[Environment]app:shop"}}, want: false},
		{name: "tag with context does not match bare tag", match: match{Tags: []string{"[Kubernetes]env:prod"}}, want: false},
		{name: "all tags present", match: match{Tags: []string{"env:prod", "app:shop", "team"}}, want: true},
		{name: "one tag missing", match: match{Tags: []string{"env:prod", "tier:gold"}}, want: false},
		{name: "tags wanted, problem has none", match: match{Tags: []string{"env"}}, modify: func(p *routing.Problem) { p.Tags = nil }, want: false},

		{name: "entity type ignoring case", match: match{EntityTypes: []string{"process_group", "host"}}, want: true},
		{name: "other entity type", match: match{EntityTypes: []string{"PROCESS_GROUP_INSTANCE"}}, want: false},
		{name: "entity name", match: match{EntityNames: []string{"checkout"}}, want: true},
		{name: "entity name is exact", match: match{EntityNames: []string{"Checkout"}}, want: false},
		{name: "entity type and name of one entity", match: match{EntityTypes: []string{"HOST"}, EntityNames: []string{"web01"}}, want: true},
		{name: "entity type and name of different entities", match: match{EntityTypes: []string{"HOST"}, EntityNames: []string{"checkout"}}, want: false},
		{name: "entities wanted, problem has none", match: match{EntityTypes: []string{"HOST"}}, modify: func(p *routing.Problem) { p.ImpactedEntities = nil }, want: false},

		{name: "management zone", match: match{ManagementZones: []string{"Other", "Prod"}}, want: true},
		{name: "management zone is exact", match: match{ManagementZones: []string{"shop"}}, want: false},

		{name: "all criteria", targets: []string{"dynatrace"}, match: match{
			States: []problemhookv1alpha1.ProblemState{open}, Severities: []string{"RESOURCE_CONTENTION"},
			Impacts: []string{"INFRASTRUCTURE"}, Tags: []string{"env:prod", "app"}, EntityTypes: []string{"HOST"},
			EntityNames: []string{"web01"}, ManagementZones: []string{"Shop"}, Expression: `problem.title.contains("CPU")`,
		}, want: true},
		{name: "all criteria but one", targets: []string{"dynatrace"}, match: match{
			States: []problemhookv1alpha1.ProblemState{open}, Severities: []string{"RESOURCE_CONTENTION"},
			Impacts: []string{"INFRASTRUCTURE"}, Tags: []string{"env:prod", "app"}, EntityTypes: []string{"HOST"},
			EntityNames: []string{"web01"}, ManagementZones: []string{"Shop"}, Expression: `problem.title.contains("Disk")`,
		}, want: false},
		{name: "expression not evaluated when a criterion fails", match: match{
			States: []problemhookv1alpha1.ProblemState{resolved}, Expression: `problem.tags[99] == "x"`,
		}, want: false},

		{name: "cel title", match: match{Expression: `problem.title.contains("CPU")`}, want: true},
		{name: "cel false", match: match{Expression: `problem.title.startsWith("Disk")`}, want: false},
		{name: "cel maintenance", match: match{Expression: `!problem.underMaintenance`}, modify: func(p *routing.Problem) { p.UnderMaintenance = true }, want: false},
		{name: "cel duplicate", match: match{Expression: `problem.duplicate`}, modify: func(p *routing.Problem) { p.Duplicate = true }, want: true},
		{name: "cel strings extension", match: match{Expression: `problem.title.lowerAscii().split(" ")[0] == "cpu"`}, want: true},
		{name: "cel entities exists", match: match{Expression: `problem.impactedEntities.exists(e, e.type == "HOST" && e.name == "web01")`}, want: true},
		{name: "cel entities exists false", match: match{Expression: `problem.impactedEntities.exists(e, e.type == "PROCESS_GROUP")`}, want: false},
		{name: "cel entity ids", match: match{Expression: `"SERVICE-2" in problem.impactedEntities.map(e, e.id)`}, want: true},
		{name: "cel tags", match: match{Expression: `"env:prod" in problem.tags && !("env:dev" in problem.tags)`}, want: true},
		{name: "cel sets extension", match: match{Expression: `sets.intersects(problem.tags, ["team", "x"])`}, want: true},
		{name: "cel receivedAt", match: match{Expression: `problem.receivedAt > timestamp("2026-01-01T00:00:00Z")`}, want: true},
		{name: "cel receivedAt year", match: match{Expression: `problem.receivedAt.getFullYear() == 2025`}, want: false},
		{name: "cel receivedAt age", match: match{Expression: `problem.receivedAt - timestamp("2026-11-21T09:00:00Z") < duration("2h")`}, want: true},
		{name: "cel test and state", match: match{Expression: `!problem.test && problem.state == "OPEN" && problem.source == "Dynatrace"`}, want: true},
		{name: "cel empty lists", match: match{Expression: `problem.tags.size() == 0 && problem.managementZones.size() == 0`},
			modify: func(p *routing.Problem) { *p = *routing.NewProblem(minimalEvent()) }, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{
				Targets: tt.targets, Match: tt.match, Actions: []problemhookv1alpha1.Action{jobAction("run")},
			})
			g.Expect(err).NotTo(HaveOccurred())
			p := problem()
			if tt.modify != nil {
				tt.modify(p)
			}
			g.Expect(r.Matches(p)).To(Equal(tt.want))
			why, err := r.WhyNot(p)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(why == "").To(Equal(tt.want), "WhyNot says %q", why)
		})
	}
}

func TestWhyNot(t *testing.T) {
	type match = problemhookv1alpha1.RouteMatch
	tests := []struct {
		name    string
		targets []string
		match   match
		modify  func(*routing.Problem)
		want    string
	}{
		{name: "target", targets: []string{"guance"},
			want: `spec.targets [guance] does not list the event's target "dynatrace"`},
		{name: "state", match: match{States: []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateResolved}},
			want: `spec.match.states [RESOLVED] does not hold the problem's state "OPEN"`},
		{name: "severity", match: match{Severities: []string{"AVAILABILITY", "ERROR"}},
			want: `spec.match.severities [AVAILABILITY, ERROR] does not hold the problem's severity "RESOURCE_CONTENTION"`},
		{name: "INFO", modify: func(p *routing.Problem) { p.Severity = "INFO" },
			want: "the problem's severity is INFO, which runs only a route whose spec.match.severities lists it"},
		{name: "impact", match: match{Impacts: []string{"SERVICE"}},
			want: `spec.match.impacts [SERVICE] does not hold the problem's impact "INFRASTRUCTURE"`},
		{name: "first missing tag", match: match{Tags: []string{"env:prod", "tier:gold", "x"}},
			want: `spec.match.tags: the problem has no tag "tier:gold" (its tags: [env:prod, [Kubernetes]app:shop, team, owner:ops:night])`},
		{name: "management zones", match: match{ManagementZones: []string{"Billing"}},
			want: "spec.match.managementZones [Billing] holds none of the problem's management zones [Shop, Prod]"},
		{name: "entities", match: match{EntityTypes: []string{"HOST"}, EntityNames: []string{"checkout"}},
			want: "no impacted entity is of a type in spec.match.entityTypes [HOST] and named in spec.match.entityNames [checkout] (impacted: [HOST web01, SERVICE checkout])"},
		{name: "entity names", match: match{EntityNames: []string{"db01"}},
			want: "no impacted entity is named in spec.match.entityNames [db01] (impacted: [HOST web01, SERVICE checkout])"},
		{name: "expression", match: match{Expression: `problem.title.startsWith("Disk")`},
			want: "spec.match.expression is false for the problem"},
		{name: "the first criterion that fails is named", targets: []string{"dynatrace"},
			match: match{Severities: []string{"ERROR"}, Tags: []string{"tier:gold"}, Expression: "false"},
			want:  `spec.match.severities [ERROR] does not hold the problem's severity "RESOURCE_CONTENTION"`},
		{name: "match", targets: []string{"dynatrace"}, match: match{Expression: "true"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{
				Targets: tt.targets, Match: tt.match, Actions: []problemhookv1alpha1.Action{jobAction("run")},
			})
			g.Expect(err).NotTo(HaveOccurred())
			p := problem()
			if tt.modify != nil {
				tt.modify(p)
			}
			g.Expect(r.WhyNot(p)).To(Equal(tt.want))
		})
	}

	g := NewWithT(t)
	r, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{
		Match: problemhookv1alpha1.RouteMatch{Expression: `problem.tags[10] == "x"`}, Actions: []problemhookv1alpha1.Action{jobAction("run")},
	})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = r.WhyNot(problem())
	g.Expect(err).To(MatchError(ContainSubstring("evaluating spec.match.expression")))
}

func TestRuns(t *testing.T) {
	g := NewWithT(t)
	perEntity := jobAction("per-entity")
	perEntity.Job.PerImpactedEntity = true
	sms := twilioAction("{{.Title}}")
	sms.Twilio.To = []string{"+4917000001", "+4917000002"}
	actions := []problemhookv1alpha1.Action{jobAction("once"), perEntity, sms, httpAction("")}
	r, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{
		Match: problemhookv1alpha1.RouteMatch{EntityTypes: []string{"HOST"}}, Actions: actions,
	})
	g.Expect(err).NotTo(HaveOccurred())

	p := problem()
	p.ImpactedEntities = append(p.ImpactedEntities, routing.Entity{ID: "HOST-1", Name: "web01 again", Type: "HOST"}, routing.Entity{Name: "web02", Type: "HOST"})
	type run struct{ action, entity, recipient string }
	var got []run
	for _, r := range r.Runs(actions, p) {
		g.Expect(r.NoEntities).To(BeFalse())
		x := run{action: r.Action.Name, recipient: r.Recipient}
		if r.Entity != nil {
			x.entity = routing.EntityKey(*r.Entity)
		}
		got = append(got, x)
	}
	g.Expect(got).To(Equal([]run{
		{action: "once"},
		{action: "per-entity", entity: "HOST-1"},
		{action: "per-entity", entity: "web02"},
		{action: "sms", recipient: "+4917000001"},
		{action: "sms", recipient: "+4917000002"},
		{action: "itsm"},
	}))

	p.ImpactedEntities = nil
	runs := r.Runs(actions[1:2], p)
	g.Expect(runs).To(HaveLen(1))
	g.Expect(runs[0].NoEntities).To(BeTrue())
}

func TestCompileExpressionErrors(t *testing.T) {
	tests := []struct {
		name       string
		expression string
		want       string
	}{
		{name: "syntax", expression: `problem.title.contains("CPU"`, want: "1:29: Syntax error: missing ')'"},
		{name: "unknown field", expression: `problem.titel == "CPU"`, want: "spec.match.expression: 1:8: undefined field 'titel'"},
		{name: "unknown entity field", expression: `problem.impactedEntities.exists(e, e.kind == "HOST")`, want: "kind"},
		{name: "Go field name", expression: `problem.Title == "CPU"`, want: "Title"},
		{name: "unknown variable", expression: `event.title == "CPU"`, want: "event"},
		{name: "string result", expression: `problem.title`, want: "must be a bool expression, not string"},
		{name: "int result", expression: `size(problem.tags)`, want: "must be a bool expression, not int"},
		{name: "type mismatch", expression: `problem.test == "true"`, want: "no matching overload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{
				Match:   problemhookv1alpha1.RouteMatch{Expression: tt.expression},
				Actions: []problemhookv1alpha1.Action{jobAction("run")},
			})
			var fe *routing.FieldError
			g.Expect(errors.As(err, &fe)).To(BeTrue(), "error %v", err)
			g.Expect(fe.Field).To(Equal("spec.match.expression"))
			g.Expect(fe.Reason).To(Equal(problemhookv1alpha1.ReasonInvalidExpression))
			g.Expect(err.Error()).To(HavePrefix("spec.match.expression: "))
			g.Expect(err.Error()).To(ContainSubstring(tt.want))
		})
	}
}

func TestMatchesEvaluationErrors(t *testing.T) {
	tests := []struct {
		name       string
		expression string
		want       string
	}{
		{name: "index out of range", expression: `problem.tags[10] == "env:prod"`, want: "index out of bounds"},
		{name: "division by zero", expression: `size(problem.tags) / (size(problem.managementZones) - 2) > 0`, want: "division by zero"},
		// Each contains over the long literal costs hundreds: the limit is
		// reached after a few thousand steps, long before the time bound.
		{name: "runaway expression hits the cost limit", want: "cost limit",
			expression: `[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, [0,1,2,3,4,5,6,7,8,9].all(c,
				[0,1,2,3,4,5,6,7,8,9].all(d, [0,1,2,3,4,5,6,7,8,9].all(e,
				!"` + strings.Repeat("x", 3500) + `".contains(problem.title))))))`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{
				Match:   problemhookv1alpha1.RouteMatch{Expression: tt.expression},
				Actions: []problemhookv1alpha1.Action{jobAction("run")},
			})
			g.Expect(err).NotTo(HaveOccurred())
			start := time.Now()
			matched, err := r.Matches(problem())
			g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
			g.Expect(err.Error()).To(HavePrefix("evaluating spec.match.expression: "))
			g.Expect(matched).To(BeFalse())
		})
	}
}

func TestMatchesNoProblem(t *testing.T) {
	g := NewWithT(t)
	r, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{jobAction("run")}})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = r.Matches(nil)
	g.Expect(err).To(HaveOccurred())
}

func TestEntities(t *testing.T) {
	all := problem().ImpactedEntities
	tests := []struct {
		name  string
		match problemhookv1alpha1.RouteMatch
		want  []routing.Entity
	}{
		{name: "no entity criteria: all", want: all},
		{name: "by type", match: problemhookv1alpha1.RouteMatch{EntityTypes: []string{"service"}}, want: all[1:]},
		{name: "by name", match: problemhookv1alpha1.RouteMatch{EntityNames: []string{"web01", "db01"}}, want: all[:1]},
		{name: "by type and name", match: problemhookv1alpha1.RouteMatch{EntityTypes: []string{"HOST", "SERVICE"}, EntityNames: []string{"checkout"}}, want: all[1:]},
		{name: "none passes", match: problemhookv1alpha1.RouteMatch{EntityTypes: []string{"APPLICATION"}}, want: []routing.Entity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{Match: tt.match, Actions: []problemhookv1alpha1.Action{jobAction("run")}})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(r.Entities(problem())).To(Equal(tt.want))
		})
	}
}
