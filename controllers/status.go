// Package controllers holds problemhook's reconcilers.
package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

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
