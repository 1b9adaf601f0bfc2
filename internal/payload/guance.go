package payload

import (
	"maps"
	"slices"
	"strings"

	"github.com/problemhook/problemhook/api/v1alpha1"
)

// guanceStatuses are the values of df_status; ok is the only one that ends an
// event, and the others grade it.
var guanceStatuses = []string{"ok", "info", "warning", "error", "critical", "nodata"}

// GuanceTestEventID is the df_event_id of the test event `manager
// send-test` posts to a Guance target. Guance itself sends no test event,
// so this exact id is what marks one, as 999/99999 marks Dynatrace's.
const GuanceTestEventID = "problemhook-send-test"

// ParseGuance parses the event a Guance or TrueWatch monitor sends to a
// self-built notification target. Fields other than the documented ones are
// ignored here; they stay in the raw payload the receiver stores.
func ParseGuance(body []byte) (*v1alpha1.ProblemEventSpec, error) {
	f, err := readObject(body)
	if err != nil {
		return nil, err
	}
	f.unixSeconds("timestamp") // checked, not kept: the receiver records when it received the event
	status := f.oneOf("df_status", guanceStatuses...)
	id := f.requiredID("df_event_id")
	dimensions := guanceDimensions(f)
	spec := &v1alpha1.ProblemEventSpec{
		Source:           v1alpha1.FormatGuance,
		ProblemID:        id,
		DisplayID:        id,
		State:            guanceState(status),
		Severity:         strings.ToUpper(status),
		Title:            f.required("df_title"),
		Message:          f.str("df_message"),
		URL:              f.str("df_event_link"),
		Tags:             dimensionTags(dimensions),
		ImpactedEntities: hostEntity(dimensions),
	}
	if zone := f.str("df_workspace_name"); zone != "" {
		spec.ManagementZones = []string{zone}
	}
	if err := f.errs.err(); err != nil {
		return nil, err
	}
	spec.Test = id == GuanceTestEventID
	return bound(spec), nil
}

func guanceState(status string) v1alpha1.ProblemState {
	if status == "ok" {
		return v1alpha1.StateResolved
	}
	return v1alpha1.StateOpen
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
func hostEntity(dimensions map[string]string) []v1alpha1.ImpactedEntity {
	host := dimensions["host"]
	if host == "" {
		return nil
	}
	return []v1alpha1.ImpactedEntity{{ID: host, Name: host, Type: "HOST"}}
}
