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

// Package chart_test holds dist/chart, problemhook's Helm chart, to what
// it promises: rendered as `helm template` renders it (Helm's own Go
// library, helm.sh/helm/v4), at its default values it is dist/install.yaml
// object for object, Helm's strict lint finds nothing, its schema refuses a
// value it does not know or of the wrong type, and each value changes what
// it says it changes.
package chart_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/problemhook/problemhook/test/harness/manifests"
)

const (
	chartDir = "../../dist/chart"
	// installNamespace is the namespace dist/install.yaml installs into.
	installNamespace = "problemhook-system"
	digest           = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// helmLabels are the labels the chart adds to every object, and
// dist/install.yaml does not have.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

// makeVar returns the default of a variable the Makefile sets with ?=.
func makeVar(t *testing.T, name string) string {
	t.Helper()
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(makefile), "\n") {
		line = strings.TrimPrefix(line, "export ")
		if v, ok := strings.CutPrefix(line, name+" ?= "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("the Makefile does not set %s", name)
	return ""
}

// kubeVersion is the Kubernetes version problemhook's tests run against,
// which the chart is rendered and linted for.
func kubeVersion(t *testing.T) *common.KubeVersion {
	t.Helper()
	v, err := common.ParseKubeVersion(makeVar(t, "KUBE_VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// render renders the chart as `helm template problemhook dist/chart -n ns`
// does, with vals as --set or -f would give them, schema validation
// included.
func render(t *testing.T, ns string, vals map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	return renderFor(t, kubeVersion(t), ns, vals)
}

func renderFor(t *testing.T, kube *common.KubeVersion, ns string, vals map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading %s: %v", chartDir, err)
	}
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = "problemhook"
	install.Namespace = ns
	install.KubeVersion = kube
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("the release is a %T", rel)
	}
	objs, err := manifests.Decode([]byte(r.Manifest))
	if err != nil {
		t.Fatalf("decoding the rendered manifest: %v", err)
	}
	return objs, nil
}

// mustRender renders the chart in installNamespace and fails the test when
// it cannot.
func mustRender(t *testing.T, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render(t, installNamespace, vals)
	if err != nil {
		t.Fatalf("rendering the chart with %v: %v", vals, err)
	}
	return objs
}

func installed(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "dist", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func key(o *unstructured.Unstructured) string {
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// byKey indexes objects by kind, namespace and name, failing on a
// duplicate.
func byKey(t *testing.T, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if _, ok := m[key(o)]; ok {
			t.Fatalf("%s twice", key(o))
		}
		m[key(o)] = o
	}
	return m
}

func keys(objs []*unstructured.Unstructured) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, key(o))
	}
	return ks
}

// withoutHelm returns a copy of o without what the chart adds to every
// object: Helm's labels, and a CRD's keep annotation.
func withoutHelm(o *unstructured.Unstructured) *unstructured.Unstructured {
	o = o.DeepCopy()
	for _, l := range helmLabels {
		unstructured.RemoveNestedField(o.Object, "metadata", "labels", l)
	}
	unstructured.RemoveNestedField(o.Object, "metadata", "annotations", "helm.sh/resource-policy")
	for _, m := range []string{"labels", "annotations"} {
		if v, found, _ := unstructured.NestedMap(o.Object, "metadata", m); found && len(v) == 0 {
			unstructured.RemoveNestedField(o.Object, "metadata", m)
		}
	}
	return o
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// At its default values the chart is dist/install.yaml: the same objects,
// field for field, but for Helm's labels, the CRDs' keep annotation, and
// the Namespace, which `helm install --create-namespace` makes and
// namespace.create renders.
func TestDefaultsAreTheInstall(t *testing.T) {
	install := installed(t)
	for _, tc := range []struct {
		name string
		vals map[string]any
		want []*unstructured.Unstructured
	}{
		{"defaults", nil, ofKindNot(install, "Namespace")},
		{"namespace.create", map[string]any{"namespace": map[string]any{"create": true}}, install},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			chart := mustRender(t, tc.vals)
			g.Expect(keys(chart)).To(ConsistOf(keys(tc.want)), "the chart renders dist/install.yaml's kinds, namespaces and names")

			got := byKey(t, chart)
			for _, want := range tc.want {
				o := got[key(want)]
				if o == nil {
					continue
				}
				if diff := cmp.Diff(want.Object, withoutHelm(o).Object); diff != "" {
					t.Errorf("%s differs from dist/install.yaml's (-install +chart):\n%s", key(want), diff)
				}
			}

			// What the brief of the chart names, said on its own.
			m, w := managerOf(g, chart), managerOf(g, install)
			g.Expect(m["args"]).To(Equal(w["args"]), "the manager's args")
			g.Expect(m["image"]).To(Equal(w["image"]), "the manager's image")
			g.Expect(m["resources"]).To(Equal(w["resources"]), "the manager's resources")
			for _, crd := range ofKind(chart, "CustomResourceDefinition") {
				g.Expect(crd.GetAnnotations()).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"),
					"crds.keep is true by default: uninstalling keeps %s", crd.GetName())
			}
		})
	}
}

func ofKindNot(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != kind {
			out = append(out, o)
		}
	}
	return out
}

// Installed in another namespace, nothing names problemhook-system: the
// namespaced objects, the RBAC subjects and the FlowSchema's ServiceAccount
// and Lease namespace are the release's.
func TestReleaseNamespace(t *testing.T) {
	g := NewWithT(t)
	objs, err := render(t, "ops", map[string]any{"namespace": map[string]any{"create": true}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(keys(objs)).To(ContainElements("Namespace /ops", "Deployment ops/problemhook-controller-manager",
		"ServiceAccount ops/problemhook-controller-manager", "FlowSchema /problemhook-leader-election"))
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			continue // descriptions may name the default namespace
		}
		walkStrings(o.Object, func(s string) {
			g.Expect(s).NotTo(ContainSubstring(installNamespace), "%s names %s", key(o), installNamespace)
		})
	}
	var fs *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "FlowSchema" {
			fs = o
		}
	}
	g.Expect(fs).NotTo(BeNil())
	rules, _, _ := unstructured.NestedSlice(fs.Object, "spec", "rules")
	g.Expect(rules).To(HaveLen(1))
	g.Expect(rules[0]).To(HaveKeyWithValue("subjects", ContainElement(HaveKeyWithValue("serviceAccount",
		map[string]any{"name": "problemhook-controller-manager", "namespace": "ops"}))))
}

func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case map[string]any:
		for _, e := range v {
			walkStrings(e, f)
		}
	case []any:
		for _, e := range v {
			walkStrings(e, f)
		}
	}
}

// Helm's lint, strict (warnings fail as errors do), finds nothing, at the
// defaults and with every optional object rendered.
func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
	}{
		{"defaults", nil},
		{"everything on", map[string]any{
			"namespace": map[string]any{"create": true},
			"metrics": map[string]any{"secure": false,
				"serviceMonitor": map[string]any{"enabled": true},
				"prometheusRule": map[string]any{"enabled": true}},
			"image": map[string]any{"digest": digest, "pullPolicy": "IfNotPresent"},
			"manager": map[string]any{"defaultServiceAccount": "runner", "allowPrivilegedJobs": true,
				"egress":       map[string]any{"allowCIDRs": []any{"10.0.0.0/8"}, "denyCIDRs": []any{"10.96.0.0/12"}},
				"receiver":     map[string]any{"maxBodyBytes": 2097152, "maxInFlight": 64, "maxBytesInFlight": 33554432},
				"eventWorkers": 8, "jobPodStartTimeout": "10m", "extraArgs": []any{"--zap-log-level=debug"}},
		}},
		{"everything off", map[string]any{
			"crds":                map[string]any{"enabled": false},
			"admissionPolicies":   map[string]any{"enabled": false},
			"flowSchema":          map[string]any{"enabled": false},
			"podDisruptionBudget": map[string]any{"enabled": false},
			"networkPolicy":       map[string]any{"enabled": false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = installNamespace
			lint.KubeVersion = kubeVersion(t)
			result := lint.Run([]string{chartDir}, tc.vals)
			if result.TotalChartsLinted != 1 {
				t.Errorf("%d charts linted, not 1: %v", result.TotalChartsLinted, result.Errors)
			}
			for _, err := range result.Errors {
				t.Errorf("lint: %v", err)
			}
			for _, m := range result.Messages {
				if m.Severity > support.InfoSev {
					t.Errorf("lint: %s", m)
				}
			}
		})
	}
}

// The schema refuses a value it does not know, at every level, and a
// value of the wrong type, naming it.
func TestSchemaRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want []string
	}{
		{"an unknown top-level value", map[string]any{"replica": 3},
			[]string{"additional properties 'replica' not allowed"}},
		{"an unknown nested value", map[string]any{"image": map[string]any{"name": "x"}},
			[]string{"/image", "additional properties 'name' not allowed"}},
		{"an unknown resource", map[string]any{"resources": map[string]any{"limits": map[string]any{"gpu": 1}}},
			[]string{"/resources/limits", "additional properties 'gpu' not allowed"}},
		{"replicas that are not a number", map[string]any{"replicas": "two"},
			[]string{"/replicas", "got string, want integer"}},
		{"a toggle that is not a boolean", map[string]any{"crds": map[string]any{"enabled": "yes"}},
			[]string{"/crds/enabled", "got string, want boolean"}},
		{"a digest that is not one", map[string]any{"image": map[string]any{"digest": "latest"}},
			[]string{"/image/digest", "does not match pattern"}},
		{"a duration that is not one", map[string]any{"manager": map[string]any{"jobPodStartTimeout": "ten minutes"}},
			[]string{"/manager/jobPodStartTimeout", "does not match pattern"}},
		{"a CIDR list that is a string", map[string]any{"manager": map[string]any{"egress": map[string]any{"denyCIDRs": "10.0.0.0/8"}}},
			[]string{"/manager/egress/denyCIDRs", "got string, want array"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := render(t, installNamespace, tc.vals)
			g.Expect(err).To(HaveOccurred(), "the schema refuses %v", tc.vals)
			g.Expect(err.Error()).To(ContainSubstring("values don't meet the specifications of the schema"))
			for _, w := range tc.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}
}

// Each value changes what it says it changes.
func TestValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vals  map[string]any
		check func(g Gomega, objs []*unstructured.Unstructured)
	}{
		{"crds.enabled=false renders no CRD", map[string]any{"crds": map[string]any{"enabled": false}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				g.Expect(ofKind(objs, "CustomResourceDefinition")).To(BeEmpty())
				g.Expect(ofKind(objs, "Deployment")).To(HaveLen(1))
			}},
		{"crds.keep=false keeps no CRD", map[string]any{"crds": map[string]any{"keep": false}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				crds := ofKind(objs, "CustomResourceDefinition")
				g.Expect(crds).To(HaveLen(3))
				for _, crd := range crds {
					g.Expect(crd.GetAnnotations()).NotTo(HaveKey("helm.sh/resource-policy"))
				}
			}},
		{"crds.keep=true keeps every CRD", map[string]any{"crds": map[string]any{"keep": true}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				crds := ofKind(objs, "CustomResourceDefinition")
				g.Expect(crds).To(HaveLen(3))
				for _, crd := range crds {
					g.Expect(crd.GetAnnotations()).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
				}
			}},
		{"serviceMonitor scrapes over HTTPS with a token", map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				sms := ofKind(objs, "ServiceMonitor")
				g.Expect(sms).To(HaveLen(1))
				g.Expect(key(sms[0])).To(Equal("ServiceMonitor problemhook-system/problemhook-metrics-monitor"))
				endpoints, _, _ := unstructured.NestedSlice(sms[0].Object, "spec", "endpoints")
				g.Expect(endpoints).To(ConsistOf(And(HaveKeyWithValue("scheme", "https"), HaveKeyWithValue("port", "metrics"),
					HaveKey("bearerTokenFile"), HaveKey("tlsConfig"))))
				g.Expect(ofKind(objs, "PrometheusRule")).To(BeEmpty())
			}},
		{"metrics.secure=false serves and scrapes plain HTTP", map[string]any{"metrics": map[string]any{"secure": false, "serviceMonitor": map[string]any{"enabled": true}}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				endpoints, _, _ := unstructured.NestedSlice(ofKind(objs, "ServiceMonitor")[0].Object, "spec", "endpoints")
				g.Expect(endpoints).To(ConsistOf(map[string]any{"path": "/metrics", "port": "metrics", "scheme": "http"}))
				g.Expect(managerOf(g, objs)["args"]).To(Equal([]any{"--leader-elect", "--metrics-secure=false"}))
			}},
		{"serviceMonitor is off by default", nil,
			func(g Gomega, objs []*unstructured.Unstructured) {
				g.Expect(ofKind(objs, "ServiceMonitor")).To(BeEmpty())
				g.Expect(ofKind(objs, "PrometheusRule")).To(BeEmpty())
			}},
		{"prometheusRule loads the alerts with their templates intact", map[string]any{"metrics": map[string]any{"prometheusRule": map[string]any{"enabled": true}}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				rules := ofKind(objs, "PrometheusRule")
				g.Expect(rules).To(HaveLen(1))
				want := readObject(g, "../../config/prometheus/prometheusrule.yaml")
				g.Expect(withoutHelm(rules[0]).Object).To(Equal(want.Object))
			}},
		{"image.digest pins the image", map[string]any{"image": map[string]any{"digest": digest}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				g.Expect(managerOf(g, objs)["image"]).To(Equal("ghcr.io/problemhook/problemhook@" + digest))
			}},
		{"image repository, tag and pull policy", map[string]any{"image": map[string]any{"repository": "registry.example/ph", "tag": "v9", "pullPolicy": "IfNotPresent"}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				m := managerOf(g, objs)
				g.Expect(m["image"]).To(Equal("registry.example/ph:v9"))
				g.Expect(m["imagePullPolicy"]).To(Equal("IfNotPresent"))
			}},
		{"replicas and resources", map[string]any{"replicas": 3, "resources": map[string]any{
			"limits": map[string]any{"cpu": "1", "memory": "1Gi"}, "requests": map[string]any{"cpu": "100m", "memory": "128Mi"}}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				replicas, _, _ := unstructured.NestedInt64(ofKind(objs, "Deployment")[0].Object, "spec", "replicas")
				g.Expect(replicas).To(Equal(int64(3)))
				g.Expect(managerOf(g, objs)["resources"]).To(Equal(map[string]any{
					"limits":   map[string]any{"cpu": "1", "memory": "1Gi"},
					"requests": map[string]any{"cpu": "100m", "memory": "128Mi"}}))
			}},
		{"the manager's flags", map[string]any{"manager": map[string]any{
			"defaultServiceAccount": "runner", "allowPrivilegedJobs": true,
			"egress":       map[string]any{"allowCIDRs": []any{"169.254.169.254/32", "127.0.0.1/32"}, "denyCIDRs": []any{"10.0.0.0/8"}},
			"receiver":     map[string]any{"maxBodyBytes": 2097152, "maxInFlight": 64, "maxBytesInFlight": 33554432},
			"eventWorkers": 8, "jobPodStartTimeout": "10m", "extraArgs": []any{"--zap-log-level=debug"}}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				g.Expect(managerOf(g, objs)["args"]).To(Equal([]any{
					"--leader-elect",
					"--default-service-account=runner",
					"--allow-privileged-jobs",
					"--egress-allow-cidrs=169.254.169.254/32,127.0.0.1/32",
					"--egress-deny-cidrs=10.0.0.0/8",
					"--receiver-max-body-bytes=2097152",
					"--receiver-max-inflight=64",
					"--receiver-max-bytes-inflight=33554432",
					"--event-workers=8",
					"--job-pod-start-timeout=10m",
					"--zap-log-level=debug",
				}))
			}},
		{"optional objects can be left out", map[string]any{
			"admissionPolicies":   map[string]any{"enabled": false},
			"flowSchema":          map[string]any{"enabled": false},
			"podDisruptionBudget": map[string]any{"enabled": false},
			"networkPolicy":       map[string]any{"enabled": false}},
			func(g Gomega, objs []*unstructured.Unstructured) {
				for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
					"FlowSchema", "PodDisruptionBudget", "NetworkPolicy"} {
					g.Expect(ofKind(objs, kind)).To(BeEmpty(), kind)
				}
				g.Expect(ofKind(objs, "Deployment")).To(HaveLen(1))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tc.check(g, mustRender(t, tc.vals))
		})
	}
}

// managerOf returns the manager container of the one Deployment.
func managerOf(g Gomega, objs []*unstructured.Unstructured) map[string]any {
	deps := ofKind(objs, "Deployment")
	g.Expect(deps).To(HaveLen(1))
	containers, _, _ := unstructured.NestedSlice(deps[0].Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok && m["name"] == "manager" {
			return m
		}
	}
	g.Expect(containers).To(ContainElement(HaveKeyWithValue("name", "manager")))
	return nil
}

func readObject(g Gomega, path string) *unstructured.Unstructured {
	data, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())
	objs, err := manifests.Decode(data)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(objs).To(HaveLen(1))
	return objs[0]
}

// The chart's version is the Makefile's VERSION, its appVersion too, and
// the image's tag follows it.
func TestChartVersion(t *testing.T) {
	g := NewWithT(t)
	version := makeVar(t, "VERSION")
	chrt, err := loader.Load(chartDir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(chrt.Metadata.Version).To(Equal(version))
	g.Expect(chrt.Metadata.AppVersion).To(Equal(version))
	g.Expect(managerOf(g, mustRender(t, nil))["image"]).To(HaveSuffix(":v" + version))
}

// The chart refuses a cluster older than 1.30, which has no
// ValidatingAdmissionPolicy v1 for the admission policies.
func TestKubeVersion(t *testing.T) {
	g := NewWithT(t)
	old, err := common.ParseKubeVersion("v1.29.9")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = renderFor(t, old, installNamespace, nil)
	g.Expect(err).To(MatchError(ContainSubstring("chart requires kubeVersion")))
	_, err = render(t, installNamespace, nil)
	g.Expect(err).NotTo(HaveOccurred())
}
