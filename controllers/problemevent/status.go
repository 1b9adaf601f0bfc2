package problemevent

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/statuspatch"
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
	patch, err := statuspatch.Event(w.base, ev)
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

// rebase takes ev's resourceVersion after a write of its metadata, which
// left its status as the last write stored it: the next status write is
// not refused for a change this reconcile made itself.
func (w *statusWriter) rebase(ev *problemhookv1alpha1.ProblemEvent) {
	w.base.ResourceVersion = ev.ResourceVersion
}
