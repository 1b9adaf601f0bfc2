package controllers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

const (
	dtToken = "dt0c01.test-token"
	pid     = "-6150203450926486413_1669823466223V2"
)

// fixture is one test's namespace: a Dynatrace target connected to a fake
// Dynatrace environment, and a ProblemEvent controller for the namespace.
type fixture struct {
	t      *testing.T
	g      *WithT
	ctx    context.Context
	ns     string
	dt     *dynatracetest.Server
	target *problemhookv1alpha1.NotificationTarget
	stop   func()
	// receiver is the base URL of a receiver that stores events in ns.
	receiver string
}

func newFixture(t *testing.T, mutate ...func(*problemhookv1alpha1.NotificationTarget)) *fixture {
	t.Helper()
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{})
	t.Cleanup(dt.Close)
	dt.AddToken(dtToken, "problems.read", "problems.write")
	f := newTargetFixture(t, dt, mutate...)
	f.stop, f.receiver = startEventManager(t, f.ns)
	return f
}

// newTargetFixture is a namespace with a target connected to dt, and no
// manager of its own.
func newTargetFixture(t *testing.T, dt *dynatracetest.Server, mutate ...func(*problemhookv1alpha1.NotificationTarget)) *fixture {
	t.Helper()
	f := &fixture{t: t, g: NewWithT(t), ctx: context.Background(), ns: newNamespace(t), dt: dt}
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "webhook-auth"},
		Data: map[string][]byte{"username": []byte("dynatrace"), "password": []byte("secret")}})
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "dynatrace-api"},
		Data: map[string][]byte{"token": []byte(dtToken)}})
	nt := basicTarget(f.ns)
	nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{
		URL:            dt.URL(),
		TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "dynatrace-api"},
	}
	for _, m := range mutate {
		m(nt)
	}
	f.create(nt)
	f.target = nt
	return f
}

func (f *fixture) create(obj client.Object) {
	f.t.Helper()
	f.g.Expect(k8s.Create(f.ctx, obj)).To(Succeed())
}

// restart stops the event controller and starts a new one, as a crash or
// a rollout would.
func (f *fixture) restart() {
	f.stop()
	f.stop, f.receiver = startEventManager(f.t, f.ns)
}

// jobTemplate is a Job action's template: one container running argv.
func jobTemplate(t *testing.T, mutate ...func(*batchv1.JobTemplateSpec)) runtime.RawExtension {
	t.Helper()
	tmpl := batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{{
			Name: "legacy", Image: "registry.example/legacy:1",
			Command: []string{"/legacy"}, Args: []string{"--problem", "$(PROBLEM_DISPLAY_ID)", "--entity", "$(ENTITY_NAME)"},
		}},
	}}}}
	for _, m := range mutate {
		m(&tmpl)
	}
	raw, err := json.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: raw}
}

func jobAction(t *testing.T, name string, perEntity bool, parallelism int32) problemhookv1alpha1.Action {
	return problemhookv1alpha1.Action{Name: name, Job: &problemhookv1alpha1.JobAction{
		PerImpactedEntity: perEntity, Parallelism: &parallelism, Template: jobTemplate(t),
	}}
}

func (f *fixture) route(name string, match problemhookv1alpha1.RouteMatch, actions ...problemhookv1alpha1.Action) *problemhookv1alpha1.IntegrationRoute {
	f.t.Helper()
	ir := &problemhookv1alpha1.IntegrationRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec:       problemhookv1alpha1.IntegrationRouteSpec{Match: match, Actions: actions},
	}
	f.create(ir)
	return ir
}

// updateRoute changes ir's spec as a user would, reading it again when its
// status was written in between.
func updateRoute(g *WithT, ir *problemhookv1alpha1.IntegrationRoute, mutate func(*problemhookv1alpha1.IntegrationRoute)) {
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ir), ir); err != nil {
			return err
		}
		mutate(ir)
		return k8s.Update(context.Background(), ir)
	})).To(Succeed())
}

// credentialCheck reports whether r is the target's check of its API
// token: one problem read when the target is reconciled.
func credentialCheck(r dynatracetest.Request) bool { return r.CredentialCheck() }

// notify posts a Dynatrace notification to the fixture's receiver as
// Dynatrace would, until it is accepted: the receiver answers 503 until
// its cache has synced.
func (f *fixture) notify(body string) {
	f.t.Helper()
	f.g.Eventually(func(g Gomega) {
		req, err := http.NewRequestWithContext(f.ctx, http.MethodPost, f.receiver+problemhookv1alpha1.WebhookPath(f.ns, "dynatrace"), strings.NewReader(body))
		g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("dynatrace", "secret")
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// event stores a ProblemEvent as the receiver would.
func (f *fixture) event(spec problemhookv1alpha1.ProblemEventSpec) *problemhookv1alpha1.ProblemEvent {
	f.t.Helper()
	if spec.Source == "" {
		spec.Source = problemhookv1alpha1.FormatDynatrace
	}
	if spec.ReceivedAt.IsZero() {
		spec.ReceivedAt = metav1.Now()
	}
	ev := problemhookv1alpha1.NewProblemEvent(f.target, &spec)
	f.create(ev)
	return ev
}

func (f *fixture) get(ev *problemhookv1alpha1.ProblemEvent) *problemhookv1alpha1.ProblemEvent {
	f.t.Helper()
	var got problemhookv1alpha1.ProblemEvent
	f.g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(ev), &got)).To(Succeed())
	return &got
}

// eventually waits until the event's status passes check.
func (f *fixture) eventually(ev *problemhookv1alpha1.ProblemEvent, check func(g Gomega, ev *problemhookv1alpha1.ProblemEvent)) *problemhookv1alpha1.ProblemEvent {
	f.t.Helper()
	var got problemhookv1alpha1.ProblemEvent
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(ev), &got)).To(Succeed())
		check(g, &got)
	}).WithTimeout(20 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	return &got
}

func phase(p problemhookv1alpha1.EventPhase) func(Gomega, *problemhookv1alpha1.ProblemEvent) {
	return func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) { g.Expect(ev.Status.Phase).To(Equal(p)) }
}

// jobs lists the Jobs in the namespace, by name.
func (f *fixture) jobs(g Gomega) []batchv1.Job {
	var jobs batchv1.JobList
	g.Expect(k8s.List(f.ctx, &jobs, client.InNamespace(f.ns))).To(Succeed())
	slices.SortFunc(jobs.Items, func(a, b batchv1.Job) int { return strings.Compare(a.Name, b.Name) })
	return jobs.Items
}

// waitJobs waits until the namespace holds exactly n Jobs, and returns them.
func (f *fixture) waitJobs(n int) []batchv1.Job {
	f.t.Helper()
	var jobs []batchv1.Job
	f.g.Eventually(func(g Gomega) {
		jobs = f.jobs(g)
		g.Expect(jobs).To(HaveLen(n))
	}).WithTimeout(20 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	return jobs
}

// finishJob ends a Job as the Job controller and the kubelet would: a Pod
// whose container terminated with exitCode, and the Job's conditions.
func (f *fixture) finishJob(job *batchv1.Job, exitCode int32) {
	f.t.Helper()
	start := metav1.NewTime(time.Now().Add(-time.Second).Truncate(time.Second))
	end := metav1.NewTime(time.Now().Truncate(time.Second))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: job.Name + "-pod", Labels: map[string]string{
			"batch.kubernetes.io/controller-uid": string(job.UID), "batch.kubernetes.io/job-name": job.Name,
		}},
		Spec: job.Spec.Template.Spec,
	}
	if err := k8s.Create(f.ctx, pod); apierrors.IsAlreadyExists(err) {
		// The Pod startPod made: the kubelet ends the same Pod.
		f.g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
	} else {
		f.g.Expect(err).NotTo(HaveOccurred())
	}
	podPhase, reason := corev1.PodSucceeded, "Completed"
	if exitCode != 0 {
		podPhase, reason = corev1.PodFailed, "Error"
	}
	pod.Status = corev1.PodStatus{Phase: podPhase, ContainerStatuses: []corev1.ContainerStatus{{
		Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image, ImageID: "sha256:0",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, Reason: reason, StartedAt: start, FinishedAt: end}},
	}}}
	f.g.Expect(k8s.Status().Update(f.ctx, pod)).To(Succeed())

	var current batchv1.Job
	f.g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(job), &current)).To(Succeed())
	if current.Status.StartTime == nil {
		current.Status.StartTime = &start
	}
	current.Status.Active, current.Status.Ready = 0, nil
	if exitCode == 0 {
		current.Status.Succeeded = 1
		current.Status.CompletionTime = &end
		current.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: end},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: end},
		}
	} else {
		current.Status.Failed = 1
		current.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: end},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: end},
		}
	}
	f.g.Expect(k8s.Status().Update(f.ctx, &current)).To(Succeed())
}

func env(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

// richProblem is a problem in the fake Dynatrace with two impacted hosts.
func richProblem() dynatrace.Problem {
	host := func(id, name string) dynatrace.EntityStub {
		return dynatrace.EntityStub{EntityID: dynatrace.EntityID{ID: id, Type: "HOST"}, Name: name}
	}
	web01 := host("HOST-0000000000000001", "web01")
	return dynatrace.Problem{
		ProblemID: pid, DisplayID: "P-1234", Title: "CPU saturation", Status: "OPEN",
		SeverityLevel: "RESOURCE_CONTENTION", ImpactLevel: "INFRASTRUCTURE",
		StartTime: time.Now().Add(-time.Minute).UnixMilli(), EndTime: -1,
		ImpactedEntities: []dynatrace.EntityStub{web01, host("HOST-0000000000000002", "web02")},
		RootCauseEntity:  &web01,
		ManagementZones:  []dynatrace.ManagementZone{{ID: "1", Name: "Shop"}},
		EntityTags:       []dynatrace.EntityTag{{Context: "CONTEXTLESS", Key: "env", Value: "prod", StringRepresentation: "env:prod"}},
		EvidenceDetails: &dynatrace.EvidenceDetails{TotalCount: 1, Details: []dynatrace.Evidence{{
			EvidenceType: "METRIC", DisplayName: "CPU saturation", Entity: web01, RootCauseRelevant: true,
		}}},
	}
}
