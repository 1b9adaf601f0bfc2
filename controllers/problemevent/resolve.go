package problemevent

// RESOLVED: a problem's RESOLVED event stops what its OPEN event still has
// to do, Jobs running and messages not yet sent, unless an action says
// stopOnResolve: false.

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/actionkind"
)

// resolvedBy returns the name of the RESOLVED event of an OPEN event's
// problem, once it has arrived, and "" otherwise.
func (r *Reconciler) resolvedBy(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent) (string, error) {
	if ev.Spec.State != problemhookv1alpha1.StateOpen {
		return "", nil
	}
	name := problemhookv1alpha1.EventName(ev.Spec.Target, ev.Spec.ProblemKey(), problemhookv1alpha1.StateResolved)
	var resolved problemhookv1alpha1.ProblemEvent
	err := r.Get(ctx, types.NamespacedName{Namespace: ev.Namespace, Name: name}, &resolved)
	switch {
	case apierrors.IsNotFound(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("looking for the RESOLVED event %s: %w", name, err)
	}
	return name, nil
}

// stop ends a run because its problem resolved: a running Job is deleted
// with its Pods, a pending one never starts.
func (r *Reconciler) stop(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, ir *problemhookv1alpha1.IntegrationRoute, a *problemhookv1alpha1.ActionStatus, resolvedBy string) error {
	if actionkind.IsMessage(a.Type) {
		// Pending: never sent, or waiting for a retry. One in flight was
		// settled before this, as its outcome is unknown.
		msg := "Not sent: the problem resolved (ProblemEvent " + resolvedBy + ")"
		switch {
		case a.Attempts == 1:
			msg = "Not sent again after 1 failed attempt: the problem resolved (ProblemEvent " + resolvedBy + ")"
		case a.Attempts > 1:
			msg = fmt.Sprintf("Not sent again after %d failed attempts: the problem resolved (ProblemEvent %s)", a.Attempts, resolvedBy)
		}
		a.NextAttemptTime = nil
		r.settle(a, problemhookv1alpha1.ActionStopped, msg)
		return nil
	}
	if a.State != problemhookv1alpha1.ActionRunning || a.Job == "" {
		r.settle(a, problemhookv1alpha1.ActionStopped, "Not started: the problem resolved (ProblemEvent "+resolvedBy+")")
		return nil
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ev.Namespace, Name: a.Job}}
	if err := r.Get(ctx, client.ObjectKeyFromObject(job), job); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("reading Job %s: %w", a.Job, err)
	}
	what := "Job " + a.Job + " was gone"
	// Only this event's own Job is deleted, and only the one that was read:
	// the UID precondition fails the delete of a Job recreated meanwhile.
	state, verb := problemhookv1alpha1.ActionStopped, "Stopped"
	if job.UID != "" && metav1.IsControlledBy(job, ev) {
		// Deleted by whoever created it: a route's ServiceAccount.
		w, err := r.Jobs.Writer(r.Client, ev.Namespace, ir)
		if err != nil {
			return err
		}
		err = w.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &job.UID})
		switch {
		case w.Refused(err):
			// Retrying cannot help until someone grants the right; the
			// Job runs on to its end or its deadline.
			state, verb, what = problemhookv1alpha1.ActionFailed, "Not stopped", w.Forbidden(err, "delete Job "+a.Job)+"; it runs on"
		case client.IgnoreNotFound(err) != nil:
			return fmt.Errorf("stopping Job %s: %w", a.Job, err)
		default:
			what = "Job " + a.Job + " deleted"
		}
	}
	r.settle(a, state, verb+": the problem resolved (ProblemEvent "+resolvedBy+"); "+what)
	ctrl.LoggerFrom(ctx).Info("Stopped Job: the problem resolved", "Job", klog.KObj(job), "resolvedBy", resolvedBy)
	r.Recorder.Eventf(ev, job, corev1.EventTypeNormal, "JobStopped", "StopJob", "%s", a.Message)
	return nil
}

// stopsOnResolve reports whether the action's runs stop when the problem
// resolves: its stopOnResolve, true by default. A route or action that is
// gone cannot say; the default holds.
func stopsOnResolve(action *problemhookv1alpha1.Action) bool {
	return action == nil || actionkind.Of(action).StopsOnResolve(action)
}
