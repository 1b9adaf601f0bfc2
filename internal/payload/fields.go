package payload

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// fields reads the members of a notification by their exact names (encoding/json
// would match struct fields case-insensitively) and collects every problem, so
// that one error names them all.
type fields struct {
	members map[string]json.RawMessage
	errs    FieldError
}

// readObject checks that body is a JSON object and returns its members.
func readObject(body []byte) (*fields, error) {
	if err := checkJSON(body, '{'); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotJSON, err)
	}
	f := &fields{}
	if err := json.Unmarshal(body, &f.members); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotJSON, err) // checkJSON has already refused what would fail here
	}
	return f, nil
}

// raw returns the value of the member name, or nil when it is absent or null:
// templates fill what they do not know with null.
func (f *fields) raw(name string) json.RawMessage {
	raw := f.members[name]
	if kindOf(raw) == "null" {
		return nil
	}
	return raw
}

// decode decodes raw, the value of the member name, into v and records a
// mismatched type, naming its path below name.
func (f *fields) decode(name string, raw json.RawMessage, v any) bool {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return true
	}
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		f.errs.invalid(name, "%v", err)
		return false
	}
	if typeErr.Field != "" {
		name += "." + typeErr.Field
	}
	f.errs.invalid(name, "got %s, want %s", typeErr.Value, jsonKind(typeErr.Type))
	return false
}

// jsonKind names the JSON kind that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	default:
		return "number"
	}
}

// str returns the optional string member name, "" when it is absent.
func (f *fields) str(name string) string {
	var s string
	if raw := f.raw(name); raw != nil {
		f.decode(name, raw, &s)
	}
	return s
}

// required returns the string member name and records it as missing when it
// is absent or empty: an empty value is what an unfilled placeholder leaves.
func (f *fields) required(name string) string {
	raw := f.raw(name)
	if raw == nil {
		f.errs.missing(name)
		return ""
	}
	var s string
	if f.decode(name, raw, &s) && s == "" {
		f.errs.missing(name)
	}
	return s
}

// requiredID is required for an id, which is never truncated: a cut id
// would name another problem.
func (f *fields) requiredID(name string) string {
	return f.checkID(name, f.required(name))
}

func (f *fields) checkID(name, id string) string {
	if len(id) > problemhookv1alpha1.MaxShortFieldLength {
		f.errs.invalid(name, "longer than %d bytes", problemhookv1alpha1.MaxShortFieldLength)
	}
	return id
}

// oneOf returns the required string member name, which must be one of allowed.
func (f *fields) oneOf(name string, allowed ...string) string {
	s := f.required(name)
	if s != "" && !slices.Contains(allowed, s) {
		f.errs.invalid(name, "%s is not one of %s", quoteShort(s), strings.Join(allowed, ", "))
	}
	return s
}

// unixSeconds checks that the required member name is an integer.
func (f *fields) unixSeconds(name string) {
	raw := f.raw(name)
	if raw == nil {
		f.errs.missing(name)
		return
	}
	if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
		f.errs.invalid(name, "got %s, want an integer (Unix seconds)", describe(raw))
	}
}

// embedded returns the JSON document of kind want held in s, the string value
// of the member name, or nil when s holds something else.
func (f *fields) embedded(name, s string, want json.Delim) json.RawMessage {
	if err := checkJSON([]byte(s), want); err != nil {
		f.errs.invalid(name, "not a JSON %s: %v", kindName(want), err)
		return nil
	}
	return json.RawMessage(s)
}

// describe names a value for an error message: its kind, and its text when it
// is a number.
func describe(raw json.RawMessage) string {
	kind := kindOf(raw)
	if kind == "number" {
		return kind + " " + shorten(string(raw))
	}
	return kind
}

// maxQuoted bounds what an error message repeats of a value: the receiver
// sends the message back to the sender.
const maxQuoted = 64

func shorten(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return cutString(s, maxQuoted) + "..."
}

func quoteShort(s string) string {
	return strconv.Quote(shorten(s))
}
