package payload_test

import (
	"testing"

	. "github.com/onsi/gomega"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/payload"
)

func TestParseWorkflow(t *testing.T) {
	const active = `{"event.id":"-6150203450926486413_1669823466223V2","display_id":"P-2307288","event.name":"CPU saturation",
		"event.status":"ACTIVE","event.status_transition":"CREATED","event.category":"SLOWDOWN","event.start":1745403051227000000,
		"timestamp":1745403051227000000,"affected_entity_ids":["HOST-0123456789ABCDEF","SERVICE-FEDCBA9876543210"],
		"root_cause_entity_id":"HOST-0123456789ABCDEF","root_cause_entity_name":"web01","entity_tags":["env:prod"],
		"dt.davis.impact_level":"Infrastructure","dt.davis.is_duplicate":true,"maintenance.is_under_maintenance":true}`
	for _, tc := range []struct {
		name string
		body string
		want *problemhookv1alpha1.ProblemEventSpec
	}{{
		name: "the documented record: CLOSED is RESOLVED whatever the transition says",
		body: string(readTestdata(t, "workflow-closed.json")),
		want: &problemhookv1alpha1.ProblemEventSpec{
			Source: problemhookv1alpha1.FormatDynatraceWorkflow, ProblemID: "-1843743290896097469_1745403051227V2", DisplayID: "25045532",
			State: problemhookv1alpha1.StateResolved, Title: "Http monitor outage", Message: "# Http monitor outage\n\nThe problem **affects 1 entity** overall.",
			Severity: "AVAILABILITY", Tags: []string{"HealthCheck:Yes"},
			ImpactedEntities: []problemhookv1alpha1.ImpactedEntity{{ID: "HTTP_CHECK-A68D5F5B3B51255F", Type: "HTTP_CHECK"}},
		},
	}, {
		name: "ACTIVE with numeric timestamps, the root cause named, SLOWDOWN as the webhook's PERFORMANCE",
		body: active,
		want: &problemhookv1alpha1.ProblemEventSpec{
			Source: problemhookv1alpha1.FormatDynatraceWorkflow, ProblemID: "-6150203450926486413_1669823466223V2", DisplayID: "2307288",
			State: problemhookv1alpha1.StateOpen, Title: "CPU saturation", Severity: "PERFORMANCE", Impact: "INFRASTRUCTURE", Tags: []string{"env:prod"},
			ImpactedEntities: []problemhookv1alpha1.ImpactedEntity{{ID: "HOST-0123456789ABCDEF", Name: "web01", Type: "HOST"}, {ID: "SERVICE-FEDCBA9876543210", Type: "SERVICE"}},
			Duplicate:        true, UnderMaintenance: true,
		},
	}, {
		name: "reopened: the reopen time names a new occurrence",
		body: `{"event.id":"P1V2","event.name":"t","event.status":"ACTIVE","event.status_transition":"REOPENED","dt.davis.last_reopen_timestamp":"2025-04-23T11:00:00.000000000Z"}`,
		want: &problemhookv1alpha1.ProblemEventSpec{Source: problemhookv1alpha1.FormatDynatraceWorkflow, ProblemID: "P1V2", State: problemhookv1alpha1.StateOpen, Title: "t",
			ReopenedAt: "2025-04-23T11:00:00.000000000Z"},
	}, {
		name: "problemhook's own test record",
		body: `{"event.id":"` + payload.WorkflowTestEventID + `","event.name":"test","event.status":"ACTIVE"}`,
		want: &problemhookv1alpha1.ProblemEventSpec{Source: problemhookv1alpha1.FormatDynatraceWorkflow, ProblemID: payload.WorkflowTestEventID, State: problemhookv1alpha1.StateOpen, Title: "test", Test: true},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			spec, err := payload.ParseWorkflow([]byte(tc.body))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(spec).To(Equal(tc.want))
		})
	}
}

// A record that is not one names every field that is wrong.
func TestParseWorkflowFieldErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"nothing", `{}`, "missing required fields: event.id, event.name, event.status"},
		{"a status that is no problem's", `{"event.id":"P1","event.name":"t","event.status":"RESOLVED"}`,
			`invalid field event.status: "RESOLVED" is not one of ACTIVE, CLOSED`},
		{"a category that is no problem's", `{"event.id":"P1","event.name":"t","event.status":"ACTIVE","event.category":"WARNING"}`,
			`invalid field event.category: "WARNING" is not a Davis problem category`},
		{"a time that is none", `{"event.id":"P1","event.name":"t","event.status":"ACTIVE","event.start":"yesterday"}`,
			`invalid field event.start: "yesterday" is neither an RFC 3339 time nor a number`},
		{"entities that are not strings", `{"event.id":"P1","event.name":"t","event.status":"ACTIVE","affected_entity_ids":[1]}`,
			"invalid field affected_entity_ids: got number, want string"},
		{"a duplicate flag that is not one", `{"event.id":"P1","event.name":"t","event.status":"ACTIVE","dt.davis.is_duplicate":"yes"}`,
			"invalid field dt.davis.is_duplicate: got string, want bool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := payload.ParseWorkflow([]byte(tc.body))
			NewWithT(t).Expect(err).To(MatchError(tc.want))
		})
	}
}

func FuzzParseWorkflow(f *testing.F) {
	f.Add(readTestdata(f, "workflow-closed.json"))
	for _, body := range []string{
		`{"event.id":"P1","event.name":"t","event.status":"ACTIVE","event.start":1,"affected_entity_ids":["HOST-1"],"root_cause_entity_id":"HOST-2"}`,
		`{"event.id":1,"event.name":"","event.status":"OPEN","dt.davis.last_reopen_timestamp":"x"}`,
		`{}`, `[]`, ``,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, err := payload.ParseWorkflow(body)
		checkParsed(t, spec, err)
	})
}
