package controllers

// The Jobs of Job actions, through their whole life: built from the
// route's template, started within the action's parallelism, observed
// until they end; resolve.go stops them when the problem resolves.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

// jobControllerUIDLabel is the label the Job controller puts on a Job's Pods.
const jobControllerUIDLabel = "batch.kubernetes.io/controller-uid"

// DefaultJobDeadline is how long a Job may run, unless its template says
// otherwise: a Job whose image cannot be pulled, or that hangs, would
// otherwise never end, and neither would its event.
const DefaultJobDeadline = time.Hour

// MaxProblemJSON bounds PROBLEM_JSON. The kernel refuses an environment
// variable past 128 KiB, and the Pod would then never start; a problem
// with hundreds of impacted entities passes that.
const MaxProblemJSON = 32 << 10

// DefaultJobTTL is how long a finished Job is kept, unless its template
// says otherwise: long enough to read its logs, and its outcome is in the
// ProblemEvent's status for as long as the event is kept.
const DefaultJobTTL = 24 * time.Hour

// newJob builds the Job that runs a Job action for a problem, and for one
// of its impacted entities when entity is not nil. The problem reaches the
// containers as environment variables only: the template's args can refer
// to them as $(PROBLEM_TITLE), which the kubelet expands without a shell,
// so no problem data is ever parsed as a command.
func newJob(p *routing.Problem, route *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, entity *routing.Entity) (*batchv1.Job, error) {
	tmpl, err := routing.JobTemplate(action.Job.Template.Raw)
	if err != nil {
		return nil, err
	}
	entityID := ""
	if entity != nil {
		entityID = entity.ID
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   route.Namespace,
			Name:        jobName(p.Event, route.Name, action.Name, entityID),
			Labels:      tmpl.Labels,
			Annotations: tmpl.Annotations,
		},
		Spec: tmpl.Spec,
	}
	ours := map[string]string{
		problemhookv1alpha1.LabelEvent:  p.Event,
		problemhookv1alpha1.LabelRoute:  route.Name,
		problemhookv1alpha1.LabelAction: action.Name,
	}
	job.Labels = merged(job.Labels, ours)
	job.Spec.Template.Labels = merged(job.Spec.Template.Labels, ours)
	if entity != nil {
		job.Annotations = merged(job.Annotations, map[string]string{problemhookv1alpha1.AnnotationEntity: entity.ID})
	}
	if job.Spec.BackoffLimit == nil {
		limit, _ := retryPolicy(route)
		job.Spec.BackoffLimit = &limit
	}
	if job.Spec.ActiveDeadlineSeconds == nil {
		deadline := int64(DefaultJobDeadline.Seconds())
		job.Spec.ActiveDeadlineSeconds = &deadline
	}
	if job.Spec.TTLSecondsAfterFinished == nil {
		ttl := int32(DefaultJobTTL.Seconds())
		job.Spec.TTLSecondsAfterFinished = &ttl
	}
	env, err := problemEnv(p, entity)
	if err != nil {
		return nil, err
	}
	pod := &job.Spec.Template.Spec
	restrict(pod)
	for _, containers := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range containers {
			// Ours first, so that the template's own variables can refer
			// to them and, given the same name, win.
			containers[i].Env = append(append([]corev1.EnvVar{}, env...), containers[i].Env...)
		}
	}
	return job, nil
}

// jobName is the deterministic name of the Job that runs action of route
// for the event (and entity, with per-entity fan-out): a readable prefix
// and a hash of what makes the Job unique. A retried reconcile, a restart
// or a second replica computes the same name, so AlreadyExists means done.
func jobName(event, route, action, entity string) string {
	sum := sha256.Sum256([]byte(event + "\x00" + route + "\x00" + action + "\x00" + entity))
	suffix := hex.EncodeToString(sum[:5])
	// Job names become the batch.kubernetes.io/job-name label of their
	// Pods, so they must fit in a label value: 63 characters.
	prefix := strings.TrimRight(truncate(route+"-"+action, 63-1-len(suffix)), "-.")
	return prefix + "-" + suffix
}

// restrict fills in what the template leaves unsaid of the restricted Pod
// Security profile: non-root, the runtime's seccomp profile, no privilege
// escalation, no capabilities. What the template sets is left as it is.
func restrict(pod *corev1.PodSpec) {
	if pod.SecurityContext == nil {
		pod.SecurityContext = &corev1.PodSecurityContext{}
	}
	psc := pod.SecurityContext
	if psc.RunAsNonRoot == nil {
		psc.RunAsNonRoot = new(true)
	}
	if psc.SeccompProfile == nil {
		psc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	for _, containers := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range containers {
			if containers[i].SecurityContext == nil {
				containers[i].SecurityContext = &corev1.SecurityContext{}
			}
			sc := containers[i].SecurityContext
			if sc.AllowPrivilegeEscalation == nil {
				sc.AllowPrivilegeEscalation = new(false)
			}
			if sc.Capabilities == nil {
				sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
			}
		}
	}
}

// problemEnv is the environment every container of a Job action gets.
func problemEnv(p *routing.Problem, entity *routing.Entity) ([]corev1.EnvVar, error) {
	problemJSON, err := boundedProblemJSON(p)
	if err != nil {
		return nil, fmt.Errorf("encoding PROBLEM_JSON: %w", err)
	}
	env := []corev1.EnvVar{
		{Name: "PROBLEM_EVENT", Value: p.Event},
		{Name: "PROBLEM_ID", Value: p.ProblemID},
		{Name: "PROBLEM_DISPLAY_ID", Value: p.DisplayID},
		{Name: "PROBLEM_STATE", Value: p.State},
		{Name: "PROBLEM_TITLE", Value: p.Title},
		{Name: "PROBLEM_SEVERITY", Value: p.Severity},
		{Name: "PROBLEM_IMPACT", Value: p.Impact},
		{Name: "PROBLEM_URL", Value: p.URL},
		{Name: "PROBLEM_TAGS", Value: strings.Join(p.Tags, ",")},
		{Name: "PROBLEM_JSON", Value: problemJSON},
	}
	if entity != nil {
		env = append(env,
			corev1.EnvVar{Name: "ENTITY_ID", Value: entity.ID},
			corev1.EnvVar{Name: "ENTITY_NAME", Value: entity.Name},
			corev1.EnvVar{Name: "ENTITY_TYPE", Value: entity.Type},
		)
	}
	return env, nil
}

// startJobs creates the Jobs of an action's pending runs, as many as its
// parallelism allows beside those running, and returns them.
func (r *ProblemEventReconciler) startJobs(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, p *routing.Problem, ir *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, runs []int) (created []*batchv1.Job, err error) {
	running := int32(0)
	for _, i := range runs {
		if ev.Status.Actions[i].State == problemhookv1alpha1.ActionRunning {
			running++
		}
	}
	for _, i := range runs {
		a := &ev.Status.Actions[i]
		if a.State != problemhookv1alpha1.ActionPending || running >= ptrOr(action.Job.Parallelism, 5) {
			continue
		}
		job, err := r.startJob(ctx, ev, p, ir, action, a)
		if job != nil {
			created = append(created, job)
		}
		if err != nil {
			return created, err
		}
		if a.State == problemhookv1alpha1.ActionRunning {
			running++
		}
	}
	return created, nil
}

// startJob creates the Job of one run, and returns it when it created it.
// Its name is deterministic, so a Job that exists already is this run's,
// created before a restart.
func (r *ProblemEventReconciler) startJob(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, p *routing.Problem, ir *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, a *problemhookv1alpha1.ActionStatus) (*batchv1.Job, error) {
	var entity *routing.Entity
	if a.Entity != "" {
		for _, e := range p.ImpactedEntities {
			if entityKey(e) == a.Entity {
				entity = &e
				break
			}
		}
		if entity == nil {
			entity = &routing.Entity{ID: a.Entity}
		}
	}
	job, err := newJob(p, ir, action, entity)
	if err == nil {
		err = r.Jobs.nodeAccess(job, "job.template")
	}
	if err != nil {
		settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("IntegrationRoute %s action %s: %v", ir.Name, action.Name, err))
		return nil, nil
	}
	if err := controllerutil.SetControllerReference(ev, job, r.Scheme()); err != nil {
		return nil, fmt.Errorf("owning Job %s: %w", job.Name, err)
	}
	w, err := r.Jobs.writer(r.Client, ev.Namespace, ir)
	if err != nil {
		return nil, err
	}
	w.ownsJobs(job)
	err = w.Create(ctx, job)
	switch {
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("IntegrationRoute %s action %s: the API server refused the Job: %v", ir.Name, action.Name, err))
		return nil, nil
	case w.refused(err):
		settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("IntegrationRoute %s action %s: %s; no Job was created", ir.Name, action.Name, w.forbidden(err, "create Job "+job.Name)))
		return nil, nil
	case err != nil && !apierrors.IsAlreadyExists(err):
		return nil, fmt.Errorf("creating Job %s: %w", job.Name, err)
	}
	now := metav1.Now()
	a.State, a.Job, a.Attempts, a.StartTime = problemhookv1alpha1.ActionRunning, job.Name, 1, &now
	a.Message = "Job " + job.Name + " created"
	if err != nil {
		// Created before a restart, and it may have ended since: no
		// change to it will come to announce that.
		return nil, r.observeJob(ctx, ev, a)
	}
	ctrl.LoggerFrom(ctx).Info("Created Job", "Job", klog.KObj(job), "route", ir.Name, "action", action.Name, "entity", a.Entity)
	return job, nil
}

// maxEventNote is the longest note an Event may carry.
const maxEventNote = 1024

// recordJobsCreated announces the Jobs a reconcile created in one Event:
// a notification that starts a Job for each of many impacted entities
// costs the API server one Event, not one for each Job. The event's status
// names every Job.
func (r *ProblemEventReconciler) recordJobsCreated(ev *problemhookv1alpha1.ProblemEvent, created []*batchv1.Job) {
	describe := func(job *batchv1.Job) string {
		return fmt.Sprintf("%s for IntegrationRoute %s action %s", job.Name, job.Labels[problemhookv1alpha1.LabelRoute], job.Labels[problemhookv1alpha1.LabelAction])
	}
	switch len(created) {
	case 0:
	case 1:
		r.Recorder.Eventf(ev, created[0], corev1.EventTypeNormal, "JobsCreated", "CreateJob", "Created Job %s", describe(created[0]))
	default:
		note := fmt.Sprintf("Created %d Jobs: ", len(created))
		for i, job := range created {
			line := describe(job)
			if i > 0 {
				line = "; " + line
			}
			if more := fmt.Sprintf("; and %d more", len(created)-i); len(note)+len(line)+len(more) > maxEventNote {
				note += more
				break
			}
			note += line
		}
		r.Recorder.Eventf(ev, nil, corev1.EventTypeNormal, "JobsCreated", "CreateJob", "%s", note)
	}
}

// observeJob records where a run's Job is: attempts so far, and once it
// ended, its outcome and exit code.
func (r *ProblemEventReconciler) observeJob(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, a *problemhookv1alpha1.ActionStatus) error {
	key := types.NamespacedName{Namespace: ev.Namespace, Name: a.Job}
	var job batchv1.Job
	err := r.Get(ctx, key, &job)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen a Job created a moment ago.
		err = r.APIReader.Get(ctx, key, &job)
	}
	if apierrors.IsNotFound(err) {
		settle(a, problemhookv1alpha1.ActionFailed, "Job "+a.Job+" was deleted before it ended")
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Job %s: %w", key, err)
	}
	if !metav1.IsControlledBy(&job, ev) {
		// Another Job holds the name: problemhook neither adopts nor
		// deletes what it did not create for this event.
		settle(a, problemhookv1alpha1.ActionFailed, "Job "+a.Job+" exists but was not created for ProblemEvent "+ev.Name+": it is left alone, and this run does not use it")
		return nil
	}
	a.Attempts = jobAttempts(&job)
	done, succeeded, reason, msg := jobOutcome(&job)
	if !done {
		return nil
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(job.Namespace), client.MatchingLabels{jobControllerUIDLabel: string(job.UID)}); err != nil {
		return fmt.Errorf("listing the Pods of Job %s: %w", key, err)
	}
	pod, container, code, ok := lastTerminated(pods.Items)
	if ok {
		a.ExitCode = &code
	}
	state, what := problemhookv1alpha1.ActionSucceeded, "succeeded"
	if !succeeded {
		state, what = problemhookv1alpha1.ActionFailed, "failed"
	}
	line := "Job " + job.Name + " " + what
	if a.ExitCode != nil {
		line += fmt.Sprintf(" with exit code %d", *a.ExitCode)
	}
	if !succeeded && reason != "" {
		line += ": " + reason
		if msg != "" {
			line += ": " + msg
		}
	}
	settle(a, state, line)
	r.keepOutput(ctx, ev, &job, pod, container, a)
	if t := job.Status.CompletionTime; t != nil {
		a.CompletionTime = t
	}
	eventType := corev1.EventTypeNormal
	if !succeeded {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(ev, &job, eventType, "Job"+strings.ToUpper(what[:1])+what[1:], "RunJob", "%s", a.Message)
	return nil
}

// boundedProblemJSON encodes the problem for PROBLEM_JSON within
// MaxProblemJSON. A problem past it keeps fewer of its impacted entities,
// tags and management zones (halving the longest list first) and less of
// its message, and says so in a field "truncated" that scripts can test:
// it stays JSON that parses.
func boundedProblemJSON(p *routing.Problem) (string, error) {
	out, err := json.Marshal(p)
	if err != nil || len(out) <= MaxProblemJSON {
		return string(out), err
	}
	cut := *p
	for range 64 {
		lists := []*int{new(len(cut.ImpactedEntities)), new(len(cut.Tags)), new(len(cut.ManagementZones))}
		longest := lists[0]
		for _, n := range lists[1:] {
			if *n > *longest {
				longest = n
			}
		}
		if *longest == 0 {
			cut.Message = truncate(cut.Message, 1024)
		}
		*longest /= 2
		cut.ImpactedEntities = cut.ImpactedEntities[:*lists[0]]
		cut.Tags = cut.Tags[:*lists[1]]
		cut.ManagementZones = cut.ManagementZones[:*lists[2]]
		note := struct {
			*routing.Problem
			Truncated string `json:"truncated"`
		}{&cut, fmt.Sprintf("PROBLEM_JSON is cut to %d bytes: it lists %d of %d impactedEntities, %d of %d tags and %d of %d managementZones",
			MaxProblemJSON, len(cut.ImpactedEntities), len(p.ImpactedEntities), len(cut.Tags), len(p.Tags), len(cut.ManagementZones), len(p.ManagementZones))}
		if out, err = json.Marshal(note); err != nil || len(out) <= MaxProblemJSON {
			return string(out), err
		}
	}
	return "", fmt.Errorf("the problem does not fit in %d bytes", MaxProblemJSON)
}

// jobOutcome reads how a Job ended from its conditions: done is false
// while it runs.
func jobOutcome(job *batchv1.Job) (done, succeeded bool, reason, msg string) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, true, c.Reason, c.Message
		case batchv1.JobFailed:
			return true, false, c.Reason, c.Message
		}
	}
	return false, false, "", ""
}

// jobAttempts counts the Pods a Job has run so far.
func jobAttempts(job *batchv1.Job) int32 {
	n := job.Status.Failed + job.Status.Succeeded + job.Status.Active
	if n == 0 {
		return 1
	}
	return n
}

// lastTerminated finds the container of the Job's Pods that terminated
// last (a failed one before a succeeded one that ended at the same time):
// its Pod, its name and its exit code.
func lastTerminated(pods []corev1.Pod) (pod, container string, code int32, found bool) {
	var last *corev1.ContainerStateTerminated
	for i := range pods {
		for _, cs := range pods[i].Status.ContainerStatuses {
			t := cs.State.Terminated
			if t == nil {
				continue
			}
			if last == nil || t.FinishedAt.After(last.FinishedAt.Time) || (t.FinishedAt.Equal(&last.FinishedAt) && t.ExitCode != 0 && code == 0) {
				last, code, found = t, t.ExitCode, true
				pod, container = pods[i].Name, cs.Name
			}
		}
	}
	return pod, container, code, found
}
