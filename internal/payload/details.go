package payload

import (
	"cmp"
	"strings"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// problemV2 is the part of a Problems API v2 problem, as the
// {ProblemDetailsJSONv2} placeholder renders it, that a ProblemEvent keeps.
// The problem's ids and status are not read: the required placeholders give them.
type problemV2 struct {
	Title            string         `json:"title"`
	ImpactLevel      string         `json:"impactLevel"`
	SeverityLevel    string         `json:"severityLevel"`
	ImpactedEntities list[entityV2] `json:"impactedEntities"`
	AffectedEntities list[entityV2] `json:"affectedEntities"`
	EntityTags       list[struct {
		Key                  string `json:"key"`
		Value                string `json:"value"`
		StringRepresentation string `json:"stringRepresentation"`
	}] `json:"entityTags"`
	ManagementZones list[struct {
		Name string `json:"name"`
	}] `json:"managementZones"`
}

type entityV2 struct {
	EntityID struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"entityId"`
	Name string `json:"name"`
}

// problemV1 is the part of a Problems API v1 problem, as the
// {ProblemDetailsJSON} placeholder renders it, that a ProblemEvent keeps. Its
// displayName is the display id (P-1234), not a title.
type problemV1 struct {
	ImpactLevel            string `json:"impactLevel"`
	SeverityLevel          string `json:"severityLevel"`
	TagsOfAffectedEntities list[struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}] `json:"tagsOfAffectedEntities"`
	RankedImpacts list[struct {
		EntityID   string `json:"entityId"`
		EntityName string `json:"entityName"`
	}] `json:"rankedImpacts"`
}

// detailsV2 reads {ProblemDetailsJSONv2} into the fields of a spec it can fill,
// or returns nil when it is absent or malformed.
func detailsV2(f *fields) *problemhookv1alpha1.ProblemEventSpec {
	var p problemV2
	if !decodeDetails(f, "ProblemDetailsJSONv2", &p) {
		return nil
	}
	details := &problemhookv1alpha1.ProblemEventSpec{
		Title:    p.Title,
		Severity: p.SeverityLevel,
		Impact:   impactLevel(p.ImpactLevel),
	}
	for _, t := range p.EntityTags.items {
		details.Tags = append(details.Tags, cmp.Or(t.StringRepresentation, tag(t.Key, t.Value)))
	}
	// Impacted entities are what users notice; the affected ones, where
	// Dynatrace detected the problem, stand in when none is impacted yet.
	entities := p.ImpactedEntities
	if len(entities.items) == 0 {
		entities = p.AffectedEntities
	}
	for _, e := range entities.items {
		details.ImpactedEntities = append(details.ImpactedEntities,
			problemhookv1alpha1.ImpactedEntity{ID: e.EntityID.ID, Name: e.Name, Type: e.EntityID.Type})
	}
	details.ImpactedEntityCount = int32(entities.more)
	for _, z := range p.ManagementZones.items {
		details.ManagementZones = append(details.ManagementZones, z.Name)
	}
	return details
}

// detailsV1 reads {ProblemDetailsJSON} into the fields of a spec it can fill,
// or returns nil when it is absent or malformed.
func detailsV1(f *fields) *problemhookv1alpha1.ProblemEventSpec {
	var p problemV1
	if !decodeDetails(f, "ProblemDetailsJSON", &p) {
		return nil
	}
	details := &problemhookv1alpha1.ProblemEventSpec{
		Severity: p.SeverityLevel,
		Impact:   impactLevel(p.ImpactLevel),
	}
	for _, t := range p.TagsOfAffectedEntities.items {
		details.Tags = append(details.Tags, tag(t.Key, t.Value))
	}
	for _, e := range p.RankedImpacts.items {
		details.ImpactedEntities = append(details.ImpactedEntities,
			problemhookv1alpha1.ImpactedEntity{ID: e.EntityID, Name: e.EntityName, Type: entityType(e.EntityID)})
	}
	details.ImpactedEntityCount = int32(p.RankedImpacts.more)
	return details
}

// decodeDetails decodes the optional object member name into v.
func decodeDetails(f *fields, name string, v any) bool {
	raw := f.raw(name)
	return raw != nil && f.decode(name, raw, v)
}

// entityType derives an entity's type from its id: Dynatrace ids are the type,
// a dash, and a hex number, as in HOST-0123456789ABCDEF.
func entityType(id string) string {
	entityType, _, found := strings.Cut(id, "-")
	if !found {
		return ""
	}
	return entityType
}
