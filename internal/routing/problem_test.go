package routing_test

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

// minimalEvent is what the old sample's minimal payload
// {"State":"{State}","ProblemID":"{ProblemID}","PID":"{PID}"} becomes.
func minimalEvent() *problemhookv1alpha1.ProblemEvent {
	return &problemhookv1alpha1.ProblemEvent{
		ObjectMeta: metav1.ObjectMeta{Name: "dynatrace-1a2b3c4d5e-open", Namespace: "shop"},
		Spec: problemhookv1alpha1.ProblemEventSpec{
			Target:     "dynatrace",
			Source:     problemhookv1alpha1.FormatDynatrace,
			ProblemID:  "-6150203450926486413_1669823466223V2",
			DisplayID:  "1234",
			State:      problemhookv1alpha1.StateOpen,
			ReceivedAt: metav1.NewTime(receivedAt),
		},
	}
}

// details is what the Dynatrace API says about the problem.
func details() *problemhookv1alpha1.ProblemDetails {
	return &problemhookv1alpha1.ProblemDetails{
		DisplayID:        "P-1234",
		Status:           "OPEN",
		Title:            "CPU saturation (API)",
		Severity:         "RESOURCE_CONTENTION",
		Impact:           "SERVICES",
		ImpactedEntities: []problemhookv1alpha1.ImpactedEntity{{ID: "HOST-9", Name: "web09", Type: "HOST"}},
		ManagementZones:  []string{"Shop"},
		Tags:             []string{"env:prod"},
		RootCause:        "web09",
	}
}

func TestNewProblem(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*problemhookv1alpha1.ProblemEvent)
		want   func(*routing.Problem)
	}{
		{
			name: "minimal payload, not enriched",
			want: func(*routing.Problem) {},
		},
		{
			name:   "minimal payload, enriched: details fill every empty field",
			modify: func(ev *problemhookv1alpha1.ProblemEvent) { ev.Status.Details = details() },
			want: func(p *routing.Problem) {
				p.Title = "CPU saturation (API)"
				p.Severity = "RESOURCE_CONTENTION"
				p.Impact = "SERVICE"
				p.ImpactedEntities = []routing.Entity{{ID: "HOST-9", Name: "web09", Type: "HOST"}}
				p.ManagementZones = []string{"Shop"}
				p.Tags = []string{"env:prod"}
				p.RootCause = "web09"
			},
		},
		{
			name: "display id from details when the payload has none",
			modify: func(ev *problemhookv1alpha1.ProblemEvent) {
				ev.Spec.DisplayID = ""
				ev.Status.Details = &problemhookv1alpha1.ProblemDetails{DisplayID: "P-221194163"}
			},
			want: func(p *routing.Problem) { p.DisplayID = "221194163" },
		},
		{
			name: "rich payload, enriched: the payload's fields win",
			modify: func(ev *problemhookv1alpha1.ProblemEvent) {
				ev.Spec.Title = "CPU saturation"
				ev.Spec.Message = "CPU usage 98%"
				ev.Spec.Severity = "ERROR"
				ev.Spec.Impact = "APPLICATION"
				ev.Spec.URL = "https://example.com/p/1234"
				ev.Spec.Tags = []string{"team:shop"}
				ev.Spec.ImpactedEntities = []problemhookv1alpha1.ImpactedEntity{{ID: "SERVICE-1", Name: "checkout", Type: "SERVICE"}}
				ev.Spec.ManagementZones = []string{"Prod"}
				ev.Spec.Test = true
				ev.Status.Details = details()
			},
			want: func(p *routing.Problem) {
				p.Title = "CPU saturation"
				p.Message = "CPU usage 98%"
				p.Severity = "ERROR"
				p.Impact = "APPLICATION"
				p.URL = "https://example.com/p/1234"
				p.Tags = []string{"team:shop"}
				p.ImpactedEntities = []routing.Entity{{ID: "SERVICE-1", Name: "checkout", Type: "SERVICE"}}
				p.ManagementZones = []string{"Prod"}
				p.Test = true
				p.RootCause = "web09"
			},
		},
		{
			name: "Guance event",
			modify: func(ev *problemhookv1alpha1.ProblemEvent) {
				ev.Spec.Source = problemhookv1alpha1.FormatGuance
				ev.Spec.State = problemhookv1alpha1.StateResolved
				ev.Spec.Severity = "CRITICAL"
			},
			want: func(p *routing.Problem) {
				p.Source = "Guance"
				p.State = "RESOLVED"
				p.Severity = "CRITICAL"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ev := minimalEvent()
			if tt.modify != nil {
				tt.modify(ev)
			}
			want := &routing.Problem{
				Event: "dynatrace-1a2b3c4d5e-open", Namespace: "shop", Target: "dynatrace", Source: "Dynatrace",
				ProblemID: "-6150203450926486413_1669823466223V2", DisplayID: "1234", State: "OPEN",
				Tags: []string{}, ImpactedEntities: []routing.Entity{}, ManagementZones: []string{}, ReceivedAt: receivedAt,
			}
			tt.want(want)
			g.Expect(routing.NewProblem(ev)).To(Equal(want))
		})
	}
}

func TestNewProblemJSON(t *testing.T) {
	g := NewWithT(t)
	b, err := json.Marshal(routing.NewProblem(minimalEvent()))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(b)).To(MatchJSON(`{
		"event": "dynatrace-1a2b3c4d5e-open", "namespace": "shop", "target": "dynatrace", "source": "Dynatrace",
		"problemID": "-6150203450926486413_1669823466223V2", "displayID": "1234", "state": "OPEN",
		"title": "", "message": "", "severity": "", "impact": "", "url": "",
		"tags": [], "impactedEntities": [], "managementZones": [], "rootCause": "",
		"receivedAt": "2026-11-21T10:00:00Z", "test": false, "duplicate": false, "underMaintenance": false}`))
}

func TestNewProblemDoesNotAlias(t *testing.T) {
	g := NewWithT(t)
	ev := minimalEvent()
	ev.Spec.Tags = []string{"env:prod"}
	p := routing.NewProblem(ev)
	p.Tags[0] = "changed"
	g.Expect(ev.Spec.Tags).To(Equal([]string{"env:prod"}))
}

func TestMinimalPayloadRoutesOnceEnriched(t *testing.T) {
	g := NewWithT(t)
	r, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{
		Match: problemhookv1alpha1.RouteMatch{
			Impacts: []string{"SERVICE"}, Tags: []string{"env:prod"}, EntityTypes: []string{"HOST"},
			Expression: `problem.title.contains("CPU")`,
		},
		Actions: []problemhookv1alpha1.Action{jobAction("run")},
	})
	g.Expect(err).NotTo(HaveOccurred())
	ev := minimalEvent()
	g.Expect(r.Matches(routing.NewProblem(ev))).To(BeFalse())
	ev.Status.Details = details()
	p := routing.NewProblem(ev)
	g.Expect(r.Matches(p)).To(BeTrue())
	g.Expect(r.Entities(p)).To(Equal([]routing.Entity{{ID: "HOST-9", Name: "web09", Type: "HOST"}}))
}
