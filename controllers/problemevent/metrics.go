package problemevent

import (
	"strings"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/metrics"
)

// countSettled counts the runs that settled between base and ev, once
// their settling is stored.
func countSettled(base, ev *problemhookv1alpha1.ProblemEvent) {
	for i, a := range ev.Status.Actions {
		if !a.State.Settled() || (i < len(base.Status.Actions) && base.Status.Actions[i].State.Settled()) {
			continue
		}
		metrics.Actions.WithLabelValues(ev.Namespace, a.Route, a.Type, strings.ToLower(string(a.State))).Inc()
	}
}
