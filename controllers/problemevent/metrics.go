package problemevent

import (
	"strings"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/metrics"
)

// countSettled counts the runs that settled between base and ev, and the
// approval decisions made between them, once ev is stored.
func countSettled(base, ev *problemhookv1alpha1.ProblemEvent) {
	for i, a := range ev.Status.Actions {
		var was *problemhookv1alpha1.ActionStatus
		if i < len(base.Status.Actions) {
			was = &base.Status.Actions[i]
		}
		if a.State.Settled() && (was == nil || !was.State.Settled()) {
			metrics.Actions.WithLabelValues(ev.Namespace, a.Route, a.Type, strings.ToLower(string(a.State))).Inc()
		}
		if decision := approvalDecision(&a); decision != "" && (was == nil || approvalDecision(was) == "") {
			metrics.Approvals.WithLabelValues(ev.Namespace, a.Route, decision).Inc()
		}
	}
}

// approvalDecision is the value of the approvals metric's decision label
// for the run's approval, or "" while it has none.
func approvalDecision(a *problemhookv1alpha1.ActionStatus) string {
	if a.Approval == nil {
		return ""
	}
	switch a.Approval.Decision {
	case problemhookv1alpha1.ApprovalApproved:
		return metrics.ApprovalApproved
	case problemhookv1alpha1.ApprovalRejected:
		return metrics.ApprovalRejected
	case problemhookv1alpha1.ApprovalTimedOut:
		return metrics.ApprovalTimedOut
	}
	return ""
}
