package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
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

// Referencing maps a Secret to the objects in its namespace that reference
// it, found in list's kind through a field index of referenced Secret names.
func Referencing(c client.Reader, list client.ObjectList, index string) handler.MapFunc {
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
