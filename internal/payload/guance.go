package payload

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// guanceStatuses are the values of df_status: critical, error and warning
// open a fault (or repeat it), nodata opens one for missing data, info says
// nothing is abnormal, and ok (or, in Guance's events table, one of the
// recovery kinds) ends it.
var guanceStatuses = []string{"ok", "info", "warning", "error", "critical", "nodata", "nodata_ok", "nodata_as_ok", "manual_ok"}

// guanceSubStatuses are the values of df_sub_status: how a recovery came.
var guanceSubStatuses = []string{"ok", "nodata_ok", "nodata_as_ok", "manual_ok"}

// GuanceTestEventID is the df_event_id of the test event `manager
// send-test` posts to a Guance target. Guance itself sends no test event,
// so this exact id is what marks one, as 999/99999 marks Dynatrace's.
const GuanceTestEventID = "problemhook-send-test"

// ParseGuance parses the event a Guance or TrueWatch monitor sends to a
// self-built notification target, or to a Webhook target (the same event
// with the legacy date, workspace_uuid and workspace_name). Fields other
// than the documented ones are ignored here; they stay in the raw payload
// the receiver stores.
//
// The problem is the fault: df_fault_id, which a fault's repeats and its
// recovery share, or df_event_id for an event that names no fault. So an
// alert and its recovery pair, and a repeat of an open fault is a
// duplicate.
func ParseGuance(body []byte) (*problemhookv1alpha1.ProblemEventSpec, error) {
	f, err := readObject(body)
	if err != nil {
		return nil, err
	}
	// Checked, not kept: the receiver records when it received the event.
	if f.raw("timestamp") == nil && f.raw("date") != nil {
		f.unixSeconds("date")
	} else {
		f.unixSeconds("timestamp")
	}
	status := f.oneOf("df_status", guanceStatuses...)
	eventID := f.requiredID("df_event_id")
	id := f.checkID("df_fault_id", f.str("df_fault_id"))
	if id == "" {
		id = eventID
	}
	dimensions := guanceDimensions(f)
	spec := &problemhookv1alpha1.ProblemEventSpec{
		Source:           problemhookv1alpha1.FormatGuance,
		ProblemID:        id,
		DisplayID:        id,
		State:            guanceState(status),
		Severity:         strings.ToUpper(status),
		Title:            f.required("df_title"),
		Message:          f.str("df_message"),
		URL:              cmp.Or(f.str("df_event_link"), f.str("df_event_url")),
		Tags:             dimensionTags(dimensions),
		ImpactedEntities: hostEntity(dimensions),
	}
	if spec.State == problemhookv1alpha1.StateResolved {
		// Whatever df_sub_status says, ok resolves; it is recorded.
		spec.StateDetail = status
		if sub := f.str("df_sub_status"); sub != "" {
			if !slices.Contains(guanceSubStatuses, sub) {
				f.errs.invalid("df_sub_status", "%s is not one of %s", quoteShort(sub), strings.Join(guanceSubStatuses, ", "))
			}
			spec.StateDetail = sub
		}
	}
	if zone := cmp.Or(f.str("df_workspace_name"), f.str("workspace_name")); zone != "" {
		spec.ManagementZones = []string{zone}
	}
	if err := f.errs.err(); err != nil {
		return nil, err
	}
	spec.Test = eventID == GuanceTestEventID
	return bound(spec), nil
}

// guanceState is the state a df_status puts its fault in: ok and the other
// recovery kinds resolve it, anything else opens it (info with severity
// INFO, which routes leave alone unless they name it).
func guanceState(status string) problemhookv1alpha1.ProblemState {
	switch status {
	case "ok", "nodata_ok", "nodata_as_ok", "manual_ok":
		return problemhookv1alpha1.StateResolved
	}
	return problemhookv1alpha1.StateOpen
}

// guanceDimensions reads df_dimension_tags, a string that holds a JSON object
// of the dimensions the monitor grouped by.
func guanceDimensions(f *fields) map[string]string {
	const name = "df_dimension_tags"
	s := f.required(name)
	if s == "" {
		return nil
	}
	raw := f.embedded(name, s, '{')
	if raw == nil {
		return nil
	}
	var dimensions map[string]string
	f.decode(name, raw, &dimensions)
	return dimensions
}

// dimensionTags returns the dimensions as tags sorted by key, since a JSON
// object has no order to keep.
func dimensionTags(dimensions map[string]string) []string {
	var tags []string
	for _, key := range slices.Sorted(maps.Keys(dimensions)) {
		tags = append(tags, tag(key, dimensions[key]))
	}
	return tags
}

// hostEntity returns the host a monitor grouped by as the impacted entity.
func hostEntity(dimensions map[string]string) []problemhookv1alpha1.ImpactedEntity {
	host := dimensions["host"]
	if host == "" {
		return nil
	}
	return []problemhookv1alpha1.ImpactedEntity{{ID: host, Name: host, Type: "HOST"}}
}
