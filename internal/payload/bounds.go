package payload

import (
	"unicode/utf8"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// truncator cuts values to their bounds and remembers whether it cut anything.
type truncator struct {
	truncated bool
}

// bound cuts the strings and lists of spec to the bounds the API server
// enforces, so that a large notification is stored, flagged as truncated,
// rather than refused. It also drops empty and repeated list items. The ids
// were checked whole when they were read. spec.ImpactedEntityCount arrives
// holding the entities the parser counted past maxListItems without
// decoding them, and leaves holding all the entities the notification
// named, when the event cannot hold them.
func bound(spec *problemhookv1alpha1.ProblemEventSpec) *problemhookv1alpha1.ProblemEventSpec {
	var t truncator
	spec.Title = t.text(spec.Title, problemhookv1alpha1.MaxTitleLength)
	spec.Message = t.text(spec.Message, problemhookv1alpha1.MaxMessageLength)
	spec.URL = t.text(spec.URL, problemhookv1alpha1.MaxURLLength)
	spec.Severity = t.short(spec.Severity)
	spec.Impact = t.short(spec.Impact)
	spec.Tags = boundList(&t, spec.Tags, problemhookv1alpha1.MaxTagCount, t.short)
	spec.ImpactedEntityCount += int32(distinct(spec.ImpactedEntities, t.entity))
	if spec.ImpactedEntityCount <= problemhookv1alpha1.MaxEntityCount {
		spec.ImpactedEntityCount = 0
	}
	spec.ImpactedEntities = boundList(&t, spec.ImpactedEntities, problemhookv1alpha1.MaxEntityCount, t.entity)
	spec.ManagementZones = boundList(&t, spec.ManagementZones, problemhookv1alpha1.MaxZoneCount, t.short)
	spec.Truncated = t.truncated
	return spec
}

func (t *truncator) text(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	t.truncated = true
	return cutString(s, limit)
}

func (t *truncator) short(s string) string {
	return t.text(s, problemhookv1alpha1.MaxShortFieldLength)
}

func (t *truncator) entity(e problemhookv1alpha1.ImpactedEntity) problemhookv1alpha1.ImpactedEntity {
	return problemhookv1alpha1.ImpactedEntity{ID: t.short(e.ID), Name: t.short(e.Name), Type: t.short(e.Type)}
}

// boundList cuts each item of list, drops the empty and repeated ones, and
// keeps at most limit. Duplicates are dropped after cutting, since two long
// items can become equal, and before counting, since dropping them loses
// nothing.
func boundList[E comparable](t *truncator, list []E, limit int, cut func(E) E) []E {
	var (
		out  []E
		zero E
		seen = make(map[E]struct{}, len(list))
	)
	for _, item := range list {
		item = cut(item)
		if _, dup := seen[item]; dup || item == zero {
			continue
		}
		if len(out) == limit {
			t.truncated = true
			break
		}
		seen[item] = struct{}{}
		out = append(out, item)
	}
	return out
}

// distinct counts the items of list that boundList would keep without a limit.
func distinct[E comparable](list []E, cut func(E) E) int {
	var zero E
	seen := make(map[E]struct{}, len(list))
	for _, item := range list {
		if item = cut(item); item != zero {
			seen[item] = struct{}{}
		}
	}
	return len(seen)
}

// cutString cuts s to at most limit bytes, at the start of a rune so that the
// result stays valid UTF-8. Bytes are never fewer than the characters the API
// server counts, so the result fits either way.
func cutString(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	for limit > 0 && !utf8.RuneStart(s[limit]) {
		limit--
	}
	return s[:limit]
}
