package problemevent

// A person approves or rejects the runs of an action awaiting approval by
// annotating the event (problemhook.io/approve or problemhook.io/reject:
// <action>, with problemhook.io/approve-by or reject-by: <who>), which an
// admission policy allows only to whoever holds the verb approve on
// problemevents and names themselves as the API server authenticated them.

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// decision is one kind of answer a person gives, by its annotations.
type decision struct {
	asked, by string
	decision  problemhookv1alpha1.ApprovalDecision
	verb      string
}

// decisions are taken in this order: a rejection and an approval of the
// same run at once leave it rejected.
var decisions = []decision{
	{problemhookv1alpha1.AnnotationReject, problemhookv1alpha1.AnnotationRejectBy, problemhookv1alpha1.ApprovalRejected, "rejected"},
	{problemhookv1alpha1.AnnotationApprove, problemhookv1alpha1.AnnotationApproveBy, problemhookv1alpha1.ApprovalApproved, "approved"},
}

// decisionAsked reports whether ev carries a person's approval or
// rejection.
func decisionAsked(ev *problemhookv1alpha1.ProblemEvent) bool {
	for _, d := range decisions {
		if _, ok := ev.Annotations[d.asked]; ok {
			return true
		}
	}
	return false
}

// decide acts on a person's approval or rejection: the runs of the named
// action (its name, or route/name) that await approval record the
// decision, who made it and when; approved ones go on to start, rejected
// ones end Skipped. Once that is stored, the annotations are removed. A
// decision that finds no run awaiting approval (made early, or twice) is
// only removed, with a warning on the event: each is acted on once.
func (r *Reconciler) decide(ctx context.Context, w *statusWriter, ev *problemhookv1alpha1.ProblemEvent) error {
	now := metav1.NewTime(r.Now())
	decided := 0
	for _, d := range decisions {
		action, asked := ev.Annotations[d.asked]
		if !asked {
			continue
		}
		by := ev.Annotations[d.by]
		n := 0
		for i := range ev.Status.Actions {
			a := &ev.Status.Actions[i]
			if a.State != problemhookv1alpha1.ActionAwaitingApproval || a.Approval == nil || (action != a.Action && action != a.Route+"/"+a.Action) {
				continue
			}
			a.Approval.Decision, a.Approval.By, a.Approval.Time, a.NextAttemptTime = d.decision, by, &now, nil
			if d.decision == problemhookv1alpha1.ApprovalApproved {
				a.State, a.Message = problemhookv1alpha1.ActionPending, "Approved by "+by
			} else {
				r.settle(a, problemhookv1alpha1.ActionSkipped, "Skipped: rejected by "+by+"; nothing was created or sent")
			}
			n++
		}
		if n == 0 {
			r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "NothingAwaitsApproval", "Approve", "%s %s action %s, but no run of it awaits approval: nothing changed", by, d.verb, action)
			continue
		}
		decided += n
		ctrl.LoggerFrom(ctx).Info("A person decided on runs awaiting approval", "action", action, "decision", d.decision, "by", by, "runs", n)
		r.Recorder.Eventf(ev, nil, corev1.EventTypeNormal, string(d.decision), "Approve", "%s %s action %s: %d runs", by, d.verb, action, n)
	}
	if decided > 0 {
		if err := w.write(ctx, ev); err != nil {
			return err
		}
	}
	// Only the decisions that were acted on are removed: one made
	// meanwhile fails the patch, and comes back.
	base := ev.DeepCopy()
	for _, d := range decisions {
		delete(ev.Annotations, d.asked)
		delete(ev.Annotations, d.by)
	}
	if err := r.Patch(ctx, ev, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("removing the approval annotations of ProblemEvent %s: %w", ev.Name, err)
	}
	w.rebase(ev)
	return nil
}
