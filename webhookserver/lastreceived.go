package webhookserver

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

// noteReceived remembers that target received a notification at t. The
// time reaches the target's status in the next writeLastReceived round, so
// that a burst of notifications costs one status write, not one each.
func (r *Receiver) noteReceived(target types.NamespacedName, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastReceived == nil {
		r.lastReceived = map[types.NamespacedName]time.Time{}
	}
	if t.After(r.lastReceived[target]) {
		r.lastReceived[target] = t
	}
}

// writeLastReceived writes the noted times to the targets' status every
// StatusInterval, and once more when ctx ends.
func (r *Receiver) writeLastReceived(ctx context.Context, log logr.Logger) {
	interval := r.StatusInterval
	if interval <= 0 {
		interval = DefaultStatusInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r.flushLastReceived(flushCtx, log)
			cancel()
			return
		case <-ticker.C:
			r.flushLastReceived(ctx, log)
		}
	}
}

func (r *Receiver) flushLastReceived(ctx context.Context, log logr.Logger) {
	r.mu.Lock()
	pending := r.lastReceived
	r.lastReceived = nil
	r.mu.Unlock()
	for key, t := range pending {
		if err := r.patchLastReceived(ctx, key, t); err != nil {
			log.Error(err, "Writing lastReceivedTime", "NotificationTarget", key)
			r.noteReceived(key, t) // try again next round
		}
	}
}

// patchLastReceived moves the target's lastReceivedTime forward to t. A
// merge patch of that one field leaves the rest of the status, which the
// controller owns, untouched.
func (r *Receiver) patchLastReceived(ctx context.Context, key types.NamespacedName, t time.Time) error {
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
