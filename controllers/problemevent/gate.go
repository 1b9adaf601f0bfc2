package problemevent

// A remediation ladder's steps wait. An action may start only after its
// delay, once a person approved it, and while its problem is still open:
// gate holds the runs of such an action until each of these holds, and
// records in their status what they wait for. Nothing waits in memory, no
// worker is held: a wait is a time in status and a RequeueAfter, so a
// restart or a new leader resumes it where it was.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/outcall"
)

// defaultApprovalTimeout is an approval's timeout when the route's
// defaults were not applied (a route stored before the field existed).
const defaultApprovalTimeout = 30 * time.Minute

// step is where an action stands in its route: what it waits after.
type step struct {
	// after is when the action before it settled, or when the event was
	// stored for the route's first action.
	after time.Time
	// first is true for the route's first action.
	first bool
}

// gated reports whether the action waits for anything before it starts.
func gated(action *problemhookv1alpha1.Action) bool {
	return (action.Delay != nil && action.Delay.Duration > 0) || action.OnlyWhileOpen || needsApproval(action)
}

func needsApproval(action *problemhookv1alpha1.Action) bool {
	return action.Approval != nil && action.Approval.Required
}

// gate holds the runs of action that have not been cleared to start, and
// clears them once the action's delay is over, a person approved them and
// their problem is still open. It reports whether the action's runs may
// start now; the runs it ends (Skipped, or Failed when Dynatrace could not
// say whether the problem is open) are settled in ev.
func (r *Reconciler) gate(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, target *problemhookv1alpha1.NotificationTarget, ir *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, runs []int, at step, resolvedBy string) (bool, error) {
	if !gated(action) {
		return true, nil
	}
	var held []int
	for _, i := range runs {
		a := &ev.Status.Actions[i]
		if a.ClearedTime == nil && (a.State == problemhookv1alpha1.ActionPending || a.State == problemhookv1alpha1.ActionAwaitingApproval) {
			held = append(held, i)
		}
	}
	if len(held) == 0 {
		return true, nil
	}
	now := r.Now()
	if !r.delayOver(ev, action, held, at, now) || !r.approved(ev, action, held, now) {
		return false, nil
	}
	if action.OnlyWhileOpen {
		open, err := r.stillOpen(ctx, ev, target, ir, action, held, resolvedBy, now)
		if !open || err != nil {
			return false, err
		}
	}
	cleared := metav1.NewTime(now)
	for _, i := range held {
		a := &ev.Status.Actions[i]
		a.ClearedTime, a.NextAttemptTime = &cleared, nil
	}
	return true, nil
}

// delayOver reports whether the action's delay after its step is over,
// and otherwise records in the held runs until when they wait. The times
// are whole seconds, as status keeps them: a wait computed before and
// after a restart ends at the same second.
func (r *Reconciler) delayOver(ev *problemhookv1alpha1.ProblemEvent, action *problemhookv1alpha1.Action, held []int, at step, now time.Time) bool {
	if action.Delay == nil || action.Delay.Duration <= 0 {
		return true
	}
	due := ceilSecond(at.after.Truncate(time.Second).Add(action.Delay.Duration))
	if !now.Before(due) {
		return true
	}
	since := "the action before it settled"
	if at.first {
		since = "the event was stored"
	}
	next := metav1.NewTime(due)
	for _, i := range held {
		a := &ev.Status.Actions[i]
		a.NextAttemptTime = &next
		a.Message = fmt.Sprintf("Waiting until %s: delay %s after %s", due.UTC().Format(time.RFC3339), action.Delay.Duration, since)
	}
	return false
}

// approved reports whether every held run of an action that needs
// approval is approved. A run that has not asked yet starts to wait; one
// whose wait passed the action's timeout ends Skipped. A person's
// decision is taken by decide.
func (r *Reconciler) approved(ev *problemhookv1alpha1.ProblemEvent, action *problemhookv1alpha1.Action, held []int, now time.Time) bool {
	if !needsApproval(action) {
		return true
	}
	timeout := defaultApprovalTimeout
	if t := action.Approval.Timeout; t != nil && t.Duration > 0 {
		timeout = t.Duration
	}
	all := true
	for _, i := range held {
		a := &ev.Status.Actions[i]
		switch {
		case a.Approval == nil:
			requested := metav1.NewTime(now.Truncate(time.Second))
			deadline := metav1.NewTime(requested.Add(timeout))
			a.State, a.NextAttemptTime = problemhookv1alpha1.ActionAwaitingApproval, &deadline
			a.Approval = &problemhookv1alpha1.ApprovalStatus{RequestedTime: requested}
			a.Message = fmt.Sprintf("Awaiting approval until %s: %s", deadline.UTC().Format(time.RFC3339), approveCommand(ev.Namespace, ev.Name, a.Action))
			r.Recorder.Eventf(ev, nil, corev1.EventTypeNormal, "AwaitingApproval", "Approve", "IntegrationRoute %s action %s: %s", a.Route, a.Action, a.Message)
			all = false
		case a.Approval.Decision == problemhookv1alpha1.ApprovalApproved:
		case a.Approval.Decision == "" && !now.Before(a.Approval.RequestedTime.Add(timeout)):
			decided := metav1.NewTime(now)
			a.Approval.Decision, a.Approval.Time, a.NextAttemptTime = problemhookv1alpha1.ApprovalTimedOut, &decided, nil
			r.settle(a, problemhookv1alpha1.ActionSkipped, fmt.Sprintf("Skipped: approval timed out after %s; nobody approved or rejected it, and nothing was created or sent", timeout))
			r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "ApprovalTimedOut", "Approve", "IntegrationRoute %s action %s: %s", a.Route, a.Action, a.Message)
			all = false
		default:
			all = false
		}
	}
	return all
}

// approveCommand is the command that approves an event's action, as the
// runs awaiting approval say it. A message action's template renders the
// same from .Namespace and .Event (docs/oncall.md).
func approveCommand(namespace, event, action string) string {
	return fmt.Sprintf("manager approve %s/%s %s", namespace, event, action)
}

// stillOpen reports whether the problem of ev is still open, before the
// held runs of an onlyWhileOpen action start. A closed problem ends them
// Skipped. When Dynatrace cannot say, they wait and ask again within the
// route's retry policy, and fail past it: a step never runs on a guess.
func (r *Reconciler) stillOpen(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, target *problemhookv1alpha1.NotificationTarget, ir *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, held []int, resolvedBy string, now time.Time) (bool, error) {
	key := outcall.NewKey[*dynatrace.Problem](ev.UID, "open/"+ir.Name+"/"+action.Name)
	first := &ev.Status.Actions[held[0]]
	if first.NextAttemptTime != nil && first.NextAttemptTime.After(now) && !outcall.Running(r.calls, key) {
		// A check that failed is made again at its time.
		return false, nil
	}
	closed, unanswered, err := r.closedBecause(ctx, ev, target, resolvedBy, key)
	switch {
	case errors.Is(err, errCallsPending):
		next := metav1.NewTime(ceilSecond(now.Add(callsPendingRecheck)))
		for _, i := range held {
			a := &ev.Status.Actions[i]
			a.NextAttemptTime, a.Message = &next, "Asking Dynatrace whether the problem is still open"
		}
		return false, nil
	case err != nil:
		return false, err
	case unanswered != nil:
		limit, backoff := ir.RetryPolicy()
		failed := first.FailedChecks + 1
		if failed > limit {
			for _, i := range held {
				a := &ev.Status.Actions[i]
				a.FailedChecks, a.NextAttemptTime = failed, nil
				r.settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("Not started: Dynatrace could not say whether the problem is still open after %d attempts: %v", failed, unanswered))
			}
			r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "OpenCheckFailed", "CheckOpen", "IntegrationRoute %s action %s: %s", ir.Name, action.Name, first.Message)
			return false, nil
		}
		next := metav1.NewTime(ceilSecond(now.Add(backoffAfter(backoff, failed))))
		for _, i := range held {
			a := &ev.Status.Actions[i]
			a.FailedChecks, a.NextAttemptTime = failed, &next
			a.Message = fmt.Sprintf("Waiting: could not ask Dynatrace whether the problem is still open (attempt %d of %d): %v; asking again at %s",
				failed, limit+1, unanswered, next.UTC().Format(time.RFC3339))
		}
		r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "OpenCheckRetrying", "CheckOpen", "IntegrationRoute %s action %s: %s", ir.Name, action.Name, first.Message)
		return false, nil
	case closed != "":
		for _, i := range held {
			a := &ev.Status.Actions[i]
			a.NextAttemptTime = nil
			r.settle(a, problemhookv1alpha1.ActionSkipped, "Skipped: "+closed+" before this step; nothing was created or sent")
		}
		r.Recorder.Eventf(ev, nil, corev1.EventTypeNormal, "StepSkipped", "CheckOpen", "IntegrationRoute %s action %s: %s", ir.Name, action.Name, first.Message)
		return false, nil
	}
	return true, nil
}

// closedBecause says how the problem of ev closed, or "" while it is
// open: its RESOLVED notification stored, or, for a target with a
// Dynatrace API connection, the problem's status read afresh (a closure
// whose notification never arrived counts). unanswered is why Dynatrace
// could not say; err is errCallsPending while it is being asked, or what
// failed in the cluster.
func (r *Reconciler) closedBecause(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, target *problemhookv1alpha1.NotificationTarget, resolvedBy string, key outcall.Key[*dynatrace.Problem]) (closed string, unanswered, err error) {
	if ev.Spec.State != problemhookv1alpha1.StateOpen {
		return "the problem had closed: this event is its " + string(ev.Spec.State) + " notification", nil, nil
	}
	if resolvedBy != "" {
		var resolved problemhookv1alpha1.ProblemEvent
		if err := r.Get(ctx, types.NamespacedName{Namespace: ev.Namespace, Name: resolvedBy}, &resolved); err != nil {
			return "", nil, fmt.Errorf("reading the RESOLVED event %s: %w", resolvedBy, err)
		}
		return fmt.Sprintf("the problem closed at %s (its RESOLVED notification, ProblemEvent %s)", resolved.Spec.ReceivedAt.UTC().Format(time.RFC3339), resolvedBy), nil, nil
	}
	if target == nil || target.Spec.Dynatrace == nil || !ev.Spec.Source.IsDynatrace() || ev.Spec.Test {
		return "", nil, nil
	}
	c, err := r.Dynatrace.For(ctx, r.Client, target)
	if err != nil {
		return "", err, nil
	}
	problem, err, done := outcall.Await(ctx, r.calls, key, client.ObjectKeyFromObject(ev), func(ctx context.Context) (*dynatrace.Problem, error) {
		ctx, cancel := context.WithTimeout(ctx, dtconn.CallTimeout)
		defer cancel()
		return c.GetProblem(ctx, ev.Spec.ProblemID)
	})
	switch {
	case !done:
		return "", nil, errCallsPending
	case err != nil:
		return "", err, nil
	case !strings.EqualFold(problem.Status, "CLOSED"):
		return "", nil, nil
	case problem.EndTime > 0:
		return "the problem closed at " + time.UnixMilli(problem.EndTime).UTC().Format(time.RFC3339) + " in Dynatrace", nil, nil
	}
	return "the problem closed in Dynatrace", nil, nil
}
