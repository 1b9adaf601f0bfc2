package problemevent

// The Jobs of Job actions, through their life here: built by
// internal/jobs from the route's template, started within the action's
// parallelism, observed until they end; resolve.go stops them when the
// problem resolves.

import (
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/jobs"
	"github.com/problemhook/problemhook/internal/routing"
)

// jobControllerUIDLabel is the label the Job controller puts on a Job's Pods.
const jobControllerUIDLabel = "batch.kubernetes.io/controller-uid"

// startJobs creates the Jobs of an action's pending runs, as many as its
// parallelism allows beside those running, and returns them.
func (r *Reconciler) startJobs(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, p *routing.Problem, ir *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, runs []int) (created []*batchv1.Job, err error) {
	running := int32(0)
	for _, i := range runs {
		if ev.Status.Actions[i].State == problemhookv1alpha1.ActionRunning {
			running++
		}
	}
	for _, i := range runs {
		a := &ev.Status.Actions[i]
		if a.State != problemhookv1alpha1.ActionPending || running >= ptr.Deref(action.Job.Parallelism, 5) {
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
func (r *Reconciler) startJob(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, p *routing.Problem, ir *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, a *problemhookv1alpha1.ActionStatus) (*batchv1.Job, error) {
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
	job, err := jobs.New(p, ir, action, entity)
	if err == nil {
		job.Name = jobs.RerunName(job.Name, a.Reruns)
		err = r.Jobs.NodeAccess(job, "job.template")
	}
	if err != nil {
		r.settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("IntegrationRoute %s action %s: %v", ir.Name, action.Name, err))
		return nil, nil
	}
	if err := controllerutil.SetControllerReference(ev, job, r.Scheme()); err != nil {
		return nil, fmt.Errorf("owning Job %s: %w", job.Name, err)
	}
	w, err := r.Jobs.Writer(r.Client, ev.Namespace, ir)
	if err != nil {
		return nil, err
	}
	w.OwnsJobs(job)
	err = w.Create(ctx, job)
	switch {
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		r.settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("IntegrationRoute %s action %s: the API server refused the Job: %v", ir.Name, action.Name, err))
		return nil, nil
	case w.Refused(err):
		r.settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("IntegrationRoute %s action %s: %s; no Job was created", ir.Name, action.Name, w.Forbidden(err, "create Job "+job.Name)))
		return nil, nil
	case err != nil && !apierrors.IsAlreadyExists(err):
		return nil, fmt.Errorf("creating Job %s: %w", job.Name, err)
	}
	now := metav1.NewTime(r.Now())
	a.State, a.Job, a.Attempts, a.StartTime = problemhookv1alpha1.ActionRunning, job.Name, 1, &now
	a.Message = "Job " + job.Name + " created"
	if err != nil {
		// Created before a restart, and it may have ended since: no
		// change to it will come to announce that.
		return nil, r.observeJob(ctx, ev, ir, a)
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
func (r *Reconciler) recordJobsCreated(ev *problemhookv1alpha1.ProblemEvent, created []*batchv1.Job) {
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
func (r *Reconciler) observeJob(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, ir *problemhookv1alpha1.IntegrationRoute, a *problemhookv1alpha1.ActionStatus) error {
	key := types.NamespacedName{Namespace: ev.Namespace, Name: a.Job}
	var job batchv1.Job
	err := r.Get(ctx, key, &job)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen a Job created a moment ago.
		err = r.APIReader.Get(ctx, key, &job)
	}
	if apierrors.IsNotFound(err) {
		r.settle(a, problemhookv1alpha1.ActionFailed, "Job "+a.Job+" was deleted before it ended")
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Job %s: %w", key, err)
	}
	if !metav1.IsControlledBy(&job, ev) {
		// Another Job holds the name: problemhook neither adopts nor
		// deletes what it did not create for this event.
		r.settle(a, problemhookv1alpha1.ActionFailed, "Job "+a.Job+" exists but was not created for ProblemEvent "+ev.Name+": it is left alone, and this run does not use it")
		return nil
	}
	a.Attempts = jobAttempts(&job)
	done, succeeded, reason, msg := jobOutcome(&job)
	if !done {
		return r.watchPodStart(ctx, ev, ir, a, &job)
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
	r.settle(a, state, line)
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
