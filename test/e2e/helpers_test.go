//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/fixtures"
	"github.com/problemhook/problemhook/test/harness/manifests"
	"github.com/problemhook/problemhook/test/harness/node"
)

// env is one test's namespace, with a Dynatrace target that reads from
// and comments on the suite's fake Dynatrace.
type env struct {
	t  *testing.T
	ns string
}

// The target of each test's namespace, and its webhook's credentials.
const (
	targetName                   = fixtures.TargetName
	webhookUser, webhookPassword = "dynatrace", "e2e-password"
)

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ns: controlplane.NewNamespace(t, kube, "e2e")}
	t.Cleanup(func() {
		if t.Failed() {
			e.dump()
		}
	})
	e.apply(fixtures.DynatraceTarget{User: webhookUser, Password: webhookPassword, Token: dtToken, DynatraceURL: dt.URL()}.Manifest())
	e.eventually("the target is Ready", 30*time.Second, func() error {
		var target problemhookv1alpha1.NotificationTarget
		if err := kube.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: targetName}, &target); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(target.Status.Conditions, problemhookv1alpha1.ConditionReady) {
			return fmt.Errorf("not Ready: %+v", target.Status.Conditions)
		}
		return nil
	})
	// Pods need their namespace's ServiceAccount.
	e.eventually("the default ServiceAccount exists", 30*time.Second, func() error {
		return kube.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: "default"}, &corev1.ServiceAccount{})
	})
	return e
}

// apply creates the objects of a YAML stream in the test's namespace.
func (e *env) apply(manifest string) {
	e.t.Helper()
	if err := manifests.CreateIn(context.Background(), kube, e.ns, manifest); err != nil {
		e.t.Fatalf("test manifest: %v", err)
	}
}

// jobRoute creates a route for OPEN problems of one Job action named run, whose container
// runs script in the busybox image as nobody. extra is YAML merged into
// the action's job (perImpactedEntity, parallelism), jobSpec into the
// Job's spec.
func (e *env) jobRoute(name, extra, jobSpec, script string) {
	e.t.Helper()
	e.apply(fixtures.JobRoute{Name: name, Image: node.BusyboxImage, Script: script, Action: extra, JobSpec: jobSpec}.Manifest())
}

// problem adds a problem to the fake Dynatrace, impacting hosts of the
// given ids, and returns its PID.
func (e *env) problem(displayID string, hosts ...string) string {
	pid := fmt.Sprintf("%d_%sV2", time.Now().UnixNano(), strings.TrimPrefix(displayID, "P-"))
	var entities []dynatrace.EntityStub
	for _, h := range hosts {
		entities = append(entities, dynatrace.EntityStub{EntityID: dynatrace.EntityID{ID: h, Type: "HOST"}, Name: strings.ToLower(h)})
	}
	dt.AddProblem(dynatrace.Problem{
		ProblemID: pid, DisplayID: displayID, Title: "e2e " + e.t.Name(), Status: "OPEN",
		SeverityLevel: "AVAILABILITY", ImpactLevel: "INFRASTRUCTURE",
		StartTime: time.Now().UnixMilli(), EndTime: -1,
		ImpactedEntities: entities,
	})
	return pid
}

// notify posts Dynatrace's notification of the problem's state and wants
// it stored as a new event.
func (e *env) notify(pid, displayID, state string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{
		"State": state, "PID": pid, "ProblemID": strings.TrimPrefix(displayID, "P-"),
		"ProblemTitle": "e2e " + e.t.Name(), "ProblemSeverity": "AVAILABILITY", "ProblemImpact": "INFRASTRUCTURE",
	})
	req, _ := http.NewRequest(http.MethodPost, webhookURL(e.ns, targetName), bytes.NewReader(body))
	req.SetBasicAuth(webhookUser, webhookPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("posting %s %s: %v", state, displayID, err)
	}
	answer, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !bytes.Contains(answer, []byte(`"result":"created"`)) {
		e.t.Fatalf("posting %s %s: want 202 created, got %s: %s", state, displayID, resp.Status, answer)
	}
}

// openEvent waits until the OPEN event of the problem exists and done
// holds for it, and returns it.
func (e *env) openEvent(pid, what string, timeout time.Duration, done func(*problemhookv1alpha1.ProblemEvent) error) *problemhookv1alpha1.ProblemEvent {
	e.t.Helper()
	var found *problemhookv1alpha1.ProblemEvent
	e.eventually("the OPEN event "+what, timeout, func() error {
		var list problemhookv1alpha1.ProblemEventList
		if err := kube.List(context.Background(), &list, client.InNamespace(e.ns)); err != nil {
			return err
		}
		for i := range list.Items {
			ev := &list.Items[i]
			if ev.Spec.ProblemID == pid && ev.Spec.State == problemhookv1alpha1.StateOpen {
				found = ev
				return done(ev)
			}
		}
		return fmt.Errorf("no OPEN event for %s among %d", pid, len(list.Items))
	})
	return found
}

// settled wants every action of the event settled and the event in phase.
func settled(phase problemhookv1alpha1.EventPhase) func(*problemhookv1alpha1.ProblemEvent) error {
	return func(ev *problemhookv1alpha1.ProblemEvent) error {
		if ev.Status.Phase != phase {
			return fmt.Errorf("phase %q, actions %s", ev.Status.Phase, actionsLine(ev))
		}
		return nil
	}
}

func actionsLine(ev *problemhookv1alpha1.ProblemEvent) string {
	var parts []string
	for _, a := range ev.Status.Actions {
		code := ""
		if a.ExitCode != nil {
			code = fmt.Sprintf(" exit %d", *a.ExitCode)
		}
		parts = append(parts, fmt.Sprintf("[%s/%s %s: %s%s job=%s %q]", a.Route, a.Action, a.Entity, a.State, code, a.Job, a.Message))
	}
	return strings.Join(parts, " ")
}

// eventually retries check until it passes or timeout, and fails the test
// with the last error.
func (e *env) eventually(what string, timeout time.Duration, check func() error) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("waiting %s for %s: %v", timeout, what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// jobs lists the Jobs problemhook made for an event.
func (e *env) jobs(event string) []batchv1.Job {
	e.t.Helper()
	var list batchv1.JobList
	if err := kube.List(context.Background(), &list, client.InNamespace(e.ns), client.MatchingLabels{problemhookv1alpha1.LabelEvent: event}); err != nil {
		e.t.Fatal(err)
	}
	return list.Items
}

// pods lists the Pods of a Job.
func (e *env) pods(job string) []corev1.Pod {
	e.t.Helper()
	pods, err := cs.CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		e.t.Fatal(err)
	}
	return pods.Items
}

// logs reads a Pod's log through the API server, which reads it from the kubelet.
func (e *env) logs(pod string) string {
	e.t.Helper()
	b, err := cs.CoreV1().Pods(e.ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil {
		e.t.Fatalf("reading the log of Pod %s: %v", pod, err)
	}
	return string(b)
}

// dump writes what a person needs to see why a test failed: each event's
// actions, each Job's conditions, each Pod's containers and log, the
// namespace's Events and the end of the manager's log.
func (e *env) dump() {
	ctx := context.Background()
	var b strings.Builder
	fmt.Fprintf(&b, "\n===== namespace %s =====\n", e.ns)
	var events problemhookv1alpha1.ProblemEventList
	_ = kube.List(ctx, &events, client.InNamespace(e.ns))
	for i := range events.Items {
		ev := &events.Items[i]
		fmt.Fprintf(&b, "ProblemEvent %s: %s %s phase=%s\n  actions: %s\n", ev.Name, ev.Spec.State, ev.Spec.ProblemID, ev.Status.Phase, actionsLine(ev))
		if ev.Status.Comment != nil {
			fmt.Fprintf(&b, "  comment: posted=%v %q\n", ev.Status.Comment.Posted, ev.Status.Comment.Message)
		}
	}
	var jobs batchv1.JobList
	_ = kube.List(ctx, &jobs, client.InNamespace(e.ns))
	for _, j := range jobs.Items {
		fmt.Fprintf(&b, "Job %s: active=%d succeeded=%d failed=%d\n", j.Name, j.Status.Active, j.Status.Succeeded, j.Status.Failed)
		for _, c := range j.Status.Conditions {
			fmt.Fprintf(&b, "  condition %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	pods, _ := cs.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "Pod %s: %s %s\n", p.Name, p.Status.Phase, p.Status.Reason)
		for _, c := range p.Status.ContainerStatuses {
			state, _ := json.Marshal(c.State)
			fmt.Fprintf(&b, "  container %s: %s\n", c.Name, state)
		}
		if log, err := cs.CoreV1().Pods(e.ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx); err == nil {
			fmt.Fprintf(&b, "  log:\n    | %s\n", strings.ReplaceAll(strings.TrimRight(string(log), "\n"), "\n", "\n    | "))
		}
	}
	kevents, _ := cs.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{})
	slices.SortFunc(kevents.Items, func(a, b corev1.Event) int { return a.LastTimestamp.Compare(b.LastTimestamp.Time) })
	for _, ev := range kevents.Items {
		fmt.Fprintf(&b, "Event %s %s/%s %s: %s\n", ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
	}
	if log, err := os.ReadFile(mgr.LogPath); err == nil {
		lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
		var ours []string
		for _, l := range lines {
			if strings.Contains(l, e.ns) || strings.Contains(l, "=====") || strings.Contains(l, "ERROR") {
				ours = append(ours, l)
			}
		}
		if len(ours) > 60 {
			ours = ours[len(ours)-60:]
		}
		fmt.Fprintf(&b, "manager log (%s), lines about this namespace:\n  %s\n", mgr.LogPath, strings.Join(ours, "\n  "))
	}
	e.t.Log(b.String())
}
