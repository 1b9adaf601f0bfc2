package payload

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// workflowStatuses are the values of event.status: the state is decided by
// the status, not by event.status_transition, which a closed problem's
// record may give as UPDATED.
var workflowStatuses = []string{"ACTIVE", "CLOSED"}

// workflowCategories map event.category onto the severities of the classic
// webhook's {ProblemSeverity}, so that one route matches a problem however
// it was sent; the Problems API says PERFORMANCE where Workflows say SLOWDOWN.
var workflowCategories = map[string]string{
	"AVAILABILITY":           "AVAILABILITY",
	"ERROR":                  "ERROR",
	"SLOWDOWN":               "PERFORMANCE",
	"RESOURCE_CONTENTION":    "RESOURCE_CONTENTION",
	"CUSTOM_ALERT":           "CUSTOM_ALERT",
	"MONITORING_UNAVAILABLE": "MONITORING_UNAVAILABLE",
	"INFO":                   problemhookv1alpha1.SeverityInfo,
}

// WorkflowTestEventID is the event.id of the record `manager send-test`
// posts to a DynatraceWorkflow target: Workflows send no test of their own.
const WorkflowTestEventID = "problemhook-send-test"

// ParseWorkflow parses a Dynatrace Workflows problem record, the
// dt.davis.problems record that `{{ event() | to_json }}` posts from an HTTP
// Request action, into the problem the classic webhook would have given:
// event.id is the problem id (the Problems API's problemId, the webhook's
// {PID}), display_id the display id without its P-, event.status ACTIVE is
// OPEN and CLOSED is RESOLVED. Timestamps may be ISO strings or numbers.
func ParseWorkflow(body []byte) (*problemhookv1alpha1.ProblemEventSpec, error) {
	f, err := readObject(body)
	if err != nil {
		return nil, err
	}
	status := f.oneOf("event.status", workflowStatuses...)
	state := problemhookv1alpha1.StateOpen
	if status == "CLOSED" {
		state = problemhookv1alpha1.StateResolved
	}
	spec := &problemhookv1alpha1.ProblemEventSpec{
		Source:    problemhookv1alpha1.FormatDynatraceWorkflow,
		ProblemID: f.requiredID("event.id"),
		DisplayID: strings.TrimPrefix(f.checkID("display_id", f.str("display_id")), "P-"),
		State:     state,
		Title:     f.required("event.name"),
		Message:   f.str("event.description"),
		Impact:    strings.ToUpper(f.str("dt.davis.impact_level")),
		Tags:      f.strings("entity_tags"),
	}
	if category := f.str("event.category"); category != "" {
		severity, ok := workflowCategories[category]
		if !ok {
			f.errs.invalid("event.category", "%s is not a Davis problem category", quoteShort(category))
		}
		spec.Severity = severity
	}
	for _, name := range []string{"event.start", "event.end", "timestamp"} {
		f.timestamp(name)
	}
	if reopened := f.timestamp("dt.davis.last_reopen_timestamp"); reopened != "" {
		spec.ReopenedAt = reopened
	}
	spec.Duplicate = f.boolean("dt.davis.is_duplicate")
	spec.UnderMaintenance = f.boolean("maintenance.is_under_maintenance")
	spec.ImpactedEntities = workflowEntities(f)
	if err := f.errs.err(); err != nil {
		return nil, err
	}
	spec.Test = spec.ProblemID == WorkflowTestEventID
	return bound(spec), nil
}

// workflowEntities are the affected entities, and the root cause entity
// when it is not among them, each typed by its id's prefix (HOST-…).
func workflowEntities(f *fields) []problemhookv1alpha1.ImpactedEntity {
	var out []problemhookv1alpha1.ImpactedEntity
	seen := map[string]bool{}
	add := func(id, name string) {
		if id == "" || seen[id] {
			return
		}
		seen[id] = true
		typ, _, _ := strings.Cut(id, "-")
		out = append(out, problemhookv1alpha1.ImpactedEntity{ID: id, Name: name, Type: typ})
	}
	rootID, rootName := f.str("root_cause_entity_id"), f.str("root_cause_entity_name")
	for _, id := range f.strings("affected_entity_ids") {
		name := ""
		if id == rootID {
			name = rootName
		}
		add(id, name)
	}
	add(rootID, rootName)
	return out
}

// strings reads an optional array of strings, at most maxListItems of it.
func (f *fields) strings(name string) []string {
	var out list[string]
	if raw := f.raw(name); raw != nil {
		f.decode(name, raw, &out)
	}
	return out.items
}

// boolean reads an optional boolean.
func (f *fields) boolean(name string) bool {
	var b bool
	if raw := f.raw(name); raw != nil {
		f.decode(name, raw, &b)
	}
	return b
}

// timestamp checks an optional timestamp, an RFC 3339 string or a number
// (Grail's nanoseconds, or milliseconds), and returns its text, "" when absent.
func (f *fields) timestamp(name string) string {
	raw := f.raw(name)
	switch kindOf(raw) {
	case "":
		return ""
	case "number":
		if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
			f.errs.invalid(name, "got number %s, want an integer", shorten(string(raw)))
		}
		return string(raw)
	case "string":
		var s string
		_ = json.Unmarshal(raw, &s)
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return s
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			f.errs.invalid(name, "%s is neither an RFC 3339 time nor a number", quoteShort(s))
		}
		return s
	default:
		f.errs.invalid(name, "got %s, want a time (string or number)", kindOf(raw))
		return ""
	}
}
