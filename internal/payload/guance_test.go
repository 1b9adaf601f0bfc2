package payload_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/payload"
)

// problemhook's own Guance test event is known by its exact id; an id
// that only contains it is a real event.
func TestGuanceTestEvent(t *testing.T) {
	for id, want := range map[string]bool{
		payload.GuanceTestEventID:                  true,
		payload.GuanceTestEventID + "-2":           false,
		"x-" + payload.GuanceTestEventID:           false,
		strings.ToUpper(payload.GuanceTestEventID): false,
	} {
		body := fmt.Sprintf(`{"timestamp":1700000000,"df_status":"info","df_event_id":%q,"df_title":"test","df_dimension_tags":"{}"}`, id)
		spec, err := payload.ParseGuance([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if spec.Test != want {
			t.Errorf("df_event_id %q: test = %v, want %v", id, spec.Test, want)
		}
	}
}

func TestParseGuance(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *problemhookv1alpha1.ProblemEventSpec
	}{{
		name: "the example of the reference",
		body: string(readTestdata(t, "guance-warning.json")),
		want: &problemhookv1alpha1.ProblemEventSpec{
			Source:           problemhookv1alpha1.FormatGuance,
			ProblemID:        "event-xxxxxxxxxx",
			DisplayID:        "event-xxxxxxxxxx",
			State:            problemhookv1alpha1.StateOpen,
			Title:            "web001 Exist issues",
			Message:          "web001 Exist issues, nCPU usage greater than 90\n Memory usage greater than 90",
			Severity:         "WARNING",
			URL:              "https://console.guance.com/keyevents/monitorChart?xxxxxxxxxx",
			Tags:             []string{"host:web001"},
			ImpactedEntities: []problemhookv1alpha1.ImpactedEntity{{ID: "web001", Name: "web001", Type: "HOST"}},
			ManagementZones:  []string{"My Workspace"},
		},
	}, {
		name: "ok resolves the fault its df_fault_id names, the reference example's; tags are sorted by key",
		body: string(readTestdata(t, "guance-ok.json")),
		want: &problemhookv1alpha1.ProblemEventSpec{
			Source:           problemhookv1alpha1.FormatGuance,
			ProblemID:        "event-xxxxxxxxxx",
			DisplayID:        "event-xxxxxxxxxx",
			State:            problemhookv1alpha1.StateResolved,
			Title:            "web001 recovered",
			Message:          "web001 CPU usage back below 90",
			Severity:         "OK",
			StateDetail:      "ok",
			URL:              "https://console.guance.com/keyevents/monitorChart?xxxxxxxxxx",
			Tags:             []string{"cluster:prod-eu-1", "host:web001", "service:checkout"},
			ImpactedEntities: []problemhookv1alpha1.ImpactedEntity{{ID: "web001", Name: "web001", Type: "HOST"}},
			ManagementZones:  []string{"My Workspace"},
		},
	}, {
		name: "only the required fields",
		body: `{"timestamp":1625638440,"df_status":"nodata","df_event_id":"e1","df_title":"No data","df_dimension_tags":"{}"}`,
		want: &problemhookv1alpha1.ProblemEventSpec{
			Source:    problemhookv1alpha1.FormatGuance,
			ProblemID: "e1",
			DisplayID: "e1",
			State:     problemhookv1alpha1.StateOpen,
			Title:     "No data",
			Severity:  "NODATA",
		},
	}, {
		name: "a dimension without a value is a bare tag, and there is no host",
		body: `{"timestamp":0,"df_status":"critical","df_event_id":"e1","df_title":"t",
			"df_dimension_tags":"{\"region\":\"\",\"host\":\"\"}","df_workspace_name":"","Extra":[1,{"a":null}]}`,
		want: &problemhookv1alpha1.ProblemEventSpec{
			Source:    problemhookv1alpha1.FormatGuance,
			ProblemID: "e1",
			DisplayID: "e1",
			State:     problemhookv1alpha1.StateOpen,
			Title:     "t",
			Severity:  "CRITICAL",
			Tags:      []string{"host", "region"},
		},
	}, {
		name: "a repeat of an open fault is the same problem in the same state: a duplicate",
		body: `{"timestamp":1625638500,"df_status":"critical","df_event_id":"event-zzz","df_fault_id":"event-xxx","df_fault_status":"fault","df_title":"t","df_dimension_tags":"{}"}`,
		want: &problemhookv1alpha1.ProblemEventSpec{Source: problemhookv1alpha1.FormatGuance, ProblemID: "event-xxx", DisplayID: "event-xxx", State: problemhookv1alpha1.StateOpen, Title: "t", Severity: "CRITICAL"},
	}, {
		name: "a manual recovery resolves whatever df_sub_status says, and records it",
		body: `{"timestamp":1625638500,"df_status":"ok","df_sub_status":"manual_ok","df_event_id":"e2","df_fault_id":"e1","df_title":"t","df_dimension_tags":"{}","df_user_name":"ops"}`,
		want: &problemhookv1alpha1.ProblemEventSpec{Source: problemhookv1alpha1.FormatGuance, ProblemID: "e1", DisplayID: "e1", State: problemhookv1alpha1.StateResolved, Title: "t", Severity: "OK", StateDetail: "manual_ok"},
	}, {
		name: "a recovery kind as df_status, as Guance's events table lists them",
		body: `{"timestamp":1625638500,"df_status":"nodata_as_ok","df_event_id":"e2","df_fault_id":"e1","df_title":"t","df_dimension_tags":"{}"}`,
		want: &problemhookv1alpha1.ProblemEventSpec{Source: problemhookv1alpha1.FormatGuance, ProblemID: "e1", DisplayID: "e1", State: problemhookv1alpha1.StateResolved, Title: "t", Severity: "NODATA_AS_OK", StateDetail: "nodata_as_ok"},
	}, {
		name: "info is stored with severity INFO, which routes leave alone unless they name it",
		body: `{"timestamp":1625638500,"df_status":"info","df_event_id":"e3","df_title":"all well","df_dimension_tags":"{}"}`,
		want: &problemhookv1alpha1.ProblemEventSpec{Source: problemhookv1alpha1.FormatGuance, ProblemID: "e3", DisplayID: "e3", State: problemhookv1alpha1.StateOpen, Title: "all well", Severity: problemhookv1alpha1.SeverityInfo},
	}, {
		name: "the Webhook target's body: date for timestamp, workspace_name, df_event_url",
		body: `{"date":1625638440,"df_status":"error","df_event_id":"e4","df_title":"t","df_dimension_tags":"{\"host\":\"db1\"}",
			"workspace_uuid":"wksp_1","workspace_name":"Payments","df_event_url":"https://console.guance.com/keyevents/e4"}`,
		want: &problemhookv1alpha1.ProblemEventSpec{Source: problemhookv1alpha1.FormatGuance, ProblemID: "e4", DisplayID: "e4", State: problemhookv1alpha1.StateOpen, Title: "t", Severity: "ERROR",
			URL: "https://console.guance.com/keyevents/e4", Tags: []string{"host:db1"}, ImpactedEntities: []problemhookv1alpha1.ImpactedEntity{{ID: "db1", Name: "db1", Type: "HOST"}},
			ManagementZones: []string{"Payments"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			spec, err := payload.ParseGuance([]byte(tt.body))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(spec).To(Equal(tt.want))
		})
	}
}

func TestParseGuanceFieldErrors(t *testing.T) {
	const (
		timestamp  = `"timestamp":1625638440`
		status     = `"df_status":"warning"`
		eventID    = `"df_event_id":"e1"`
		title      = `"df_title":"t"`
		dimensions = `"df_dimension_tags":"{\"host\":\"web01\"}"`
	)
	object := func(members ...string) string { return "{" + strings.Join(members, ",") + "}" }
	tests := []struct {
		name string
		body string
		want string
	}{
		{"all required fields missing", `{}`, "missing required fields: df_dimension_tags, df_event_id, df_status, df_title, timestamp"},
		{"timestamp missing", object(status, eventID, title, dimensions), "missing required field: timestamp"},
		{"df_status missing", object(timestamp, eventID, title, dimensions), "missing required field: df_status"},
		{"df_event_id missing", object(timestamp, status, title, dimensions), "missing required field: df_event_id"},
		{"df_title missing", object(timestamp, status, eventID, dimensions), "missing required field: df_title"},
		{"df_dimension_tags missing", object(timestamp, status, eventID, title), "missing required field: df_dimension_tags"},
		{
			"empty strings are missing",
			object(timestamp, `"df_status":""`, `"df_event_id":""`, `"df_title":""`, `"df_dimension_tags":""`),
			"missing required fields: df_dimension_tags, df_event_id, df_status, df_title",
		},
		{
			"timestamp with a fraction",
			object(`"timestamp":1625638440.5`, status, eventID, title, dimensions),
			"invalid field timestamp: got number 1625638440.5, want an integer (Unix seconds)",
		},
		{
			"timestamp with an exponent",
			object(`"timestamp":1.6e9`, status, eventID, title, dimensions),
			"invalid field timestamp: got number 1.6e9, want an integer (Unix seconds)",
		},
		{
			"timestamp as a string",
			object(`"timestamp":"1625638440"`, status, eventID, title, dimensions),
			"invalid field timestamp: got string, want an integer (Unix seconds)",
		},
		{
			"timestamp beyond int64",
			object(`"timestamp":99999999999999999999`, status, eventID, title, dimensions),
			"invalid field timestamp: got number 99999999999999999999, want an integer (Unix seconds)",
		},
		{
			"df_status other than the documented values",
			object(timestamp, `"df_status":"WARNING"`, eventID, title, dimensions),
			`invalid field df_status: "WARNING" is not one of ok, info, warning, error, critical, nodata, nodata_ok, nodata_as_ok, manual_ok`,
		},
		{"df_status of the wrong type", object(timestamp, `"df_status":3`, eventID, title, dimensions), "invalid field df_status: got number, want string"},
		{"df_sub_status other than the documented values", object(timestamp, `"df_status":"ok"`, `"df_sub_status":"fixed"`, eventID, title, dimensions),
			`invalid field df_sub_status: "fixed" is not one of ok, nodata_ok, nodata_as_ok, manual_ok`},
		{"df_fault_id too long", object(timestamp, status, eventID, `"df_fault_id":"`+strings.Repeat("f", 257)+`"`, title, dimensions),
			"invalid field df_fault_id: longer than 256 bytes"},
		{"neither timestamp nor date", object(status, eventID, title, dimensions), "missing required field: timestamp"},
		{"df_event_id a number", object(timestamp, status, `"df_event_id":17`, title, dimensions), "invalid field df_event_id: got number, want string"},
		{
			"df_event_id too long",
			object(timestamp, status, `"df_event_id":"`+strings.Repeat("e", 257)+`"`, title, dimensions),
			"invalid field df_event_id: longer than 256 bytes",
		},
		{"df_title of the wrong type", object(timestamp, status, eventID, `"df_title":["t"]`, dimensions), "invalid field df_title: got array, want string"},
		{
			"df_dimension_tags an object rather than a string",
			object(timestamp, status, eventID, title, `"df_dimension_tags":{"host":"web01"}`),
			"invalid field df_dimension_tags: got object, want string",
		},
		{
			"df_dimension_tags not JSON",
			object(timestamp, status, eventID, title, `"df_dimension_tags":"host=web01"`),
			"invalid field df_dimension_tags: not a JSON object: invalid character 'h' looking for beginning of value at byte 1",
		},
		{
			"df_dimension_tags an array",
			object(timestamp, status, eventID, title, `"df_dimension_tags":"[]"`),
			"invalid field df_dimension_tags: not a JSON object: found array",
		},
		{
			"df_dimension_tags with a value that is not a string",
			object(timestamp, status, eventID, title, `"df_dimension_tags":"{\"cpu\":1}"`),
			"invalid field df_dimension_tags: got number, want string",
		},
		{
			"df_dimension_tags with a duplicate key",
			object(timestamp, status, eventID, title, `"df_dimension_tags":"{\"host\":\"a\",\"host\":\"b\"}"`),
			`invalid field df_dimension_tags: not a JSON object: duplicate key "host" at byte 18`,
		},
		{
			"optional text of the wrong type",
			object(timestamp, status, eventID, title, dimensions, `"df_message":{}`, `"df_workspace_name":1`),
			"invalid field df_message: got object, want string; invalid field df_workspace_name: got number, want string",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			spec, err := payload.ParseGuance([]byte(tt.body))
			g.Expect(spec).To(BeNil())
			var fieldErr *payload.FieldError
			g.Expect(errors.As(err, &fieldErr)).To(BeTrue(), "error %v is not a *FieldError", err)
			g.Expect(err).To(MatchError(tt.want))
		})
	}
}

func TestTruncationGuance(t *testing.T) {
	g := NewWithT(t)
	title := strings.Repeat("告警", 1000)
	body := fmt.Sprintf(`{"timestamp":1,"df_status":"error","df_event_id":"e1","df_title":%q,"df_dimension_tags":"{}"}`, title)
	spec, err := payload.ParseGuance([]byte(body))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.Title).To(Equal(strings.Repeat("告警", problemhookv1alpha1.MaxTitleLength/6) + "告"))
	g.Expect(spec.Truncated).To(BeTrue())
}
