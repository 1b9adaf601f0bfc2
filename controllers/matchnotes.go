package controllers

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// DefaultMatchNoteInterval bounds how often a route's lastMatch status is written.
const DefaultMatchNoteInterval = 10 * time.Second

// matchNotes records the event each route last matched, and writes it to
// the route's status at most once an interval. A status write per
// matching route and event would be most of what the API server stores
// for a notification that three routes match; losing a note in a crash
// loses nothing an event needs.
type matchNotes struct {
	client   client.Client
	interval time.Duration

	mu     sync.Mutex
	latest map[types.NamespacedName]matchNote
}

type matchNote struct {
	time  metav1.Time
	event string
}

// note remembers that ir matched ev now.
func (m *matchNotes) note(ir *problemhookv1alpha1.IntegrationRoute, ev *problemhookv1alpha1.ProblemEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.latest == nil {
		m.latest = map[types.NamespacedName]matchNote{}
	}
	m.latest[client.ObjectKeyFromObject(ir)] = matchNote{time: metav1.Now(), event: ev.Name}
}

// Start writes the notes every interval until ctx ends, and once more then.
func (m *matchNotes) Start(ctx context.Context) error {
	ticker := time.NewTicker(m.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			m.flush(ctx)
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			m.flush(flushCtx)
			return nil
		}
	}
}

// flush writes the notes taken since the last flush.
func (m *matchNotes) flush(ctx context.Context) {
	m.mu.Lock()
	notes := m.latest
	m.latest = nil
	m.mu.Unlock()
	for key, n := range notes {
		ir := &problemhookv1alpha1.IntegrationRoute{}
		ir.Namespace, ir.Name = key.Namespace, key.Name
		patch := client.MergeFrom(ir.DeepCopy())
		ir.Status.LastMatchTime, ir.Status.LastMatchedEvent = &n.time, n.event
		if err := client.IgnoreNotFound(m.client.Status().Patch(ctx, ir, patch)); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Recording the last match on IntegrationRoute", "IntegrationRoute", klog.KObj(ir))
		}
	}
}
