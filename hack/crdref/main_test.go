package main

import (
	"os"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// fixture is a small CRD with one of each thing the reference shows.
const fixture = `# A comment-only document first, as some tools write.
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    listKind: WidgetList
    plural: widgets
    shortNames: [wd]
    singular: widget
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - jsonPath: .spec.size
      name: Size
      type: integer
    - jsonPath: .spec.color
      name: Color
      priority: 1
      type: string
    schema:
      openAPIV3Schema:
        description: |-
          Widget is a test kind, served at
          /widgets/<name>.
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            description: spec of the widget.
            type: object
            required: [size, parts]
            properties:
              color:
                description: |-
                  color of the widget,
                  e.g. red | blue.
                type: string
                enum: [red, blue]
                default: red
              size:
                description: size in <unit>s, see ` + "`<unit>`" + `.
                type: integer
                format: int32
                minimum: 1
                maximum: 10
              parts:
                description: parts of the widget.
                type: array
                maxItems: 3
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  description: Part is one part.
                  type: object
                  required: [name]
                  properties:
                    name: {type: string, maxLength: 8, description: name of the part.}
                    template:
                      description: template is a batch/v1 JobTemplateSpec.
                      type: object
                      x-kubernetes-preserve-unknown-fields: true
                    extra:
                      description: extra is anything.
                      type: object
                      x-kubernetes-preserve-unknown-fields: true
                  x-kubernetes-validations:
                  - rule: has(self.template)
                    message: a part needs a template
              box:
                description: box holds it.
                type: object
                properties:
                  label: {type: string, pattern: '^[a-z|]+$', description: label on the box.}
                x-kubernetes-validations:
                - rule: self.label != 'x'
          status:
            description: status of the widget.
            type: object
            properties:
              ready: {type: boolean, description: ready is true when done.}
`

func renderFixture(t *testing.T) string {
	t.Helper()
	g := NewWithT(t)
	crds, err := decodeCRDs([]byte(fixture))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(crds).To(HaveLen(1))
	return string(render(crds, "testdata"))
}

func TestRenderTables(t *testing.T) {
	out := renderFixture(t)
	for _, tc := range []struct {
		name, block string
	}{{
		name: "kind",
		block: `## Widget

Widget is a test kind, served at /widgets/&lt;name>.

- API version: ` + "`example.com/v1`" + `
- Scope: Namespaced
- Short names: ` + "`wd`" + `

Columns of ` + "`kubectl get widgets`" + `:

| Column | Type | JSONPath | Shown |
| --- | --- | --- | --- |
| Size | integer | ` + "`.spec.size`" + ` | always |
| Color | string | ` + "`.spec.color`" + ` | with ` + "`-o wide`" + ` |
`,
	}, {
		name: "spec: required first, enum, default, bounds, array of objects, CEL rule without message",
		block: `### <a id="widget-spec"></a>Spec

spec of the widget.

| Field | Type | Required | Default | Validation | Description |
| --- | --- | --- | --- | --- | --- |
| ` + "`parts`" + ` | array of [object](#widget-spec-parts) | yes |  | max items 3; items unique by ` + "`name`" + `; each item: a part needs a template | parts of the widget. |
| ` + "`size`" + ` | integer (int32) | yes |  | minimum 1; maximum 10 | size in &lt;unit>s, see ` + "`<unit>`" + `. |
| ` + "`box`" + ` | [object](#widget-spec-box) | no |  | rule ` + "`self.label != 'x'`" + ` | box holds it. |
| ` + "`color`" + ` | string | no | ` + "`red`" + ` | one of ` + "`red`, `blue`" + ` | color of the widget, e.g. red \| blue. |
`,
	}, {
		name: "array items: description, preserve-unknown-fields",
		block: "#### <a id=\"widget-spec-parts\"></a>`spec.parts[]`" + `

Part is one part.

| Field | Type | Required | Default | Validation | Description |
| --- | --- | --- | --- | --- | --- |
| ` + "`name`" + ` | string | yes |  | max length 8 | name of the part. |
| ` + "`extra`" + ` | object (free-form, not expanded) | no |  |  | extra is anything. |
| ` + "`template`" + ` | object (batch/v1 JobTemplateSpec, not expanded) | no |  |  | template is a batch/v1 JobTemplateSpec. |
`,
	}, {
		name: "nested object: pipes escaped in a pattern",
		block: "#### <a id=\"widget-spec-box\"></a>`spec.box`" + `

| Field | Type | Required | Default | Validation | Description |
| --- | --- | --- | --- | --- | --- |
| ` + "`label`" + ` | string | no |  | pattern ` + "`^[a-z\\|]+$`" + ` | label on the box. |
`,
	}, {
		name: "status",
		block: `### <a id="widget-status"></a>Status

status of the widget.

| Field | Type | Required | Default | Validation | Description |
| --- | --- | --- | --- | --- | --- |
| ` + "`ready`" + ` | boolean | no |  |  | ready is true when done. |
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(out).To(ContainSubstring(tc.block))
		})
	}
}

func TestRenderLayout(t *testing.T) {
	g := NewWithT(t)
	out := renderFixture(t)

	g.Expect(out).To(HavePrefix("# API reference\n\n_Generated by `make manifests` (hack/crdref) from the CRDs in testdata. Do not edit"))
	// Tables follow their parent depth first, in row order; common fields are left out.
	g.Expect(headings(out)).To(Equal([]string{
		"# API reference",
		"## Widget",
		`### <a id="widget-spec"></a>Spec`,
		"#### <a id=\"widget-spec-parts\"></a>`spec.parts[]`",
		"#### <a id=\"widget-spec-box\"></a>`spec.box`",
		`### <a id="widget-status"></a>Status`,
	}))
	g.Expect(out).NotTo(ContainSubstring("`apiVersion`"))
	g.Expect(out).NotTo(ContainSubstring("`metadata`"))
}

// headings returns the Markdown headings of doc in order.
func headings(doc string) []string {
	var hs []string
	for line := range strings.Lines(doc) {
		if strings.HasPrefix(line, "#") {
			hs = append(hs, strings.TrimSuffix(line, "\n"))
		}
	}
	return hs
}

func TestSortCRDs(t *testing.T) {
	g := NewWithT(t)
	var crds []apiextensionsv1.CustomResourceDefinition
	for _, kind := range []string{"Zeta", "ProblemEvent", "Alpha", "NotificationTarget", "IntegrationRoute"} {
		var crd apiextensionsv1.CustomResourceDefinition
		crd.Spec.Names.Kind = kind
		crds = append(crds, crd)
	}
	sortCRDs(crds)
	var kinds []string
	for _, crd := range crds {
		kinds = append(kinds, crd.Spec.Names.Kind)
	}
	g.Expect(kinds).To(Equal([]string{"NotificationTarget", "IntegrationRoute", "ProblemEvent", "Alpha", "Zeta"}))
}

func TestDecodeCRDsIsStrict(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, err string
	}{{
		name: "unknown field",
		yaml: "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  grup: example.com\n",
		err:  `unknown field "grup"`,
	}, {
		name: "not a CRD",
		yaml: "apiVersion: v1\nkind: ConfigMap\n",
		err:  `document 1: want an apiextensions.k8s.io/v1 CustomResourceDefinition, got "v1" "ConfigMap"`,
	}, {
		name: "second document bad",
		yaml: "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n---\nkind: CustomResourceDefinition\n",
		err:  "document 2: ",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := decodeCRDs([]byte(tc.yaml))
			g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
		})
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{in: "a\n  b\tc", want: "a b c"},
		{in: "a | b", want: `a \| b`},
		{in: "at /hooks/<ns>/<name>", want: "at /hooks/&lt;ns>/&lt;name>"},
		{in: "`a<b` and <c>", want: "`a<b` and &lt;c>"},
		{in: "``x`<y`` <z>", want: "``x`<y`` &lt;z>"},
		{in: "unclosed ` <z>", want: "unclosed ` &lt;z>"},
		{in: "`a|b`", want: "`a\\|b`"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(text(tc.in)).To(Equal(tc.want))
		})
	}
}

// TestReferenceUpToDate fails when docs/reference.md is not what the
// generator writes for config/crd/bases.
func TestReferenceUpToDate(t *testing.T) {
	g := NewWithT(t)
	want, err := generate("../../config/crd/bases", "config/crd/bases")
	g.Expect(err).NotTo(HaveOccurred())
	got, err := os.ReadFile("../../docs/reference.md")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(got)).To(Equal(string(want)), "docs/reference.md is stale: run `make manifests`")
}
