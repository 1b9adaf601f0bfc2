/*
Copyright 2026 The problemhook Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"
)

func repoInputs(t *testing.T) Inputs {
	t.Helper()
	read := func(path string) []byte {
		data, err := os.ReadFile(filepath.Join("..", "..", path))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	in := Inputs{
		Install:        read("dist/install.yaml"),
		ServiceMonitor: read("config/prometheus/monitor.yaml"),
		PrometheusRule: read("config/prometheus/prometheusrule.yaml"),
	}
	for _, line := range strings.Split(string(read("Makefile")), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION ?= "); ok {
			in.Version = strings.TrimSpace(v)
		}
	}
	if in.Version == "" {
		t.Fatal("the Makefile sets no VERSION")
	}
	return in
}

// dist/chart is what the generator writes now, file for file: an edit by
// hand, or a dist/install.yaml regenerated without the chart, fails here
// as in `make lint`'s check of generated files.
func TestChartIsCurrent(t *testing.T) {
	files, err := Generate(repoInputs(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for _, f := range files {
		want[f.Path] = f.Data
	}
	dir := filepath.Join("..", "..", "dist", "chart")
	got := map[string][]byte{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		got[filepath.ToSlash(rel)], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range want {
		if !bytes.Equal(got[path], data) {
			t.Errorf("dist/chart/%s is stale: run `make chart`", path)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("dist/chart/%s is not generated: run `make chart`", path)
		}
	}
}

// The same inputs give the same bytes: maps are written sorted, files in
// path order.
func TestGenerateIsStable(t *testing.T) {
	in := repoInputs(t)
	first, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, err := Generate(in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(first, again) {
			t.Fatal("two runs on the same inputs wrote different charts")
		}
	}
}

// An object's own template delimiters (a PrometheusRule's {{ $labels.x }},
// a CRD description that shows a route's template) come out of the
// template as they went in.
func TestDelimitersAreEscaped(t *testing.T) {
	obj := map[string]any{"description": `{{ $labels.namespace }}/{{ .ProblemID | pathEscape }} and {{- x -}}`,
		"list": []any{"{{", "}}", "a {{ b }} c"}}
	text, err := marshal(obj, "")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := template.New("x").Parse(text)
	if err != nil {
		t.Fatalf("the escaped object is not a template: %v\n%s", err, text)
	}
	var out bytes.Buffer
	if err := tpl.Execute(&out, nil); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := yaml.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, obj) {
		t.Errorf("rendered back as %v, not %v", back, obj)
	}
}

// The generator refuses what would make a template wrong rather than
// write it.
func TestRefuses(t *testing.T) {
	base := repoInputs(t)
	for _, tc := range []struct {
		name      string
		old, new  string
		wantError string
	}{
		{"a flag that values set", "        - --leader-elect\n", "        - --leader-elect\n        - --event-workers=9\n",
			"the manager's argument --event-workers=9 is one that values set"},
		{"an image pinned by digest", "image: ghcr.io/problemhook/problemhook:v", "image: ghcr.io/problemhook/problemhook@sha256:0",
			"is not repository:tag"},
		{"a second Namespace", "apiVersion: v1\nkind: Namespace\n", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n---\napiVersion: v1\nkind: Namespace\n",
			"2 Namespaces"},
		{"the namespace inside a string", "        - --leader-elect\n", "        - --leader-elect\n        - --receiver-url=http://problemhook-receiver.problemhook-system.svc:9292\n",
			"names the namespace problemhook-system inside a string"},
		{"a label the chart sets", "    app.kubernetes.io/component: manager\n    app.kubernetes.io/name: problemhook\n  name: problemhook-controller-manager",
			"    app.kubernetes.io/component: manager\n    app.kubernetes.io/managed-by: kustomize\n    app.kubernetes.io/name: problemhook\n  name: problemhook-controller-manager",
			"it has the label app.kubernetes.io/managed-by"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			if !bytes.Contains(in.Install, []byte(tc.old)) {
				t.Fatalf("dist/install.yaml no longer has %q", tc.old)
			}
			in.Install = bytes.Replace(in.Install, []byte(tc.old), []byte(tc.new), 1)
			_, err := Generate(in)
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("Generate: %v, want an error with %q", err, tc.wantError)
			}
		})
	}
}
