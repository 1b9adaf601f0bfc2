package v1alpha1

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SetReady sets the Ready condition of an object of the given generation.
func SetReady(conds *[]metav1.Condition, generation int64, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type:               ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            msg,
		ObservedGeneration: generation,
	})
}

// Settled reports whether the event's actions have all ended: its phase
// is Succeeded, Failed or Skipped.
func (in *ProblemEvent) Settled() bool {
	switch in.Status.Phase {
	case PhaseSucceeded, PhaseFailed, PhaseSkipped:
		return true
	}
	return false
}

// The retry policy of a route that gives none: RetryPolicy's defaults.
const (
	DefaultRetryLimit   = 5
	DefaultRetryBackoff = 10 * time.Second
)

// RetryPolicy returns the route's retry limit (how often a failed Job is
// run again, its backoffLimit, and how often a failed message is sent
// again) and the wait before the first retry.
func (in *IntegrationRoute) RetryPolicy() (int32, time.Duration) {
	limit, backoff := int32(DefaultRetryLimit), DefaultRetryBackoff
	if rp := in.Spec.Retry; rp != nil {
		if rp.Limit != nil {
			limit = *rp.Limit
		}
		if rp.Backoff.Duration > 0 {
			backoff = rp.Backoff.Duration
		}
	}
	return limit, backoff
}
