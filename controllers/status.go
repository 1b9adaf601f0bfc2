// Package controllers holds problemhook's reconcilers.
package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// ClientOptions are the options of the manager's client that the
// reconcilers are written for. A read from the cache waits until the cache
// has seen the client's own earlier writes of that kind: the Jobs a
// reconcile creates wake its event up again at once, and a read of the
// event older than the status just written would try the same Jobs again
// and be refused twice, once because they exist and once for the conflict.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{EnableReadYourWritesConsistency: new(true)}}
}

// patchStatus writes obj's status when it differs from base's: one status
// write per reconcile, and none when nothing changed. A merge patch sends
// only the changed fields, so fields written by others (the receiver's
// lastReceivedTime) are left alone.
//
// opts can add client.MergeFromWithOptimisticLock: then a status computed
// from a stale read of obj is refused with a conflict instead of
// overwriting a newer one, and the reconcile runs again.
func patchStatus[T client.Object](ctx context.Context, c client.Client, base, obj T, status func(T) any, opts ...client.MergeFromOption) error {
	if equality.Semantic.DeepEqual(status(base), status(obj)) {
		return nil
	}
	return client.IgnoreNotFound(c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, opts...)))
}

// referencing maps a Secret to the objects in its namespace that reference
// it, found in list's kind through a field index of referenced Secret names.
func referencing(c client.Reader, list client.ObjectList, index string) handler.MapFunc {
	return func(ctx context.Context, secret client.Object) []reconcile.Request {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, l, client.InNamespace(secret.GetNamespace()), client.MatchingFields{index: secret.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing the objects that reference a Secret", "Secret", klog.KObj(secret), "list", fmt.Sprintf("%T", list))
			return nil
		}
		var reqs []reconcile.Request
		_ = meta.EachListItem(l, func(o runtime.Object) error {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o.(client.Object))})
			return nil
		})
		return reqs
	}
}

// statusWriter writes a ProblemEvent's status from a reconcile, possibly
// more than once: before a message leaves, and at the end. Each write
// carries the resourceVersion of the last one, so a status computed from
// a stale read is refused instead of overwriting a newer one.
type statusWriter struct {
	client client.Client
	base   *problemhookv1alpha1.ProblemEvent
}

func newStatusWriter(c client.Client, ev *problemhookv1alpha1.ProblemEvent) *statusWriter {
	return &statusWriter{client: c, base: ev.DeepCopy()}
}

// write stores ev's status if it changed since the last write, and counts
// the runs that settled in it.
func (w *statusWriter) write(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent) error {
	// A fan-out's runs say what happened in fewer words: the event stays
	// within its bound however many runs it holds.
	if len(ev.Status.Actions) > fanOutRuns {
		for i := range ev.Status.Actions {
			ev.Status.Actions[i].Message = truncate(ev.Status.Actions[i].Message, fanOutMessage)
		}
	}
	if equality.Semantic.DeepEqual(w.base.Status, ev.Status) {
		return nil
	}
	patch, err := eventStatusPatch(w.base, ev)
	if err != nil {
		return err
	}
	if err := client.IgnoreNotFound(w.client.Status().Patch(ctx, ev, client.RawPatch(types.JSONPatchType, patch))); err != nil {
		return err
	}
	countSettled(w.base, ev)
	w.base = ev.DeepCopy()
	return nil
}

// eventStatusPatch is a JSON patch (RFC 6902) from base's status to ev's
// that sends what changed: the fields of the status that changed and, of
// its runs, only those that changed when their number did not. An event
// with a thousand runs sends one run when one run changed. It carries
// base's resourceVersion, so that a status computed from a stale read is
// refused with a conflict instead of overwriting a newer one.
func eventStatusPatch(base, ev *problemhookv1alpha1.ProblemEvent) ([]byte, error) {
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
