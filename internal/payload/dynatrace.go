package payload

import (
	"cmp"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// dynatraceStates are the values of {State}; a merge notification says OPEN too.
var dynatraceStates = []string{string(problemhookv1alpha1.StateOpen), string(problemhookv1alpha1.StateResolved)}

// ParseDynatrace parses the body of a Dynatrace custom webhook integration.
// The payload is a template the user wrote, so only State, ProblemID and PID
// are required; every other placeholder is used when present. The problem
// details placeholders (ProblemDetailsJSONv2, else ProblemDetailsJSON) fill
// what the plain placeholders left out.
func ParseDynatrace(body []byte) (*problemhookv1alpha1.ProblemEventSpec, error) {
	f, err := readObject(body)
	if err != nil {
		return nil, err
	}
	spec := &problemhookv1alpha1.ProblemEventSpec{
		Source:    problemhookv1alpha1.FormatDynatrace,
		State:     problemhookv1alpha1.ProblemState(f.oneOf("State", dynatraceStates...)),
		ProblemID: dynatraceID(f, "PID"),
		DisplayID: dynatraceID(f, "ProblemID"),
		Title:     f.str("ProblemTitle"),
		Message:   cmp.Or(f.str("ProblemDetailsText"), f.str("ProblemDetailsMarkdown")),
		Severity:  f.str("ProblemSeverity"),
		Impact:    f.str("ProblemImpact"),
		URL:       f.str("ProblemURL"),
	}
	spec.Tags, _ = splitList(f.str("Tags"))
	spec.ImpactedEntities, spec.ImpactedEntityCount = dynatraceEntities(f)
	merge(spec, detailsV2(f))
	merge(spec, detailsV1(f))
	// Names alone come last: the details name the same entities with their ids.
	merge(spec, entityNames(f))
	if err := f.errs.err(); err != nil {
		return nil, err
	}
	spec.Test = isDynatraceTest(spec.DisplayID, spec.ProblemID)
	return bound(spec), nil
}

// dynatraceID reads a required id, which may also arrive as a JSON number when
// the template left its placeholder unquoted; its text is the id.
func dynatraceID(f *fields, name string) string {
	raw := f.raw(name)
	switch kind := kindOf(raw); kind {
	case "number":
		return f.checkID(name, string(raw))
	case "", "string":
		return f.requiredID(name)
	default:
		f.errs.invalid(name, "got %s, want string or number", kind)
		return ""
	}
}

// isDynatraceTest recognises the notification Dynatrace sends before it saves
// an integration. Only exact values count: problem 1999 is a real problem.
func isDynatraceTest(displayID, problemID string) bool {
	return displayID == "999" && problemID == "99999" ||
		displayID == "TESTID" || problemID == "TESTID"
}

// dynatraceEntities reads the ImpactedEntities placeholder. It is JSON, but
// templates often quote it like the text placeholders, so a string holding
// the array is accepted too. It returns the entities it decoded and the
// number past maxListItems it did not.
func dynatraceEntities(f *fields) ([]problemhookv1alpha1.ImpactedEntity, int32) {
	const name = "ImpactedEntities"
	raw := f.raw(name)
	if kindOf(raw) == "string" {
		raw = nil
		if s := f.str(name); s != "" {
			raw = f.embedded(name, s, '[')
		}
	}
	if raw == nil {
		return nil, 0
	}
	var decoded list[struct {
		Entity string `json:"entity"`
		Name   string `json:"name"`
		Type   string `json:"type"`
	}]
	if !f.decode(name, raw, &decoded) {
		return nil, 0
	}
	entities := make([]problemhookv1alpha1.ImpactedEntity, 0, len(decoded.items))
	for _, e := range decoded.items {
		entities = append(entities, problemhookv1alpha1.ImpactedEntity{ID: e.Entity, Name: e.Name, Type: e.Type})
	}
	return entities, int32(decoded.more)
}

// entityNames reads the text placeholders that list impacted entities by
// name, as the entities of a spec. All are read, so that each is
// type-checked; the first that names anything wins.
func entityNames(f *fields) *problemhookv1alpha1.ProblemEventSpec {
	names := &problemhookv1alpha1.ProblemEventSpec{}
	for _, name := range []string{"ImpactedEntity", "ImpactedEntityNames", "NamesOfImpactedEntities"} {
		list, more := splitList(f.str(name))
		if len(names.ImpactedEntities) > 0 {
			continue
		}
		for _, name := range list {
			names.ImpactedEntities = append(names.ImpactedEntities, problemhookv1alpha1.ImpactedEntity{Name: name})
		}
		names.ImpactedEntityCount = int32(more)
	}
	return names
}

// merge fills the fields of spec that are still empty from details.
func merge(spec, details *problemhookv1alpha1.ProblemEventSpec) {
	if details == nil {
		return
	}
	spec.Title = cmp.Or(spec.Title, details.Title)
	spec.Severity = cmp.Or(spec.Severity, details.Severity)
	spec.Impact = cmp.Or(spec.Impact, details.Impact)
	spec.Tags = or(spec.Tags, details.Tags)
	if len(spec.ImpactedEntities) == 0 {
		spec.ImpactedEntities, spec.ImpactedEntityCount = details.ImpactedEntities, details.ImpactedEntityCount
	}
	spec.ManagementZones = or(spec.ManagementZones, details.ManagementZones)
}

// or returns the first list that is not empty.
func or[E any](lists ...[]E) []E {
	for _, list := range lists {
		if len(list) > 0 {
			return list
		}
	}
	return nil
}

// tag writes a tag the way Dynatrace shows it: key:value, or key alone.
func tag(key, value string) string {
	if value == "" {
		return key
	}
	return key + ":" + value
}

// impactLevel turns the Problems API's impact level into the webhook's: the
// API says SERVICES where the {ProblemImpact} placeholder says SERVICE.
func impactLevel(level string) string {
	if level == "SERVICES" {
		return "SERVICE"
	}
	return level
}
