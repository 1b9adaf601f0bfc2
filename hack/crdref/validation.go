package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// validation lists the constraints the schema s puts on a value, in the
// order: enum, numeric bounds, lengths, item and property counts,
// uniqueness, pattern, the constraints on each item, and the messages of
// the CEL rules.
func validation(s *apiextensionsv1.JSONSchemaProps) []string {
	var c []string
	if len(s.Enum) > 0 {
		values := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			values[i] = code(jsonValue(e.Raw))
		}
		c = append(c, "one of "+strings.Join(values, ", "))
	}
	c = appendBound(c, "minimum", s.Minimum, s.ExclusiveMinimum)
	c = appendBound(c, "maximum", s.Maximum, s.ExclusiveMaximum)
	if s.MultipleOf != nil {
		c = append(c, "multiple of "+number(*s.MultipleOf))
	}
	c = appendCount(c, "min length", s.MinLength)
	c = appendCount(c, "max length", s.MaxLength)
	c = appendCount(c, "min items", s.MinItems)
	c = appendCount(c, "max items", s.MaxItems)
	c = appendCount(c, "min properties", s.MinProperties)
	c = appendCount(c, "max properties", s.MaxProperties)
	switch {
	case s.XListType != nil && *s.XListType == "map":
		c = append(c, "items unique by "+codeList(s.XListMapKeys))
	case s.UniqueItems || (s.XListType != nil && *s.XListType == "set"):
		c = append(c, "items unique")
	}
	if s.Pattern != "" {
		c = append(c, "pattern "+code(s.Pattern))
	}
	if s.Nullable {
		c = append(c, "may be null")
	}
	if !s.XIntOrString && (len(s.AllOf) > 0 || len(s.AnyOf) > 0 || len(s.OneOf) > 0 || s.Not != nil) {
		c = append(c, "further allOf/anyOf/oneOf/not constraints in the CRD")
	}
	if s.Type == "array" && s.Items != nil && s.Items.Schema != nil {
		for _, ic := range validation(s.Items.Schema) {
			c = append(c, "each item: "+ic)
		}
	}
	for _, r := range s.XValidations {
		if r.Message != "" {
			c = append(c, text(r.Message))
		} else {
			c = append(c, "rule "+code(r.Rule))
		}
	}
	return c
}

// appendBound appends a numeric bound, if set.
func appendBound(c []string, what string, v *float64, exclusive bool) []string {
	if v == nil {
		return c
	}
	if exclusive {
		what = "exclusive " + what
	}
	return append(c, what+" "+number(*v))
}

// appendCount appends a length or count bound, if set.
func appendCount(c []string, what string, v *int64) []string {
	if v == nil {
		return c
	}
	return append(c, what+" "+strconv.FormatInt(*v, 10))
}

// number formats a JSON number without exponent or trailing zeros.
func number(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// jsonValue shows a JSON value as a user writes it in YAML: a string
// without quotes (unless empty), anything else as compact JSON.
func jsonValue(raw []byte) string {
	var str string
	if err := json.Unmarshal(raw, &str); err == nil && str != "" {
		return str
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// isTrue reports whether an optional boolean is set and true.
func isTrue(b *bool) bool {
	return b != nil && *b
}
