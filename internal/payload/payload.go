// Package payload parses the notification bodies problemhook receives and
// normalises them into a ProblemEventSpec.
package payload

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// MaxDepth is how deeply arrays and objects may nest in a body. Real
// notifications nest a handful of levels; the limit keeps a hostile body
// from costing more than a real one.
const MaxDepth = 64

// MaxMembers is how many members an object may have. Real notifications
// have tens; a body of a hundred thousand short keys would cost tens of
// MiB decoded into a map, for no field the parser reads.
const MaxMembers = 1024

// ErrNotJSON is wrapped by the error returned for a body that is not exactly
// one JSON object: a syntax error, an empty body, a top-level value of another
// kind, data after the object, nesting deeper than MaxDepth, or an object
// with a duplicate key or more than MaxMembers members.
var ErrNotJSON = errors.New("not a JSON object")

// FieldError is returned for a JSON object that lacks required fields or has
// fields of the wrong type or value. Its message names every offending
// field, so that whoever wrote the notification template can fix them in one
// go.
type FieldError struct {
	// Missing are required fields that are absent, null or empty, sorted.
	Missing []string
	// Invalid are fields with a wrong type or value, each as "Field: reason", sorted.
	Invalid []string
}

// Error lists the missing fields, then the invalid ones.
func (e *FieldError) Error() string {
	var parts []string
	switch len(e.Missing) {
	case 0:
	case 1:
		parts = append(parts, "missing required field: "+e.Missing[0])
	default:
		parts = append(parts, "missing required fields: "+strings.Join(e.Missing, ", "))
	}
	for _, invalid := range e.Invalid {
		parts = append(parts, "invalid field "+invalid)
	}
	return strings.Join(parts, "; ")
}

func (e *FieldError) missing(field string) {
	e.Missing = append(e.Missing, field)
}

func (e *FieldError) invalid(field, format string, args ...any) {
	e.Invalid = append(e.Invalid, field+": "+fmt.Sprintf(format, args...))
}

// err returns e when it records anything, sorted so that the message does
// not depend on the order in which fields were read.
func (e *FieldError) err() error {
	if len(e.Missing) == 0 && len(e.Invalid) == 0 {
		return nil
	}
	slices.Sort(e.Missing)
	slices.Sort(e.Invalid)
	return e
}

// Parse parses body in the given format and keeps body itself, cut to
// MaxPayloadBytes, as the spec's payload.
func Parse(format problemhookv1alpha1.PayloadFormat, body []byte) (*problemhookv1alpha1.ProblemEventSpec, error) {
	var (
		spec *problemhookv1alpha1.ProblemEventSpec
		err  error
	)
	switch format {
	case problemhookv1alpha1.FormatDynatrace:
		spec, err = ParseDynatrace(body)
	case problemhookv1alpha1.FormatDynatraceWorkflow:
		spec, err = ParseWorkflow(body)
	case problemhookv1alpha1.FormatGuance:
		spec, err = ParseGuance(body)
	default:
		return nil, fmt.Errorf("unknown payload format %q", format)
	}
	if err != nil {
		return nil, err
	}
	spec.Payload = cutString(string(body), problemhookv1alpha1.MaxPayloadBytes)
	spec.Truncated = spec.Truncated || len(spec.Payload) < len(body)
	return spec, nil
}
