package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// kindOrder is the order in which kinds appear: the target that receives a
// notification, the route that acts on it, the event that records it. Kinds
// not listed follow in alphabetical order.
var kindOrder = []string{"NotificationTarget", "IntegrationRoute", "ProblemEvent"}

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
