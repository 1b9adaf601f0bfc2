package notificationtarget

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
// its Jobs and lose its comment; it brings the target back here when it
// settles. It returns when the next kept event passes maxAge, or 0.
//
// It runs for every new event, so it reads the cache's events without
// copying them, and does nothing more while a target is within maxEvents
// and has no maxAge.
func (r *Reconciler) enforceRetention(ctx context.Context, target *problemhookv1alpha1.NotificationTarget, now time.Time) (time.Duration, error) {
	ret := problemhookv1alpha1.Retention{
		MaxEvents: new(int32(problemhookv1alpha1.DefaultMaxEvents)),
		MaxBytes:  resource.NewQuantity(problemhookv1alpha1.DefaultMaxBytes, resource.BinarySI),
	}
	if target.Spec.Retention != nil {
		ret = *target.Spec.Retention
	}
	var list problemhookv1alpha1.ProblemEventList
	if err := r.List(ctx, &list, client.InNamespace(target.Namespace), client.MatchingLabels{problemhookv1alpha1.LabelTarget: target.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("listing the events of NotificationTarget %s: %w", target.Name, err)
	}
	size := r.sizes.measure(client.ObjectKeyFromObject(target), list.Items)
	if ret.MaxAge == nil && (ret.MaxEvents == nil || len(list.Items) <= int(*ret.MaxEvents)) &&
		(ret.MaxBytes == nil || totalSize(list.Items, size) <= ret.MaxBytes.Value()) {
		return 0, nil
	}
	past, recheck := retentionPlan(list.Items, ret, now, size)
	for _, ev := range past {
		// Only the event that was read: one recreated under its name since is not past anything.
		del := &problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Namespace: ev.Namespace, Name: ev.Name}}
		err := r.Delete(ctx, del, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &ev.UID})
		if client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return 0, fmt.Errorf("deleting ProblemEvent %s past retention: %w", ev.Name, err)
		}
		ctrl.LoggerFrom(ctx).V(1).Info("Deleted ProblemEvent past retention", "ProblemEvent", klog.KObj(del))
	}
	return recheck, nil
}

// retentionPlan returns the settled events past ret, oldest first, and
// when the oldest event kept passes maxAge (0 without one). Events that
// have not settled are kept and set no deadline: they come back through
// the watch when they settle, rather than bringing the target back every
// second while they run. size tells an event's size in bytes. It sorts
// events.
func retentionPlan(events []problemhookv1alpha1.ProblemEvent, ret problemhookv1alpha1.Retention, now time.Time,
	size func(*problemhookv1alpha1.ProblemEvent) int64) (past []*problemhookv1alpha1.ProblemEvent, recheck time.Duration) {
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
	var excessBytes int64
	if ret.MaxBytes != nil {
		excessBytes = totalSize(events, size) - ret.MaxBytes.Value()
	}
	for i := range events {
		ev := &events[i]
		if !ev.Settled() {
			continue
		}
		expired := ret.MaxAge != nil && now.Sub(receivedAt(ev)) > ret.MaxAge.Duration
		if expired || excess > 0 || excessBytes > 0 {
			excess--
			excessBytes -= size(ev)
			past = append(past, ev)
			continue
		}
		if ret.MaxAge != nil && recheck == 0 {
			recheck = min(max(receivedAt(ev).Add(ret.MaxAge.Duration).Sub(now), time.Second), maxRetentionRecheck)
		}
	}
	return past, recheck
}

// receivedAt is when the event's notification arrived, which is what its
// age counts from.
func receivedAt(ev *problemhookv1alpha1.ProblemEvent) time.Time {
	if t := ev.Spec.ReceivedAt; !t.IsZero() {
		return t.Time
	}
	return ev.CreationTimestamp.Time
}

// totalSize adds up the sizes of events.
func totalSize(events []problemhookv1alpha1.ProblemEvent, size func(*problemhookv1alpha1.ProblemEvent) int64) int64 {
	var total int64
	for i := range events {
		total += size(&events[i])
	}
	return total
}

// eventSizes remembers the size of each event's JSON, the form etcd stores
// a custom resource in, by its resourceVersion: retention runs for every
// new event and looks at all of the target's, and encodes each version of
// an event once.
type eventSizes struct {
	mu       sync.Mutex
	byTarget map[types.NamespacedName]map[types.UID]eventSize
}

type eventSize struct {
	version string
	bytes   int64
}

// measure returns the size of each of events, the target's, and forgets
// the sizes of the target's events that are gone.
func (s *eventSizes) measure(target types.NamespacedName, events []problemhookv1alpha1.ProblemEvent) func(*problemhookv1alpha1.ProblemEvent) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := s.byTarget[target]
	sizes := make(map[types.UID]eventSize, len(events))
	for i := range events {
		ev := &events[i]
		size, ok := known[ev.UID]
		if !ok || size.version != ev.ResourceVersion {
			size = eventSize{version: ev.ResourceVersion, bytes: encodedSize(ev)}
		}
		sizes[ev.UID] = size
	}
	if s.byTarget == nil {
		s.byTarget = map[types.NamespacedName]map[types.UID]eventSize{}
	}
	s.byTarget[target] = sizes
	return func(ev *problemhookv1alpha1.ProblemEvent) int64 { return sizes[ev.UID].bytes }
}

// forget drops what s knows of a deleted target's events.
func (s *eventSizes) forget(target types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byTarget, target)
}

// encodedSize is the size of ev's JSON.
func encodedSize(ev *problemhookv1alpha1.ProblemEvent) int64 {
	var n countingWriter
	if err := json.NewEncoder(&n).Encode(ev); err != nil {
		return 0 // an event read from the API server encodes
	}
	return int64(n)
}

// countingWriter counts what is written to it and keeps none of it.
type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}
