package argocd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	lua "github.com/yuin/gopher-lua"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/manifests"
)

// The health checks Argo CD runs for problemhook's kinds are the Lua
// scripts in health/, one per kind, named <group>_<kind>.lua like the keys
// of argocd-cm. These tests run them as Argo CD does and hold argocd-cm.yaml
// to them.

//go:generate go test . -run ^TestArgoCDConfigMap$ -update

var update = flag.Bool("update", false, "rewrite argocd-cm.yaml from health/*.lua")

const configMapFile = "argocd-cm.yaml"

// configMapKeyPrefix is how argocd-cm names a custom health check; the
// rest of the key is <group>_<kind>.
const configMapKeyPrefix = "resource.customizations.health."

// configMapHeader heads argocd-cm.yaml.
const configMapHeader = `# Argo CD health checks for problemhook's kinds, as a patch to the argocd-cm
# ConfigMap:
#   kubectl -n argocd patch configmap argocd-cm --patch-file config/argocd/argocd-cm.yaml
#
# Generated from config/argocd/health/*.lua: do not edit. After changing a
# script, regenerate this file with
#   go generate ./config/argocd
# (which runs go test ./config/argocd -run ^TestArgoCDConfigMap$ -update);
# the test fails while the two differ.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
data:
`

// readScripts reads the health checks, keyed by <group>_<kind>.
func readScripts(t *testing.T) map[string]string {
	t.Helper()
	g := NewWithT(t)
	files, err := filepath.Glob(filepath.Join("health", "*.lua"))
	g.Expect(err).NotTo(HaveOccurred())
	scripts := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		g.Expect(err).NotTo(HaveOccurred())
		scripts[strings.TrimSuffix(filepath.Base(f), ".lua")] = string(data)
	}
	return scripts
}

// configMap renders argocd-cm.yaml: each script as a literal block, which
// keeps it byte for byte when the script ends in exactly one newline.
func configMap(scripts map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString(configMapHeader)
	for _, key := range slices.Sorted(maps.Keys(scripts)) {
		fmt.Fprintf(&b, "  %s%s: |\n", configMapKeyPrefix, key)
		for line := range strings.Lines(scripts[key]) {
			if line != "\n" {
				b.WriteString("    ")
			}
			b.WriteString(line)
		}
	}
	return b.Bytes()
}

func TestArgoCDConfigMap(t *testing.T) {
	g := NewWithT(t)
	scripts := readScripts(t)
	want := configMap(scripts)
	if *update {
		g.Expect(os.WriteFile(configMapFile, want, 0o644)).To(Succeed())
	}
	got, err := os.ReadFile(configMapFile)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(got)).To(Equal(string(want)), "%s is out of date: run go generate ./config/argocd", configMapFile)

	// What Argo CD reads back is exactly the scripts.
	objs, err := manifests.Decode(got)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(objs).To(HaveLen(1))
	g.Expect(objs[0].GetKind()).To(Equal("ConfigMap"))
	g.Expect(objs[0].GetName()).To(Equal("argocd-cm"))
	g.Expect(objs[0].GetNamespace()).To(Equal("argocd"))
	data, ok := objs[0].Object["data"].(map[string]any)
	g.Expect(ok).To(BeTrue())
	g.Expect(data).To(HaveLen(len(scripts)))
	for key, script := range scripts {
		g.Expect(data).To(HaveKeyWithValue(configMapKeyPrefix+key, script),
			"health/%s.lua must end in exactly one newline and not start with a space", key)
	}
}

// Every kind of the API has a health check, and every health check is for
// a kind of the API.
func TestEveryKindHasAHealthCheck(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(problemhookv1alpha1.AddToScheme(scheme)).To(Succeed())
	apiPkg := reflect.TypeFor[problemhookv1alpha1.NotificationTarget]().PkgPath()
	var kinds []string
	for kind, typ := range scheme.KnownTypes(problemhookv1alpha1.GroupVersion) {
		if typ.PkgPath() == apiPkg && !strings.HasSuffix(kind, "List") {
			kinds = append(kinds, problemhookv1alpha1.GroupVersion.Group+"_"+kind)
		}
	}
	g.Expect(kinds).To(HaveLen(3))
	g.Expect(slices.Sorted(maps.Keys(readScripts(t)))).To(ConsistOf(kinds))
}

// health is what a health check returns.
type health struct {
	Status  string
	Message string
}

// validHealth are the statuses Argo CD accepts from a health check.
var validHealth = []string{"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

// runHealth runs a health check as Argo CD's util/lua does for a
// customization from argocd-cm (useOpenLibs unset): a fresh state with only
// the package, base and table libraries (Argo CD adds a trimmed os library
// the scripts do not use; string and math are absent), obj set from the
// object's JSON form, a one-second limit, and the last value returned read
// as {status, message}.
func runHealth(ctx context.Context, script string, obj map[string]any) (health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return health{}, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	l.SetContext(ctx)
	value, err := luaValue(l, obj)
	if err != nil {
		return health{}, err
	}
	l.SetGlobal("obj", value)
	if err := l.DoString(script); err != nil {
		return health{}, err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return health{}, fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	var hs health
	for field, dst := range map[string]*string{"status": &hs.Status, "message": &hs.Message} {
		switch v := ret.RawGetString(field).(type) {
		case lua.LString:
			*dst = string(v)
		case *lua.LNilType:
		default:
			return health{}, fmt.Errorf("%s is a %s, not a string", field, v.Type())
		}
	}
	if !slices.Contains(validHealth, hs.Status) {
		// Argo CD's answer to an unknown status.
		return health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

// luaValue converts a value of an object's JSON form to Lua as Argo CD
// does: numbers (int64 from the API server's JSON) become numbers, a
// json.Number a string, and JSON null nothing at all: a null field is
// absent from its table and a null item is left out of its array
// (gopher-lua's Append drops nil).
func luaValue(l *lua.LState, v any) (lua.LValue, error) {
	switch v := v.(type) {
	case nil:
		return lua.LNil, nil
	case bool:
		return lua.LBool(v), nil
	case string:
		return lua.LString(v), nil
	case float64:
		return lua.LNumber(v), nil
	case int64:
		return lua.LNumber(v), nil
	case int:
		return lua.LNumber(v), nil
	case int32:
		return lua.LNumber(v), nil
	case json.Number:
		return lua.LString(v), nil
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			lv, err := luaValue(l, item)
			if err != nil {
				return nil, err
			}
			arr.Append(lv)
		}
		return arr, nil
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			lv, err := luaValue(l, item)
			if err != nil {
				return nil, err
			}
			if lv != lua.LNil {
				tbl.RawSetString(key, lv)
			}
		}
		return tbl, nil
	}
	return nil, fmt.Errorf("no JSON value is a %T", v)
}

func TestLuaValueDropsNull(t *testing.T) {
	g := NewWithT(t)
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	lua.OpenBase(l)
	v, err := luaValue(l, map[string]any{"a": nil, "b": []any{"x", nil, "y"}, "n": int64(3)})
	g.Expect(err).NotTo(HaveOccurred())
	l.SetGlobal("obj", v)
	g.Expect(l.DoString(`assert(obj.a == nil); assert(#obj.b == 2 and obj.b[2] == "y"); assert(obj.n == 3)`)).To(Succeed())
}

// object is a problemhook object in the JSON form Argo CD reads.
func object(t *testing.T, obj runtime.Object) map[string]any {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return u
}

func objectMeta(generation int64) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: "example", Namespace: "team", Generation: generation}
}

func ready(status metav1.ConditionStatus, generation int64, reason, message string) []metav1.Condition {
	return []metav1.Condition{{
		Type: problemhookv1alpha1.ConditionReady, Status: status, ObservedGeneration: generation,
		Reason: reason, Message: message, LastTransitionTime: metav1.Now(),
	}}
}

func target(generation int64, suspend bool, status problemhookv1alpha1.NotificationTargetStatus) *problemhookv1alpha1.NotificationTarget {
	return &problemhookv1alpha1.NotificationTarget{
		TypeMeta:   metav1.TypeMeta{APIVersion: problemhookv1alpha1.GroupVersion.String(), Kind: "NotificationTarget"},
		ObjectMeta: objectMeta(generation),
		Spec:       problemhookv1alpha1.NotificationTargetSpec{Format: problemhookv1alpha1.FormatDynatrace, Suspend: suspend},
		Status:     status,
	}
}

func route(generation int64, status problemhookv1alpha1.IntegrationRouteStatus) *problemhookv1alpha1.IntegrationRoute {
	return &problemhookv1alpha1.IntegrationRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: problemhookv1alpha1.GroupVersion.String(), Kind: "IntegrationRoute"},
		ObjectMeta: objectMeta(generation),
		Spec:       problemhookv1alpha1.IntegrationRouteSpec{Targets: []string{"dynatrace"}},
		Status:     status,
	}
}

func event(status problemhookv1alpha1.ProblemEventStatus) *problemhookv1alpha1.ProblemEvent {
	return &problemhookv1alpha1.ProblemEvent{
		TypeMeta:   metav1.TypeMeta{APIVersion: problemhookv1alpha1.GroupVersion.String(), Kind: "ProblemEvent"},
		ObjectMeta: objectMeta(1),
		Spec:       problemhookv1alpha1.ProblemEventSpec{Target: "dynatrace", Source: problemhookv1alpha1.FormatDynatrace, ProblemID: "1", State: problemhookv1alpha1.StateOpen},
		Status:     status,
	}
}

const (
	waiting   = "Waiting for the controller"
	receiving = "Receiving notifications at /hooks/team/example"
	suspended = "Suspended: senders get 503 until spec.suspend is false"
	noSecret  = "Secret team/auth not found"
	counts    = "2 actions: 1 succeeded, 1 failed, 0 stopped, 0 running, 0 pending"
)

func TestHealth(t *testing.T) {
	scripts := readScripts(t)
	cases := []struct {
		name string
		obj  runtime.Object
		want health
	}{
		// NotificationTarget
		{"target without status", target(1, false, problemhookv1alpha1.NotificationTargetStatus{}),
			health{"Progressing", waiting}},
		{"target without Ready", target(1, false, problemhookv1alpha1.NotificationTargetStatus{ObservedGeneration: 1}),
			health{"Progressing", waiting}},
		{"target with a new spec", target(2, false, problemhookv1alpha1.NotificationTargetStatus{ObservedGeneration: 1, Conditions: ready(metav1.ConditionTrue, 1, problemhookv1alpha1.ReasonReady, receiving)}),
			health{"Progressing", waiting}},
		{"target with a Ready condition of an old spec", target(2, false, problemhookv1alpha1.NotificationTargetStatus{ObservedGeneration: 2, Conditions: ready(metav1.ConditionTrue, 1, problemhookv1alpha1.ReasonReady, receiving)}),
			health{"Progressing", waiting}},
		{"target Ready", target(2, false, problemhookv1alpha1.NotificationTargetStatus{ObservedGeneration: 2, Conditions: ready(metav1.ConditionTrue, 2, problemhookv1alpha1.ReasonReady, receiving)}),
			health{"Healthy", receiving}},
		{"target Ready, observedGeneration on the condition only", target(2, false, problemhookv1alpha1.NotificationTargetStatus{Conditions: ready(metav1.ConditionTrue, 2, problemhookv1alpha1.ReasonReady, receiving)}),
			health{"Healthy", receiving}},
		{"target suspended", target(3, true, problemhookv1alpha1.NotificationTargetStatus{ObservedGeneration: 3, Conditions: ready(metav1.ConditionFalse, 3, problemhookv1alpha1.ReasonSuspended, suspended)}),
			health{"Suspended", suspended}},
		{"target suspended, not yet observed", target(3, true, problemhookv1alpha1.NotificationTargetStatus{ObservedGeneration: 2, Conditions: ready(metav1.ConditionTrue, 2, problemhookv1alpha1.ReasonReady, receiving)}),
			health{"Progressing", waiting}},
		{"target with spec.suspend and another reason", target(3, true, problemhookv1alpha1.NotificationTargetStatus{ObservedGeneration: 3, Conditions: ready(metav1.ConditionFalse, 3, problemhookv1alpha1.ReasonSecretNotFound, noSecret)}),
			health{"Suspended", noSecret}},
		{"target not Ready", target(1, false, problemhookv1alpha1.NotificationTargetStatus{ObservedGeneration: 1, Conditions: ready(metav1.ConditionFalse, 1, problemhookv1alpha1.ReasonSecretNotFound, noSecret)}),
			health{"Degraded", "SecretNotFound: " + noSecret}},
		{"target not Ready without a message", target(1, false, problemhookv1alpha1.NotificationTargetStatus{ObservedGeneration: 1, Conditions: ready(metav1.ConditionFalse, 1, problemhookv1alpha1.ReasonInvalidCABundle, "")}),
			health{"Degraded", "InvalidCABundle"}},
		{"target Ready Unknown", target(1, false, problemhookv1alpha1.NotificationTargetStatus{ObservedGeneration: 1, Conditions: ready(metav1.ConditionUnknown, 1, "Checking", "Reading Secrets")}),
			health{"Progressing", "Reading Secrets"}},

		// IntegrationRoute
		{"route without status", route(1, problemhookv1alpha1.IntegrationRouteStatus{}),
			health{"Progressing", waiting}},
		{"route without Ready", route(1, problemhookv1alpha1.IntegrationRouteStatus{ObservedGeneration: 1}),
			health{"Progressing", waiting}},
		{"route with a new spec", route(2, problemhookv1alpha1.IntegrationRouteStatus{ObservedGeneration: 1, Conditions: ready(metav1.ConditionTrue, 1, problemhookv1alpha1.ReasonReady, "Routes 1 action")}),
			health{"Progressing", waiting}},
		{"route with a Ready condition of an old spec", route(2, problemhookv1alpha1.IntegrationRouteStatus{ObservedGeneration: 2, Conditions: ready(metav1.ConditionFalse, 1, problemhookv1alpha1.ReasonInvalidExpression, "bad")}),
			health{"Progressing", waiting}},
		{"route Ready", route(2, problemhookv1alpha1.IntegrationRouteStatus{ObservedGeneration: 2, Conditions: ready(metav1.ConditionTrue, 2, problemhookv1alpha1.ReasonReady, "Routes 1 action")}),
			health{"Healthy", "Routes 1 action"}},
		{"route not Ready", route(2, problemhookv1alpha1.IntegrationRouteStatus{ObservedGeneration: 2, Conditions: ready(metav1.ConditionFalse, 2, problemhookv1alpha1.ReasonInvalidExpression, "spec.match.expression: undeclared reference to 'x'")}),
			health{"Degraded", "InvalidExpression: spec.match.expression: undeclared reference to 'x'"}},

		// ProblemEvent
		{"event without status", event(problemhookv1alpha1.ProblemEventStatus{}),
			health{"Progressing", waiting}},
		{"event without phase", event(problemhookv1alpha1.ProblemEventStatus{ObservedGeneration: 1}),
			health{"Progressing", waiting}},
		{"event pending", event(problemhookv1alpha1.ProblemEventStatus{Phase: problemhookv1alpha1.PhasePending, Conditions: ready(metav1.ConditionFalse, 1, problemhookv1alpha1.ReasonProgressing, "1 actions: 0 succeeded, 0 failed, 0 stopped, 0 running, 1 pending")}),
			health{"Progressing", "1 actions: 0 succeeded, 0 failed, 0 stopped, 0 running, 1 pending"}},
		{"event running", event(problemhookv1alpha1.ProblemEventStatus{Phase: problemhookv1alpha1.PhaseRunning, Conditions: ready(metav1.ConditionFalse, 1, problemhookv1alpha1.ReasonProgressing, "1 actions: 0 succeeded, 0 failed, 0 stopped, 1 running, 0 pending")}),
			health{"Progressing", "1 actions: 0 succeeded, 0 failed, 0 stopped, 1 running, 0 pending"}},
		{"event succeeded", event(problemhookv1alpha1.ProblemEventStatus{Phase: problemhookv1alpha1.PhaseSucceeded, Conditions: ready(metav1.ConditionTrue, 1, problemhookv1alpha1.ReasonSucceeded, "1 actions: 1 succeeded, 0 failed, 0 stopped, 0 running, 0 pending")}),
			health{"Healthy", "1 actions: 1 succeeded, 0 failed, 0 stopped, 0 running, 0 pending"}},
		{"event skipped", event(problemhookv1alpha1.ProblemEventStatus{Phase: problemhookv1alpha1.PhaseSkipped, Conditions: ready(metav1.ConditionTrue, 1, problemhookv1alpha1.ReasonSkipped, "No IntegrationRoute matched")}),
			health{"Healthy", "No IntegrationRoute matched"}},
		{"event failed", event(problemhookv1alpha1.ProblemEventStatus{Phase: problemhookv1alpha1.PhaseFailed, Conditions: ready(metav1.ConditionTrue, 1, problemhookv1alpha1.ReasonFailed, counts)}),
			health{"Degraded", counts}},
		{"event failed without Ready", event(problemhookv1alpha1.ProblemEventStatus{Phase: problemhookv1alpha1.PhaseFailed}),
			health{"Degraded", "Failed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := object(t, tc.obj)
			key := problemhookv1alpha1.GroupVersion.Group + "_" + tc.obj.GetObjectKind().GroupVersionKind().Kind
			g.Expect(scripts).To(HaveKey(key))
			got, err := runHealth(t.Context(), scripts[key], obj)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

// Each script runs in Argo CD's sandbox and returns a valid health for
// objects as bare as the API server can hold: no status, or a null one.
func TestHealthOfBareObjects(t *testing.T) {
	for key, script := range readScripts(t) {
		t.Run(key, func(t *testing.T) {
			g := NewWithT(t)
			group, kind, _ := strings.Cut(key, "_")
			meta := map[string]any{"name": "example", "namespace": "team", "generation": int64(1), "creationTimestamp": nil}
			for _, obj := range []map[string]any{
				{"apiVersion": group + "/v1alpha1", "kind": kind, "metadata": meta},
				{"apiVersion": group + "/v1alpha1", "kind": kind, "metadata": meta, "spec": map[string]any{}, "status": nil},
				{"apiVersion": group + "/v1alpha1", "kind": kind, "metadata": meta, "status": map[string]any{"conditions": []any{}}},
			} {
				got, err := runHealth(t.Context(), script, obj)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got).To(Equal(health{"Progressing", waiting}))
			}
		})
	}
}

// runHealth fails as Argo CD does on what is not a health check.
func TestRunHealthRefusesBadScripts(t *testing.T) {
	obj := map[string]any{"metadata": map[string]any{"name": "example"}}
	for script, want := range map[string]string{
		`return {status = `:                             "syntax error",
		`return "Healthy"`:                              "expect table output",
		`return {status = string.upper("healthy")}`:     "with key 'upper'",
		`return {status = math.floor(1)}`:               "with key 'floor'",
		`while true do end`:                             "context deadline exceeded",
		`return {status = "Fine", message = obj.x}`:     "",
		`return {status = "Healthy", message = {1, 2}}`: "message is a table",
	} {
		t.Run(script, func(t *testing.T) {
			g := NewWithT(t)
			got, err := runHealth(t.Context(), script, obj)
			if want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got.Status).To(Equal("Unknown"))
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(want)))
		})
	}
}

func TestApplications(t *testing.T) {
	g := NewWithT(t)
	data, err := os.ReadFile("application.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	apps, err := manifests.Decode(data)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(apps).NotTo(BeEmpty())
	for _, app := range apps {
		g.Expect(app.GetAPIVersion()).To(Equal("argoproj.io/v1alpha1"))
		g.Expect(app.GetKind()).To(Equal("Application"))
		g.Expect(app.GetNamespace()).To(Equal("argocd"))
	}

	// The first installs problemhook itself.
	spec, ok := apps[0].Object["spec"].(map[string]any)
	g.Expect(ok).To(BeTrue())
	g.Expect(spec).To(HaveKeyWithValue("source", map[string]any{
		"repoURL": "https://github.com/problemhook/problemhook", "targetRevision": "main", "path": "config/default",
	}))
	g.Expect(spec).To(HaveKeyWithValue("destination", HaveKeyWithValue("namespace", "problemhook-system")))
	g.Expect(spec).To(HaveKeyWithValue("syncPolicy", map[string]any{
		"automated":   map[string]any{"prune": true, "selfHeal": true},
		"syncOptions": []any{"ServerSideApply=true", "CreateNamespace=false"},
	}))
	_, err = os.Stat(filepath.Join("..", "default", "kustomization.yaml"))
	g.Expect(err).NotTo(HaveOccurred(), "the Application's path config/default is gone")
}
