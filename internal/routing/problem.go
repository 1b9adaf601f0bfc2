// Package routing decides which IntegrationRoutes a ProblemEvent matches and
// renders what their actions send: it compiles a route's CEL expression and
// text templates once, matches normalised problems against it, and decodes
// its Job templates strictly.
package routing

import (
	"strings"
	"time"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// Problem is the normalised problem every route sees: `problem` in CEL, `.` in
// text templates, PROBLEM_JSON in Jobs. Its slices are never nil, so that CEL
// and JSON see [] rather than null.
type Problem struct {
	// Event is the ProblemEvent's name.
	Event     string `json:"event"`
	Namespace string `json:"namespace"`
	Target    string `json:"target"`
	// Source is Dynatrace or Guance.
	Source    string `json:"source"`
	ProblemID string `json:"problemID"`
	DisplayID string `json:"displayID"`
	// State is OPEN or RESOLVED.
	State            string    `json:"state"`
	Title            string    `json:"title"`
	Message          string    `json:"message"`
	Severity         string    `json:"severity"`
	Impact           string    `json:"impact"`
	URL              string    `json:"url"`
	Tags             []string  `json:"tags"`
	ImpactedEntities []Entity  `json:"impactedEntities"`
	ManagementZones  []string  `json:"managementZones"`
	RootCause        string    `json:"rootCause"`
	ReceivedAt       time.Time `json:"receivedAt"`
	Test             bool      `json:"test"`
	// Duplicate is a problem Dynatrace merged into another; UnderMaintenance
	// one on entities under maintenance (Dynatrace Workflows says both).
	Duplicate        bool `json:"duplicate"`
	UnderMaintenance bool `json:"underMaintenance"`
}

// Entity is an entity a problem impacts.
type Entity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// NewProblem normalises a ProblemEvent: its spec, with every field the
// notification left empty (displayID, title, severity, impact,
// impactedEntities, managementZones, tags) filled from status.details, what
// the Dynatrace API said. A minimal payload {"State","ProblemID","PID"} thus
// routes and fans out like a rich one once the event is enriched.
//
// The API's display id P-1234 is filled in as 1234, the form the webhook's
// {ProblemID} gives, and its impact level SERVICES as SERVICE.
func NewProblem(ev *problemhookv1alpha1.ProblemEvent) *Problem {
	spec := &ev.Spec
	p := &Problem{
		Event:            ev.Name,
		Namespace:        ev.Namespace,
		Target:           spec.Target,
		Source:           string(spec.Source),
		ProblemID:        spec.ProblemID,
		DisplayID:        spec.DisplayID,
		State:            string(spec.State),
		Title:            spec.Title,
		Message:          spec.Message,
		Severity:         spec.Severity,
		Impact:           spec.Impact,
		URL:              spec.URL,
		Tags:             cloneStrings(spec.Tags),
		ImpactedEntities: entities(spec.ImpactedEntities),
		ManagementZones:  cloneStrings(spec.ManagementZones),
		Test:             spec.Test,
		Duplicate:        spec.Duplicate,
		UnderMaintenance: spec.UnderMaintenance,
	}
	if !spec.ReceivedAt.IsZero() {
		p.ReceivedAt = spec.ReceivedAt.UTC()
	}
	d := ev.Status.Details
	if d == nil {
		return p
	}
	fill(&p.DisplayID, strings.TrimPrefix(d.DisplayID, "P-"))
	fill(&p.Title, d.Title)
	fill(&p.Severity, d.Severity)
	fill(&p.Impact, apiImpact(d.Impact))
	fill(&p.RootCause, d.RootCause)
	if len(p.Tags) == 0 {
		p.Tags = cloneStrings(d.Tags)
	}
	if len(p.ImpactedEntities) == 0 {
		p.ImpactedEntities = entities(d.ImpactedEntities)
	}
	if len(p.ManagementZones) == 0 {
		p.ManagementZones = cloneStrings(d.ManagementZones)
	}
	return p
}

// fill sets an empty field to value.
func fill(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

// apiImpact turns the Problems API's impact level into the webhook's: the API
// says SERVICES where the {ProblemImpact} placeholder says SERVICE.
func apiImpact(level string) string {
	if level == "SERVICES" {
		return "SERVICE"
	}
	return level
}

func cloneStrings(s []string) []string {
	return append(make([]string, 0, len(s)), s...)
}

func entities(in []problemhookv1alpha1.ImpactedEntity) []Entity {
	out := make([]Entity, 0, len(in))
	for _, e := range in {
		out = append(out, Entity{ID: e.ID, Name: e.Name, Type: e.Type})
	}
	return out
}

// SampleProblem is a problem with every field set, the way a rich
// Dynatrace notification enriched from the API gives it: a route's
// templates are rendered for it when the route is compiled.
func SampleProblem() *Problem {
	return &Problem{
		Event: "dynatrace-1a2b3c4d5e6f7a8b-open", Namespace: "shop", Target: "dynatrace", Source: "Dynatrace",
		ProblemID: "-6150203450926486413_1669823466223V2", DisplayID: "1234", State: "OPEN",
		Title: "CPU saturation", Message: "CPU usage on host web01 is above 95 %", Severity: "RESOURCE_CONTENTION",
		Impact: "INFRASTRUCTURE", URL: "https://abc12345.live.dynatrace.com/#problems/problemdetails;pid=-6150203450926486413_1669823466223V2",
		Tags:             []string{"env:prod", "team:shop", "critical"},
		ImpactedEntities: []Entity{{ID: "HOST-0123456789ABCDEF", Name: "web01", Type: "HOST"}, {ID: "HOST-FEDCBA9876543210", Name: "web02", Type: "HOST"}},
		ManagementZones:  []string{"Shop"},
		RootCause:        "web01 (HOST-0123456789ABCDEF)",
		ReceivedAt:       time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
	}
}
