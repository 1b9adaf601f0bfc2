package problemevent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
)

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
			ev.Status.Actions[i].Message = controllers.Truncate(ev.Status.Actions[i].Message, fanOutMessage)
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
