package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// maxRetentionRecheck bounds how long a target with a maxAge waits before
// it looks at its events again.
const maxRetentionRecheck = time.Hour

// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents,verbs=get;list;watch;delete

// enforceRetention deletes the target's oldest ProblemEvents beyond its
// retention, and through their owner references their Jobs. An event whose
// actions have not settled is kept until they have: deleting it would stop
// its Jobs and lose its comment. It returns when to look again for events
// that will pass maxAge, or 0.
func (r *NotificationTargetReconciler) enforceRetention(ctx context.Context, target *problemhookv1alpha1.NotificationTarget, now time.Time) (time.Duration, error) {
	ret := target.Spec.Retention
	if ret == nil || (ret.MaxAge == nil && ret.MaxEvents == nil) {
		return 0, nil
	}
	var list problemhookv1alpha1.ProblemEventList
	if err := r.List(ctx, &list, client.InNamespace(target.Namespace), client.MatchingLabels{problemhookv1alpha1.LabelTarget: target.Name}); err != nil {
		return 0, fmt.Errorf("listing the events of NotificationTarget %s: %w", target.Name, err)
	}
	events := list.Items
	slices.SortFunc(events, func(a, b problemhookv1alpha1.ProblemEvent) int {
		if c := receivedAt(&a).Compare(receivedAt(&b)); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	excess := 0
	if ret.MaxEvents != nil {
		excess = len(events) - int(*ret.MaxEvents)
	}
	var recheck time.Duration
	kept := 0
	for i := range events {
		ev := &events[i]
		expired := ret.MaxAge != nil && now.Sub(receivedAt(ev)) > ret.MaxAge.Duration
		if !settled(ev) || (!expired && excess <= 0) {
			kept++
			if ret.MaxAge != nil && recheck == 0 {
				recheck = max(receivedAt(ev).Add(ret.MaxAge.Duration).Sub(now), time.Second)
			}
			continue
		}
		excess--
		if err := r.Delete(ctx, ev, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return 0, fmt.Errorf("deleting ProblemEvent %s past retention: %w", ev.Name, err)
		}
		ctrl.LoggerFrom(ctx).V(1).Info("Deleted ProblemEvent past retention", "ProblemEvent", klog.KObj(ev), "expired", expired)
	}
	if ret.MaxAge != nil && kept > 0 {
		return min(recheck, maxRetentionRecheck), nil
	}
	return 0, nil
}

// settled reports whether an event's actions have all ended.
func settled(ev *problemhookv1alpha1.ProblemEvent) bool {
	switch ev.Status.Phase {
	case problemhookv1alpha1.PhaseSucceeded, problemhookv1alpha1.PhaseFailed, problemhookv1alpha1.PhaseSkipped:
		return true
	}
	return false
}

// receivedAt is when the event's notification arrived, which is what its
// age counts from.
func receivedAt(ev *problemhookv1alpha1.ProblemEvent) time.Time {
	if t := ev.Spec.ReceivedAt; !t.IsZero() {
		return t.Time
	}
	return ev.CreationTimestamp.Time
}
