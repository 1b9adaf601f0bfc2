// Package statuspatch writes the status of problemhook's objects as
// patches of what changed, never as updates of the whole object: a merge
// patch for targets and routes, and for events, whose runs can number a
// thousand, a JSON patch (RFC 6902) that sends only the runs that changed.
package statuspatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// Merge writes obj's status when it differs from base's: one status
// write per reconcile, and none when nothing changed. A merge patch sends
// only the changed fields, so fields written by others (the receiver's
// lastReceivedTime) are left alone.
//
// opts can add client.MergeFromWithOptimisticLock: then a status computed
// from a stale read of obj is refused with a conflict instead of
// overwriting a newer one, and the reconcile runs again.
func Merge[T client.Object](ctx context.Context, c client.Client, base, obj T, status func(T) any, opts ...client.MergeFromOption) error {
	if equality.Semantic.DeepEqual(status(base), status(obj)) {
		return nil
	}
	return client.IgnoreNotFound(c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, opts...)))
}

// Event is a JSON patch (RFC 6902) from base's status to ev's
// that sends what changed: the fields of the status that changed and, of
// its runs, only those that changed when their number did not. An event
// with a thousand runs sends one run when one run changed. It carries
// base's resourceVersion, so that a status computed from a stale read is
// refused with a conflict instead of overwriting a newer one.
func Event(base, ev *problemhookv1alpha1.ProblemEvent) ([]byte, error) {
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value,omitempty"`
	}
	ops := []op{{Op: "replace", Path: "/metadata/resourceVersion", Value: base.ResourceVersion}}
	fields := func(st *problemhookv1alpha1.ProblemEventStatus) (map[string]json.RawMessage, error) {
		data, err := json.Marshal(st)
		if err != nil {
			return nil, err
		}
		m := map[string]json.RawMessage{}
		return m, json.Unmarshal(data, &m)
	}
	was, err := fields(&base.Status)
	if err != nil {
		return nil, err
	}
	is, err := fields(&ev.Status)
	if err != nil {
		return nil, err
	}
	if len(was) == 0 {
		// A status never written: it may not exist to add fields to.
		ops = append(ops, op{Op: "add", Path: "/status", Value: ev.Status})
		return json.Marshal(ops)
	}
	keys := make([]string, 0, len(was)+len(is))
	for k := range was {
		keys = append(keys, k)
	}
	for k := range is {
		if _, ok := was[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		before, hadIt := was[k]
		after, hasIt := is[k]
		path := "/status/" + k
		switch {
		case !hasIt:
			ops = append(ops, op{Op: "remove", Path: path})
		case !hadIt:
			ops = append(ops, op{Op: "add", Path: path, Value: after})
		case bytes.Equal(before, after):
		case k == "actions" && len(base.Status.Actions) == len(ev.Status.Actions):
			for i := range ev.Status.Actions {
				if !equality.Semantic.DeepEqual(base.Status.Actions[i], ev.Status.Actions[i]) {
					ops = append(ops, op{Op: "replace", Path: fmt.Sprintf("%s/%d", path, i), Value: ev.Status.Actions[i]})
				}
			}
		default:
			ops = append(ops, op{Op: "replace", Path: path, Value: after})
		}
	}
	return json.Marshal(ops)
}
