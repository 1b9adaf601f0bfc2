// Command crdref writes a Markdown reference of the fields of the
// CustomResourceDefinitions in a directory. `make manifests` runs it after
// controller-gen, so the reference always describes the CRDs as generated:
//
//	go run ./hack/crdref -crds config/crd/bases -out docs/reference.md
//
// Each kind gets its description, API version, names and printer columns,
// then one table per object level (spec, each nested object, each array's
// items; the same for status). Rows list required fields first, then the
// optional ones, each group in alphabetical order: YAML maps do not keep the
// order in which the Go types declare fields, and "what must I set" is the
// first question a reader has.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// kindOrder is the order in which kinds appear: the target that receives a
// notification, the route that acts on it, the event that records it. Kinds
// not listed follow in alphabetical order.
var kindOrder = []string{"NotificationTarget", "IntegrationRoute", "ProblemEvent"}

// skippedFields are the top-level fields every kind has; the reference
// describes only what is particular to each kind.
var skippedFields = []string{"apiVersion", "kind", "metadata"}

// apiTypeInDescription finds an API type named in a description, such as
// "batch/v1 JobTemplateSpec", to say what an unexpanded object holds.
var apiTypeInDescription = regexp.MustCompile(`\b((?:[a-z0-9.-]+/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?) ([A-Z][A-Za-z0-9]*)\b`)

func main() {
	crds := flag.String("crds", "config/crd/bases", "directory of the CRD YAML files to describe")
	out := flag.String("out", "docs/reference.md", "Markdown file to write")
	flag.Parse()
	if err := run(*crds, *out); err != nil {
		fmt.Fprintln(os.Stderr, "crdref:", err)
		os.Exit(1)
	}
}

// run writes the reference of the CRDs in dir to out.
func run(dir, out string) error {
	doc, err := generate(dir, filepath.ToSlash(filepath.Clean(dir)))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("creating the directory of %s: %w", out, err)
	}
	if err := os.WriteFile(out, doc, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}

// generate reads the CRDs in dir and renders their reference; source is how
// the header names dir.
func generate(dir, source string) ([]byte, error) {
	crds, err := loadCRDs(dir)
	if err != nil {
		return nil, err
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("no CustomResourceDefinitions in %s", dir)
	}
	return render(crds, source), nil
}

// loadCRDs decodes every .yaml and .yml file in dir, each of which may hold
// several documents, and returns the CRDs in the order of kindOrder.
func loadCRDs(dir string) ([]apiextensionsv1.CustomResourceDefinition, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing CRDs: %w", err)
	}
	var crds []apiextensionsv1.CustomResourceDefinition
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading CRD file: %w", err)
		}
		decoded, err := decodeCRDs(data)
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", path, err)
		}
		crds = append(crds, decoded...)
	}
	sortCRDs(crds)
	return crds, nil
}

// decodeCRDs strictly decodes the CRDs of a YAML stream: an unknown field or
// a document that is not a CustomResourceDefinition is an error, so that the
// reference never silently leaves something out.
func decodeCRDs(data []byte) ([]apiextensionsv1.CustomResourceDefinition, error) {
	var crds []apiextensionsv1.CustomResourceDefinition
	for i, doc := range splitDocuments(data) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if gvk := crd.GroupVersionKind(); gvk != apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition") {
			return nil, fmt.Errorf("document %d: want an %s CustomResourceDefinition, got %q %q",
				i+1, apiextensionsv1.SchemeGroupVersion, crd.APIVersion, crd.Kind)
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

// splitDocuments splits a YAML stream at its "---" lines and drops the
// documents that hold nothing but blank lines and comments.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	content := false
	flush := func() {
		if content {
			docs = append(docs, cur)
		}
		cur, content = nil, false
	}
	for line := range bytes.Lines(data) {
		trimmed := bytes.TrimSpace(line)
		if bytes.Equal(bytes.TrimRight(line, " \t\r\n"), []byte("---")) {
			flush()
			continue
		}
		if len(trimmed) > 0 && trimmed[0] != '#' {
			content = true
		}
		cur = append(cur, line...)
	}
	flush()
	return docs
}

// sortCRDs orders CRDs by kindOrder, then by kind and group.
func sortCRDs(crds []apiextensionsv1.CustomResourceDefinition) {
	rank := func(kind string) int {
		if i := slices.Index(kindOrder, kind); i >= 0 {
			return i
		}
		return len(kindOrder)
	}
	slices.SortStableFunc(crds, func(a, b apiextensionsv1.CustomResourceDefinition) int {
		if d := rank(a.Spec.Names.Kind) - rank(b.Spec.Names.Kind); d != 0 {
			return d
		}
		if c := strings.Compare(a.Spec.Names.Kind, b.Spec.Names.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Spec.Group, b.Spec.Group)
	})
}

// render writes the reference of crds, already in order.
func render(crds []apiextensionsv1.CustomResourceDefinition, source string) []byte {
	var b strings.Builder
	b.WriteString("# API reference\n\n")
	fmt.Fprintf(&b, "_Generated by `make manifests` (hack/crdref) from the CRDs in %s. Do not edit: change the API types and their markers, then run `make manifests`._\n\n", source)
	b.WriteString("Each table lists the fields of one object: required fields first, then optional ones, each in alphabetical order. ")
	b.WriteString("`[]` in a path stands for every item of an array.\n\n")
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			heading, anchor := versionHeading(&crd, v.Name)
			fmt.Fprintf(&b, "- [%s](#%s)\n", heading, anchor)
		}
	}
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			writeVersion(&b, &crd, &v)
		}
	}
	return []byte(b.String())
}

// writeVersion writes the section of one version of a kind.
func writeVersion(b *strings.Builder, crd *apiextensionsv1.CustomResourceDefinition, v *apiextensionsv1.CustomResourceDefinitionVersion) {
	heading, anchor := versionHeading(crd, v.Name)
	var root apiextensionsv1.JSONSchemaProps
	if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
		root = *v.Schema.OpenAPIV3Schema
	}

	fmt.Fprintf(b, "\n## %s\n\n", heading)
	if root.Description != "" {
		fmt.Fprintf(b, "%s\n\n", text(root.Description))
	}
	fmt.Fprintf(b, "- API version: %s\n", code(crd.Spec.Group+"/"+v.Name))
	fmt.Fprintf(b, "- Scope: %s\n", crd.Spec.Scope)
	if names := crd.Spec.Names.ShortNames; len(names) > 0 {
		fmt.Fprintf(b, "- Short names: %s\n", codeList(names))
	}
	if cats := crd.Spec.Names.Categories; len(cats) > 0 {
		fmt.Fprintf(b, "- Categories: %s\n", codeList(cats))
	}
	if v.Deprecated {
		msg := "yes"
		if v.DeprecationWarning != nil {
			msg = text(*v.DeprecationWarning)
		}
		fmt.Fprintf(b, "- Deprecated: %s\n", msg)
	}
	if !v.Served {
		b.WriteString("- Not served\n")
	}
	if c := validation(&root); len(c) > 0 {
		fmt.Fprintf(b, "- Validation: %s\n", strings.Join(c, "; "))
	}

	writeColumns(b, crd.Spec.Names.Plural, v.AdditionalPrinterColumns)

	// spec first and status last, as in every Kubernetes kind; anything else
	// in between.
	var sections []string
	for _, name := range sortedNames(root.Properties) {
		if !slices.Contains(skippedFields, name) && name != "spec" && name != "status" {
			sections = append(sections, name)
		}
	}
	if _, ok := root.Properties["spec"]; ok {
		sections = slices.Insert(sections, 0, "spec")
	}
	if _, ok := root.Properties["status"]; ok {
		sections = append(sections, "status")
	}
	for _, name := range sections {
		s := root.Properties[name]
		fmt.Fprintf(b, "\n### <a id=\"%s\"></a>%s\n\n", slug(anchor, name), strings.ToUpper(name[:1])+name[1:])
		if s.Description != "" {
			fmt.Fprintf(b, "%s\n\n", text(s.Description))
		}
		if slices.Contains(root.Required, name) {
			fmt.Fprintf(b, "%s is required.\n\n", code(name))
		}
		if c := validation(&s); len(c) > 0 {
			fmt.Fprintf(b, "Validation: %s\n\n", strings.Join(c, "; "))
		}
		if len(s.Properties) == 0 {
			fmt.Fprintf(b, "Type: %s\n", typeName(&s, anchor, name))
			continue
		}
		writeTable(b, anchor, name, &s)
		writeNested(b, anchor, name, &s)
	}
}

// versionHeading returns the heading of the section of a version of a kind,
// the kind alone unless the CRD has several versions, and its id, which is
// also the prefix of the ids of its tables.
func versionHeading(crd *apiextensionsv1.CustomResourceDefinition, version string) (heading, anchor string) {
	heading = crd.Spec.Names.Kind
	if len(crd.Spec.Versions) > 1 {
		heading += " " + version
	}
	return heading, strings.ToLower(strings.ReplaceAll(heading, " ", "-"))
}

// writeColumns writes the printer columns of a version.
func writeColumns(b *strings.Builder, plural string, cols []apiextensionsv1.CustomResourceColumnDefinition) {
	if len(cols) == 0 {
		return
	}
	described := slices.ContainsFunc(cols, func(c apiextensionsv1.CustomResourceColumnDefinition) bool { return c.Description != "" })
	fmt.Fprintf(b, "\nColumns of `kubectl get %s`:\n\n", plural)
	b.WriteString("| Column | Type | JSONPath | Shown |")
	if described {
		b.WriteString(" Description |")
	}
	b.WriteString("\n| --- | --- | --- | --- |")
	if described {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, c := range cols {
		typ := c.Type
		if c.Format != "" {
			typ += " (" + c.Format + ")"
		}
		shown := "always"
		if c.Priority > 0 {
			shown = "with `-o wide`"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |", cell(c.Name), typ, code(c.JSONPath), shown)
		if described {
			fmt.Fprintf(b, " %s |", text(c.Description))
		}
		b.WriteString("\n")
	}
}

// writeNested writes, depth first and in row order, the tables of the
// objects nested in the object s at path.
func writeNested(b *strings.Builder, anchor, path string, s *apiextensionsv1.JSONSchemaProps) {
	for _, name := range fieldOrder(s) {
		f := s.Properties[name]
		childPath, child := expandable(path+"."+name, &f)
		if child == nil {
			continue
		}
		fmt.Fprintf(b, "\n#### <a id=\"%s\"></a>%s\n\n", slug(anchor, childPath), code(childPath))
		// A field's row shows its description; an array's items have their own.
		if strings.HasSuffix(childPath, "[]") && child.Description != "" {
			fmt.Fprintf(b, "%s\n\n", text(child.Description))
		}
		writeTable(b, anchor, childPath, child)
		writeNested(b, anchor, childPath, child)
	}
}

// expandable follows the arrays and maps of the field s at path to the
// object whose fields get a table of their own, if any, and returns that
// object and its path.
func expandable(path string, s *apiextensionsv1.JSONSchemaProps) (string, *apiextensionsv1.JSONSchemaProps) {
	switch {
	case len(s.Properties) > 0:
		return path, s
	case s.Type == "array" && s.Items != nil && s.Items.Schema != nil:
		return expandable(path+"[]", s.Items.Schema)
	case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
		return expandable(path+".*", s.AdditionalProperties.Schema)
	}
	return "", nil
}

// writeTable writes the table of the fields of the object s at path.
func writeTable(b *strings.Builder, anchor, path string, s *apiextensionsv1.JSONSchemaProps) {
	b.WriteString("| Field | Type | Required | Default | Validation | Description |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, name := range fieldOrder(s) {
		b.WriteString(row(anchor, path, name, s))
		b.WriteString("\n")
	}
}

// row is the table row of the field name of the object s at path.
func row(anchor, path, name string, s *apiextensionsv1.JSONSchemaProps) string {
	f := s.Properties[name]
	required := "no"
	if slices.Contains(s.Required, name) {
		required = "yes"
	}
	def := ""
	if f.Default != nil {
		def = code(jsonValue(f.Default.Raw))
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s |",
		code(name), typeName(&f, anchor, path+"."+name), required, def,
		strings.Join(validation(&f), "; "), text(f.Description))
}

// fieldOrder lists the fields of s: required ones first, then the optional
// ones, each in alphabetical order.
func fieldOrder(s *apiextensionsv1.JSONSchemaProps) []string {
	names := sortedNames(s.Properties)
	slices.SortStableFunc(names, func(a, b string) int {
		ra, rb := slices.Contains(s.Required, a), slices.Contains(s.Required, b)
		switch {
		case ra && !rb:
			return -1
		case rb && !ra:
			return 1
		}
		return 0
	})
	return names
}

// sortedNames returns the keys of props in alphabetical order.
func sortedNames(props map[string]apiextensionsv1.JSONSchemaProps) []string {
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// typeName describes the type of s, the schema at path, linking an object
// to the table of its fields.
func typeName(s *apiextensionsv1.JSONSchemaProps, anchor, path string) string {
	switch {
	case s.XIntOrString:
		return "integer or string"
	case s.Type == "array":
		if s.Items == nil || s.Items.Schema == nil {
			return "array"
		}
		return "array of " + typeName(s.Items.Schema, anchor, path+"[]")
	case len(s.Properties) > 0:
		t := fmt.Sprintf("[object](#%s)", slug(anchor, path))
		if isTrue(s.XPreserveUnknownFields) {
			t += " (unknown fields kept)"
		}
		return t
	case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
		return "map of string to " + typeName(s.AdditionalProperties.Schema, anchor, path+".*")
	case s.XEmbeddedResource:
		return "object (an embedded Kubernetes object)"
	case isTrue(s.XPreserveUnknownFields):
		what := "free-form"
		if m := apiTypeInDescription.FindStringSubmatch(s.Description); m != nil {
			what = m[1] + " " + m[2]
		}
		return "object (" + what + ", not expanded)"
	case s.Type == "object":
		return "object (no fields)"
	}
	t := s.Type
	if t == "" {
		t = "any"
	}
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	return t
}

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

// slug is the HTML id of the table of the object at path of a kind.
func slug(anchor, path string) string {
	var b strings.Builder
	b.WriteString(anchor)
	dash := true
	for _, r := range strings.ToLower(path) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}

// codeList formats each of values as code, separated by commas.
func codeList(values []string) string {
	codes := make([]string, len(values))
	for i, v := range values {
		codes[i] = code(v)
	}
	return strings.Join(codes, ", ")
}

// code formats s as a Markdown code span that is safe in a table cell.
func code(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + cell(s) + fence
}

// cell escapes the pipes of s, which would otherwise end a table cell,
// even inside a code span.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// text makes a description one line of Markdown that is safe in a table
// cell: whitespace collapsed, pipes escaped, and "<" outside code spans
// escaped so that placeholders such as <name> are not taken for HTML.
func text(s string) string {
	s = cell(strings.Join(strings.Fields(s), " "))
	var b strings.Builder
	for s != "" {
		i := strings.IndexAny(s, "<`")
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		if s[0] == '<' {
			b.WriteString("&lt;")
			s = s[1:]
			continue
		}
		// A run of n backticks opens a code span that the next run of
		// exactly n backticks closes; without one it is literal text.
		n := len(s) - len(strings.TrimLeft(s, "`"))
		fence := s[:n]
		end := closingFence(s[n:], n)
		if end < 0 {
			b.WriteString(fence)
			s = s[n:]
			continue
		}
		b.WriteString(s[:n+end+n])
		s = s[n+end+n:]
	}
	return b.String()
}

// closingFence returns the index in s of the first run of exactly n
// backticks, or -1.
func closingFence(s string, n int) int {
	for i := 0; i < len(s); {
		if s[i] != '`' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] == '`' {
			j++
		}
		if j-i == n {
			return i
		}
		i = j
	}
	return -1
}
