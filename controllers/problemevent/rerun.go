package problemevent

// A person asks for an action of an event to run again by annotating the
// event (problemhook.io/rerun: <action>, problemhook.io/rerun-by: <who>),
// which an admission policy allows only to whoever holds the verb rerun on
// problemevents and names themselves as the API server authenticated them.

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// maxReruns bounds the requests an event records.
const maxReruns = 16

// rerun acts on a request to run an action of ev again: each settled run of
// the action goes back to Pending as a new attempt (a new Job for a Job
// action), the request is recorded with who made it and when, and, once
// that is stored, the annotations that made it are removed. A request the
// event already records (the manager stopped between the two writes) is
// only removed: each is acted on once.
func (r *Reconciler) rerun(ctx context.Context, w *statusWriter, ev *problemhookv1alpha1.ProblemEvent) error {
	action, by := ev.Annotations[problemhookv1alpha1.AnnotationRerun], ev.Annotations[problemhookv1alpha1.AnnotationRerunBy]
	requested, err := r.requestTime(ctx, ev)
	if err != nil {
		return err
	}
	if !acted(ev, action, by, requested) {
		n := int32(0)
		for i := range ev.Status.Actions {
			a := &ev.Status.Actions[i]
			if a.Action != action || !a.State.Settled() {
				continue
			}
			*a = problemhookv1alpha1.ActionStatus{Route: a.Route, Action: a.Action, Type: a.Type, Entity: a.Entity, Recipient: a.Recipient,
				State: problemhookv1alpha1.ActionPending, Reruns: a.Reruns + 1, Message: "To run again, as " + by + " asked"}
			n++
		}
		ev.Status.Reruns = append(ev.Status.Reruns, problemhookv1alpha1.Rerun{Action: action, By: by, Time: metav1.NewTime(r.Now()), Requested: requested, Runs: n})
		if len(ev.Status.Reruns) > maxReruns {
			ev.Status.Reruns = ev.Status.Reruns[len(ev.Status.Reruns)-maxReruns:]
		}
		if n > 0 {
			ev.Status.Phase = problemhookv1alpha1.PhasePending
		}
		ctrl.LoggerFrom(ctx).Info("Running an action again", "action", action, "by", by, "runs", n)
		r.Recorder.Eventf(ev, nil, "Normal", "Rerun", "Rerun", "%s asked for action %s to run again: %d runs", by, action, n)
		if err := w.write(ctx, ev); err != nil {
			return err
		}
	}
	// Only the request that was acted on is removed: one made meanwhile
	// fails the patch, and comes back.
	base := ev.DeepCopy()
	delete(ev.Annotations, problemhookv1alpha1.AnnotationRerun)
	delete(ev.Annotations, problemhookv1alpha1.AnnotationRerunBy)
	if err := r.Patch(ctx, ev, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("removing the rerun request of ProblemEvent %s: %w", ev.Name, err)
	}
	w.rebase(ev)
	return nil
}

// acted reports whether ev records the request already.
func acted(ev *problemhookv1alpha1.ProblemEvent, action, by string, requested *metav1.Time) bool {
	for _, rr := range ev.Status.Reruns {
		if rr.Action == action && rr.By == by && equality.Semantic.DeepEqual(rr.Requested, requested) {
			return true
		}
	}
	return false
}

// requestTime is when the rerun annotation was last set, as the API
// server's managed fields record it (the cache strips them: the event is
// read from the API server, which a request is rare enough to afford).
func (r *Reconciler) requestTime(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent) (*metav1.Time, error) {
	var fresh problemhookv1alpha1.ProblemEvent
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(ev), &fresh); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	field := `"f:` + problemhookv1alpha1.AnnotationRerun + `"`
	var latest *metav1.Time
	for _, m := range fresh.ManagedFields {
		if m.Subresource != "" || m.FieldsV1 == nil || m.Time == nil || !strings.Contains(m.FieldsV1.GetRawString(), field) {
			continue
		}
		if latest == nil || m.Time.After(latest.Time) {
			latest = m.Time
		}
	}
	return latest, nil
}
