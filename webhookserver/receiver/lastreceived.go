package receiver

import (
	"context"
	"encoding/json"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// writeLastReceived writes the noted times to the targets' status every
// StatusInterval, and once more when ctx ends: a burst of notifications
// costs one status write per target, not one each.
func (r *Server) writeLastReceived(ctx context.Context, log logr.Logger) {
	interval := r.StatusInterval
	if interval <= 0 {
		interval = DefaultStatusInterval
	}
	write := func(ctx context.Context, key types.NamespacedName, t time.Time, _ struct{}) error {
		return r.patchLastReceived(ctx, key, t)
	}
	r.lastReceived.Run(ctx, interval, write, func(key types.NamespacedName, err error) {
		log.Error(err, "Writing lastReceivedTime", "NotificationTarget", key)
	})
}

// patchLastReceived moves the target's lastReceivedTime forward to t. A
// merge patch of that one field leaves the rest of the status, which the
// controller owns, untouched.
func (r *Server) patchLastReceived(ctx context.Context, key types.NamespacedName, t time.Time) error {
	var target problemhookv1alpha1.NotificationTarget
	if err := r.Cache.Get(ctx, key, &target); err != nil {
		return client.IgnoreNotFound(err)
	}
	stamp := metav1.NewTime(t.Truncate(time.Second))
	if last := target.Status.LastReceivedTime; last != nil && !last.Before(&stamp) {
		return nil // another replica got there first
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"lastReceivedTime": stamp}})
	if err != nil {
		return err
	}
	return client.IgnoreNotFound(r.Client.Status().Patch(ctx, &target, client.RawPatch(types.MergePatchType, patch)))
}
