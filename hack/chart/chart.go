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
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Inputs are what the chart is derived from.
type Inputs struct {
	// Version is the chart's version and appVersion.
	Version string
	// Install is dist/install.yaml; ServiceMonitor and PrometheusRule are
	// config/prometheus's, which dist/install.yaml leaves out.
	Install, ServiceMonitor, PrometheusRule []byte
}

// File is one file of the chart, its path relative to the chart's
// directory, with forward slashes.
type File struct {
	Path string
	Data []byte
}

var (
	//go:embed helpers.tpl
	helpers []byte
	//go:embed notes.txt
	notes []byte
)

// Sentinels stand, in an object before it is written as YAML, where the
// template puts an expression or a block; none holds a brace, so escaping
// the object's own braces leaves them as they are.
const (
	tokNamespace  = "__chart_namespace__"
	tokReplicas   = "__chart_replicas__"
	tokImage      = "__chart_image__"
	tokPullPolicy = "__chart_pull_policy__"
	tokResources  = "__chart_resources__"
	tokArgs       = "__chart_args__"
	tokLabels     = "__chart_labels__"
	tokKeep       = "__chart_keep__"
	tokEndpoints  = "__chart_endpoints__"
)

// helmLabels are the labels problemhook.labels adds to every object.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

// chartFlags are the manager flags that values set: dist/install.yaml must
// not pass them too.
var chartFlags = []string{"--metrics-secure", "--default-service-account", "--allow-privileged-jobs",
	"--egress-allow-cidrs", "--egress-deny-cidrs", "--receiver-max-body-bytes", "--receiver-max-inflight",
	"--receiver-max-bytes-inflight", "--event-workers", "--job-pod-start-timeout"}

// placement is where an object's template goes, and the value that
// guards it.
type placement struct{ dir, guard string }

var placements = map[string]placement{
	"Namespace":                        {"", ".Values.namespace.create"},
	"CustomResourceDefinition":         {"crd", ".Values.crds.enabled"},
	"ServiceAccount":                   {"rbac", ""},
	"Role":                             {"rbac", ""},
	"ClusterRole":                      {"rbac", ""},
	"RoleBinding":                      {"rbac", ""},
	"ClusterRoleBinding":               {"rbac", ""},
	"Deployment":                       {"manager", ""},
	"Service":                          {"manager", ""},
	"PodDisruptionBudget":              {"manager", ".Values.podDisruptionBudget.enabled"},
	"NetworkPolicy":                    {"manager", ".Values.networkPolicy.enabled"},
	"ValidatingAdmissionPolicy":        {"admission", ".Values.admissionPolicies.enabled"},
	"ValidatingAdmissionPolicyBinding": {"admission", ".Values.admissionPolicies.enabled"},
	"FlowSchema":                       {"priority", ".Values.flowSchema.enabled"},
	"ServiceMonitor":                   {"prometheus", ".Values.metrics.serviceMonitor.enabled"},
	"PrometheusRule":                   {"prometheus", ".Values.metrics.prometheusRule.enabled"},
}

// Generate returns the files of the chart, sorted by path.
func Generate(in Inputs) ([]File, error) {
	objs, err := decode(in.Install)
	if err != nil {
		return nil, fmt.Errorf("reading the install manifest: %w", err)
	}
	ns, err := namespaceOf(objs)
	if err != nil {
		return nil, err
	}
	var d *defaults
	files := []File{}
	add := func(source string, obj map[string]any) error {
		f, err := objectTemplate(source, obj, ns)
		if err != nil {
			return fmt.Errorf("%s %s: %w", kindOf(obj), nameOf(obj), err)
		}
		files = append(files, f)
		return nil
	}
	for _, obj := range objs {
		if kindOf(obj) == "Deployment" {
			if d != nil {
				return nil, fmt.Errorf("more than one Deployment in the install manifest")
			}
			if d, err = managerDeployment(obj); err != nil {
				return nil, fmt.Errorf("the Deployment %s: %w", nameOf(obj), err)
			}
		}
		if err := add("dist/install.yaml", obj); err != nil {
			return nil, err
		}
	}
	if d == nil {
		return nil, fmt.Errorf("no Deployment in the install manifest")
	}
	for _, m := range []struct {
		file, kind string
		data       []byte
	}{
		{"config/prometheus/monitor.yaml", "ServiceMonitor", in.ServiceMonitor},
		{"config/prometheus/prometheusrule.yaml", "PrometheusRule", in.PrometheusRule},
	} {
		read, err := decode(m.data)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", m.file, err)
		}
		if len(read) != 1 || kindOf(read[0]) != m.kind {
			return nil, fmt.Errorf("%s holds no single %s", m.file, m.kind)
		}
		if err := add(m.file, read[0]); err != nil {
			return nil, err
		}
	}

	ps := params(*d)
	values, err := valuesYAML(ps)
	if err != nil {
		return nil, err
	}
	schema, err := schemaJSON(ps)
	if err != nil {
		return nil, err
	}
	files = append(files,
		File{"Chart.yaml", chartYAML(in.Version)},
		File{"values.yaml", values},
		File{"values.schema.json", schema},
		File{"templates/_helpers.tpl", helpers},
		File{"templates/NOTES.txt", notes},
	)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for i := 1; i < len(files); i++ {
		if files[i].Path == files[i-1].Path {
			return nil, fmt.Errorf("two objects would be written to %s", files[i].Path)
		}
	}
	return files, nil
}

func chartYAML(version string) []byte {
	return []byte(`# Generated by hack/chart (make chart): do not edit.
apiVersion: v2
name: problemhook
description: >-
  A Kubernetes operator that turns Dynatrace and Guance problem notifications
  into ProblemEvents and runs Jobs, SMS, DingTalk and HTTP actions for them.
type: application
version: ` + version + `
appVersion: "` + version + `"
# ValidatingAdmissionPolicy is GA (admissionregistration.k8s.io/v1) since 1.30.
kubeVersion: ">= 1.30.0-0"
home: https://github.com/problemhook/problemhook
sources:
- https://github.com/problemhook/problemhook
`)
}

var separator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decode reads the objects of a multi-document YAML stream.
func decode(data []byte) ([]map[string]any, error) {
	var objs []map[string]any
	for _, doc := range separator.Split(string(data), -1) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, err
		}
		if obj == nil {
			continue
		}
		if kindOf(obj) == "" || nameOf(obj) == "" {
			return nil, fmt.Errorf("an object without kind or name: %.80q", doc)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

func kindOf(obj map[string]any) string {
	k, _ := obj["kind"].(string)
	return k
}

func metadata(obj map[string]any) map[string]any {
	m, _ := obj["metadata"].(map[string]any)
	if m == nil {
		m = map[string]any{}
		obj["metadata"] = m
	}
	return m
}

func nameOf(obj map[string]any) string {
	n, _ := metadata(obj)["name"].(string)
	return n
}

// stringMap returns the map at key of m, made when it is missing.
func stringMap(m map[string]any, key string) map[string]any {
	s, _ := m[key].(map[string]any)
	if s == nil {
		s = map[string]any{}
		m[key] = s
	}
	return s
}

// namespaceOf returns the name of the install manifest's one Namespace,
// which the chart's objects take from the release instead.
func namespaceOf(objs []map[string]any) (string, error) {
	var names []string
	for _, obj := range objs {
		if kindOf(obj) == "Namespace" {
			names = append(names, nameOf(obj))
		}
	}
	if len(names) != 1 {
		return "", fmt.Errorf("the install manifest has %d Namespaces, not one", len(names))
	}
	return names[0], nil
}

// managerDeployment returns the values the manager Deployment has, and
// puts sentinels where values replace them.
func managerDeployment(dep map[string]any) (*defaults, error) {
	spec := stringMap(dep, "spec")
	var d defaults
	replicas, ok := spec["replicas"].(float64)
	if !ok || replicas != float64(int64(replicas)) {
		return nil, fmt.Errorf("spec.replicas is not a number")
	}
	d.replicas = int64(replicas)
	spec["replicas"] = tokReplicas

	podSpec := stringMap(stringMap(spec, "template"), "spec")
	containers, _ := podSpec["containers"].([]any)
	var c map[string]any
	for _, item := range containers {
		if m, ok := item.(map[string]any); ok && m["name"] == "manager" {
			c = m
		}
	}
	if c == nil {
		return nil, fmt.Errorf("no container named manager")
	}

	image, _ := c["image"].(string)
	at := strings.LastIndex(image, ":")
	if at <= strings.LastIndex(image, "/") || strings.Contains(image, "@") {
		return nil, fmt.Errorf("image %q is not repository:tag", image)
	}
	d.repository, d.tag = image[:at], image[at+1:]
	c["image"] = tokImage
	d.pullPolicy, _ = c["imagePullPolicy"].(string)
	c["imagePullPolicy"] = tokPullPolicy

	d.resources, _ = c["resources"].(map[string]any)
	for section, set := range d.resources {
		quantities, ok := set.(map[string]any)
		if (section != "limits" && section != "requests") || !ok {
			return nil, fmt.Errorf("resources.%s is not a section values can hold", section)
		}
		for name := range quantities {
			if !slices.Contains([]string{"cpu", "memory", "ephemeral-storage"}, name) {
				return nil, fmt.Errorf("resources.%s.%s is not a resource values can hold", section, name)
			}
		}
	}
	c["resources"] = tokResources

	args, _ := c["args"].([]any)
	for _, a := range args {
		s, _ := a.(string)
		for _, f := range chartFlags {
			if s == f || strings.HasPrefix(s, f+"=") {
				return nil, fmt.Errorf("the manager's argument %s is one that values set", s)
			}
		}
	}
	c["args"] = append(args, tokArgs)
	return &d, nil
}

// objectTemplate returns the template of one object.
func objectTemplate(source string, obj map[string]any, ns string) (File, error) {
	kind, name := kindOf(obj), nameOf(obj)
	p, known := placements[kind]
	if !known {
		// As kubebuilder's plugin does with what it does not model: the
		// object is still installed, as it is.
		p = placement{dir: "extras"}
	}
	path := p.dir + "/" + strings.ToLower(kind) + "-" + strings.TrimPrefix(name, "problemhook-") + ".yaml"
	switch kind {
	case "Namespace":
		path = "namespace.yaml"
		metadata(obj)["name"] = tokNamespace
	case "CustomResourceDefinition":
		path = p.dir + "/" + name + ".yaml"
	}
	if kind != "Namespace" {
		replaceString(obj, ns, tokNamespace)
	}

	labels := stringMap(metadata(obj), "labels")
	for _, l := range helmLabels {
		if _, ok := labels[l]; ok {
			return File{}, fmt.Errorf("it has the label %s, which the chart sets", l)
		}
	}
	labels[tokLabels] = ""
	if kind == "CustomResourceDefinition" {
		annotations := stringMap(metadata(obj), "annotations")
		if _, ok := annotations["helm.sh/resource-policy"]; ok {
			return File{}, fmt.Errorf("it has the annotation helm.sh/resource-policy, which crds.keep sets")
		}
		annotations[tokKeep] = ""
	}

	blocks := map[string]func(indent string) (string, error){
		tokLabels: func(indent string) (string, error) {
			return fmt.Sprintf(`%s{{- include "problemhook.labels" . | nindent %d }}`, indent, len(indent)), nil
		},
		tokKeep: func(indent string) (string, error) {
			return indent + "{{- if .Values.crds.keep }}\n" +
				indent + "helm.sh/resource-policy: keep\n" +
				indent + "{{- end }}", nil
		},
		tokPullPolicy: func(indent string) (string, error) {
			return indent + "{{- with .Values.image.pullPolicy }}\n" +
				indent + "imagePullPolicy: {{ . }}\n" +
				indent + "{{- end }}", nil
		},
		tokResources: func(indent string) (string, error) {
			return fmt.Sprintf("%sresources:\n%s  {{- toYaml .Values.resources | nindent %d }}", indent, indent, len(indent)+2), nil
		},
		tokArgs: func(indent string) (string, error) {
			return fmt.Sprintf(`%s{{- include "problemhook.managerArgs" . | trim | nindent %d }}`, indent, len(indent)), nil
		},
	}
	if kind == "ServiceMonitor" {
		// The endpoints of monitor.yaml scrape over HTTPS with a token;
		// with metrics.secure=false the same scrape plain HTTP.
		spec := stringMap(obj, "spec")
		secure, ok := spec["endpoints"].([]any)
		if !ok {
			return File{}, fmt.Errorf("it has no endpoints")
		}
		plain, err := plainEndpoints(secure)
		if err != nil {
			return File{}, err
		}
		spec["endpoints"] = tokEndpoints
		blocks[tokEndpoints] = func(indent string) (string, error) {
			s, err := marshal(secure, indent)
			if err != nil {
				return "", err
			}
			p, err := marshal(plain, indent)
			if err != nil {
				return "", err
			}
			return indent + "endpoints:\n" +
				indent + "{{- if .Values.metrics.secure }}\n" + s +
				indent + "{{- else }}\n" + p +
				indent + "{{- end }}", nil
		}
	}

	body, err := marshal(obj, "")
	if err != nil {
		return File{}, err
	}
	if kind != "CustomResourceDefinition" && strings.Contains(body, ns) {
		return File{}, fmt.Errorf("it names the namespace %s inside a string, where the release's cannot replace it", ns)
	}
	body, err = expand(body, blocks)
	if err != nil {
		return File{}, err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "{{- /* Generated by hack/chart from %s (make chart): do not edit. */}}\n", source)
	if p.guard != "" {
		fmt.Fprintf(&b, "{{- if %s }}\n", p.guard)
	}
	b.WriteString(body)
	if p.guard != "" {
		b.WriteString("{{- end }}\n")
	}
	return File{Path: "templates/" + path, Data: []byte(b.String())}, nil
}

// plainEndpoints are the endpoints scraped over plain HTTP, without the
// token and TLS settings that HTTPS needs.
func plainEndpoints(secure []any) ([]any, error) {
	var plain []any
	for _, e := range secure {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("an endpoint is not an object")
		}
		p := map[string]any{}
		for k, v := range m {
			switch k {
			case "bearerTokenFile", "authorization", "tlsConfig":
			case "scheme":
				p[k] = "http"
			default:
				p[k] = v
			}
		}
		plain = append(plain, p)
	}
	return plain, nil
}

// marshal writes v as YAML, each line indented, with the Go template
// delimiters in its strings escaped so that the template writes them as
// they are (Prometheus's alert templates, descriptions of templates).
func marshal(v any, indent string) (string, error) {
	data, err := yaml.Marshal(v)
	if err != nil {
		return "", err
	}
	text := strings.ReplaceAll(string(data), "{{", `{{ "{{" }}`)
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if line != "" {
			b.WriteString(indent + line)
		}
	}
	return b.String(), nil
}

// inline are the sentinels replaced within a line.
var inline = strings.NewReplacer(
	tokNamespace, "{{ .Release.Namespace }}",
	tokReplicas, "{{ .Values.replicas }}",
	tokImage, `{{ include "problemhook.image" . | quote }}`,
)

// expand replaces each line that holds a block's sentinel with the block,
// at the line's indent, and the inline sentinels where they are.
func expand(body string, blocks map[string]func(indent string) (string, error)) (string, error) {
	var b strings.Builder
	for _, line := range strings.SplitAfter(body, "\n") {
		replaced := false
		for tok, block := range blocks {
			if !strings.Contains(line, tok) {
				continue
			}
			indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
			if rest := strings.TrimSpace(line[len(indent):]); strings.HasPrefix(rest, "- ") {
				if rest != "- "+tok {
					return "", fmt.Errorf("the sentinel %s starts a list item: %q", tok, line)
				}
			}
			text, err := block(indent)
			if err != nil {
				return "", err
			}
			b.WriteString(text + "\n")
			replaced = true
			break
		}
		if !replaced {
			b.WriteString(inline.Replace(line))
		}
	}
	out := b.String()
	if i := strings.Index(out, "__chart_"); i >= 0 {
		return "", fmt.Errorf("a sentinel was left: %.60q", out[i:])
	}
	return out, nil
}

// replaceString replaces every string value equal to old, in maps and
// lists, with to.
func replaceString(v any, old, to string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && s == old {
				v[k] = to
			} else {
				replaceString(e, old, to)
			}
		}
	case []any:
		for i, e := range v {
			if s, ok := e.(string); ok && s == old {
				v[i] = to
			} else {
				replaceString(e, old, to)
			}
		}
	}
}
