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
	"encoding/json"
	"strings"

	"sigs.k8s.io/yaml"
)

// param is one value of the chart: values.yaml and values.schema.json are
// both written from the same list, so that every value has a comment and
// the schema knows every value and no other.
type param struct {
	key     string
	comment string
	// def is a leaf's default; a leaf without one is allowed but left out
	// of values.yaml.
	def any
	// schema is a leaf's JSON schema.
	schema map[string]any
	// fields make the param an object.
	fields []param
}

func (p param) isObject() bool { return p.fields != nil }

// defaults are the values dist/install.yaml's manager Deployment has.
type defaults struct {
	replicas                    int64
	repository, tag, pullPolicy string
	resources                   map[string]any
}

const (
	quantityPattern = `^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`
	durationPattern = `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)?$`
)

func boolean() map[string]any { return map[string]any{"type": "boolean"} }

func text(minLength int) map[string]any {
	return map[string]any{"type": "string", "minLength": minLength}
}

func count() map[string]any { return map[string]any{"type": "integer", "minimum": 0} }

func list() map[string]any {
	return map[string]any{"type": "array", "items": map[string]any{"type": "string", "minLength": 1}}
}

func toggle(what string) []param {
	return []param{{key: "enabled", comment: what, def: true, schema: boolean()}}
}

// params are the chart's values, in the order values.yaml lists them.
func params(d defaults) []param {
	return []param{
		{key: "replicas", comment: "How many manager Pods run. Every replica receives notifications; " +
			"the leader reconciles. The PodDisruptionBudget keeps one receiving through a drain.",
			def: d.replicas, schema: count()},
		{key: "image", comment: "The manager image.", fields: []param{
			{key: "repository", comment: "Where the image is pulled from.", def: d.repository, schema: text(1)},
			{key: "tag", comment: "The image's tag; unused when digest is set.", def: d.tag, schema: text(1)},
			{key: "digest", comment: "A digest (sha256:...) that pins the image: the Pod runs " +
				"repository@digest, whatever the tag points to now.", def: "",
				schema: map[string]any{"type": "string", "pattern": "^(sha256:[0-9a-f]{64})?$"}},
			{key: "pullPolicy", comment: "The container's imagePullPolicy; empty leaves Kubernetes' " +
				"default (Always for the tag latest, IfNotPresent otherwise).", def: d.pullPolicy,
				schema: map[string]any{"type": "string", "enum": []any{"", "Always", "IfNotPresent", "Never"}}},
		}},
		{key: "resources", comment: "The manager container's resources. Raise the memory limit in a " +
			"cluster with many or large Secrets: the manager caches every Secret (docs/install.md).",
			fields: []param{
				{key: "limits", comment: "The most the container may use; past its memory limit it is killed.",
					fields: quantities(d.resources["limits"])},
				{key: "requests", comment: "What the scheduler sets aside for the container.",
					fields: quantities(d.resources["requests"])},
			}},
		{key: "manager", comment: "The manager's flags that an admin sets. An empty or zero value " +
			"passes no flag, and the manager's own default holds (`manager -help` lists them).",
			fields: []param{
				{key: "defaultServiceAccount", comment: "--default-service-account: the ServiceAccount, " +
					"in a route's namespace, whose rights the Jobs of a route that names none are " +
					"created with. Empty, such Jobs get the operator's own rights: set it in a " +
					"cluster that teams share.", def: "", schema: text(0)},
				{key: "allowPrivilegedJobs", comment: "--allow-privileged-jobs: let Job templates ask " +
					"for the node (privileged containers, added capabilities, host namespaces and " +
					"ports, hostPath volumes).", def: false, schema: boolean()},
				{key: "egress", comment: "The egress policy of every call made for a tenant (HTTP, " +
					"DingTalk, Twilio, Dynatrace); see docs/security.md.", fields: []param{
					{key: "allowCIDRs", comment: "--egress-allow-cidrs: ranges such calls may reach " +
						"although the built-in policy refuses them (loopback, link-local, " +
						"unspecified, multicast, cloud metadata).", def: []any{}, schema: list()},
					{key: "denyCIDRs", comment: "--egress-deny-cidrs: ranges such calls may not reach, " +
						"e.g. the cluster's private ranges. The most specific range given wins.",
						def: []any{}, schema: list()},
				}},
				{key: "receiver", comment: "The bounds of each replica's receiver.", fields: []param{
					{key: "maxBodyBytes", comment: "--receiver-max-body-bytes: the largest notification " +
						"body accepted; larger ones get 413.", def: 0, schema: count()},
					{key: "maxInFlight", comment: "--receiver-max-inflight: the most notifications a " +
						"replica stores at once; past it the receiver answers 503 with Retry-After.",
						def: 0, schema: count()},
					{key: "maxBytesInFlight", comment: "--receiver-max-bytes-inflight: the most bytes of " +
						"notification bodies a replica reads and stores at once; past it the receiver " +
						"answers 503 with Retry-After.", def: 0, schema: count()},
				}},
				{key: "eventWorkers", comment: "--event-workers: how many ProblemEvents are worked on at once.",
					def: 0, schema: count()},
				{key: "jobPodStartTimeout", comment: "--job-pod-start-timeout: how long a Job's Pod may " +
					"wait for a reason that will not clear by itself (an image that cannot be pulled, " +
					"a missing Secret, no node) before its run fails; a Go duration such as 10m.",
					def: "", schema: map[string]any{"type": "string", "pattern": durationPattern}},
				{key: "extraArgs", comment: "More flags, passed as they are after all others.",
					def: []any{}, schema: list()},
			}},
		{key: "crds", comment: "The CustomResourceDefinitions of NotificationTarget, IntegrationRoute " +
			"and ProblemEvent. They are templates, not crds/, so that an upgrade updates them.",
			fields: []param{
				{key: "enabled", comment: "Install and upgrade the CRDs with the chart.", def: true, schema: boolean()},
				{key: "keep", comment: "Keep the CRDs, and so every target, route and event, when the " +
					"release is uninstalled (helm.sh/resource-policy: keep).", def: true, schema: boolean()},
			}},
		{key: "metrics", comment: "The manager's metrics, on port 8443 of the problemhook-metrics Service.",
			fields: []param{
				{key: "secure", comment: "Serve /metrics over HTTPS to callers the API server " +
					"authenticates and authorizes (get on /metrics); false serves plain HTTP to anyone " +
					"(--metrics-secure=false).", def: true, schema: boolean()},
				{key: "serviceMonitor", comment: "A ServiceMonitor for the Prometheus Operator " +
					"(config/prometheus/monitor.yaml); its kind must exist in the cluster.",
					fields: []param{{key: "enabled", comment: "Install the ServiceMonitor.", def: false, schema: boolean()}}},
				{key: "prometheusRule", comment: "problemhook's alerts, with runbooks, as a PrometheusRule " +
					"(config/prometheus/prometheusrule.yaml); its kind must exist in the cluster.",
					fields: []param{{key: "enabled", comment: "Install the PrometheusRule.", def: false, schema: boolean()}}},
			}},
		{key: "admissionPolicies", comment: "The ValidatingAdmissionPolicies that refuse a route or " +
			"target its author could not do alone, and a rerun asked without the verb rerun " +
			"(docs/security.md). Cluster-wide.",
			fields: toggle("Install the admission policies and their bindings.")},
		{key: "flowSchema", comment: "The FlowSchema that gives the leader's Lease requests the API " +
			"server's leader-election priority level, so that a notification storm cannot cost the " +
			"leader its lease. Cluster-wide.",
			fields: toggle("Install the FlowSchema.")},
		{key: "podDisruptionBudget", comment: "The PodDisruptionBudget that keeps one replica " +
			"receiving through a node drain.",
			fields: toggle("Install the PodDisruptionBudget.")},
		{key: "networkPolicy", comment: "The NetworkPolicy that admits the receiver and metrics " +
			"ports only.",
			fields: toggle("Install the NetworkPolicy.")},
		{key: "namespace", comment: "The release's namespace, as dist/install.yaml makes it (Pod " +
			"Security restricted enforced).", fields: []param{
			{key: "create", comment: "Render the Namespace, for `helm template | kubectl apply`. Leave " +
				"it false with `helm install --create-namespace`, which makes the namespace itself.",
				def: false, schema: boolean()},
		}},
	}
}

// quantities are the resources a limits or requests section may name,
// with the defaults it has.
func quantities(defaults any) []param {
	set, _ := defaults.(map[string]any)
	var ps []param
	for _, r := range []struct{ name, comment string }{
		{"cpu", "CPU, in cores or millicores (100m)."},
		{"memory", "Memory, in bytes or with a suffix (256Mi)."},
		{"ephemeral-storage", "Local disk, in bytes or with a suffix (1Gi)."},
	} {
		ps = append(ps, param{key: r.name, comment: r.comment, def: set[r.name],
			schema: map[string]any{"type": []any{"string", "number"}, "pattern": quantityPattern}})
	}
	return ps
}

// valuesYAML writes values.yaml: every value with its comment above it.
func valuesYAML(ps []param) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# The values of problemhook's chart, generated by hack/chart (make chart):\n" +
		"# do not edit. At these defaults the chart renders the objects of\n" +
		"# dist/install.yaml; values.schema.json refuses any value not listed here.\n")
	if err := writeValues(&b, ps, ""); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func writeValues(b *strings.Builder, ps []param, indent string) error {
	for _, p := range ps {
		if !p.isObject() && p.def == nil {
			continue
		}
		if indent == "" {
			b.WriteString("\n")
		}
		for _, line := range wrap(p.comment, 78-len(indent)-2) {
			b.WriteString(indent + "# " + line + "\n")
		}
		if p.isObject() {
			var inner strings.Builder
			if err := writeValues(&inner, p.fields, indent+"  "); err != nil {
				return err
			}
			if inner.Len() == 0 {
				b.WriteString(indent + p.key + ": {}\n")
				continue
			}
			b.WriteString(indent + p.key + ":\n" + inner.String())
			continue
		}
		v, err := yaml.Marshal(p.def)
		if err != nil {
			return err
		}
		b.WriteString(indent + p.key + ": " + strings.TrimSpace(string(v)) + "\n")
	}
	return nil
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// schemaJSON writes values.schema.json: every object refuses a property
// it does not list, and every leaf says its type.
func schemaJSON(ps []param) ([]byte, error) {
	s := object(ps)
	s["$schema"] = "http://json-schema.org/draft-07/schema#"
	s["title"] = "Values of problemhook's chart"
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

func object(ps []param) map[string]any {
	props := map[string]any{}
	for _, p := range ps {
		var s map[string]any
		if p.isObject() {
			s = object(p.fields)
		} else {
			s = map[string]any{}
			for k, v := range p.schema {
				s[k] = v
			}
		}
		s["description"] = p.comment
		props[p.key] = s
	}
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
}
