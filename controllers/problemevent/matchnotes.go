package problemevent

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/coalesce"
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
	// now tells the time a match is noted at.
	now func() time.Time
	// latest holds the name of the event each route matched last.
	latest coalesce.Latest[types.NamespacedName, string]
}

// note remembers that ir matched ev now.
func (m *matchNotes) note(ir *problemhookv1alpha1.IntegrationRoute, ev *problemhookv1alpha1.ProblemEvent) {
	m.latest.Note(client.ObjectKeyFromObject(ir), m.now(), ev.Name)
}

// Start writes the notes every interval until ctx ends, and once more then.
func (m *matchNotes) Start(ctx context.Context) error {
	m.latest.Run(ctx, m.interval, m.write, func(key types.NamespacedName, err error) {
		ctrl.LoggerFrom(ctx).Error(err, "Recording the last match on IntegrationRoute", "IntegrationRoute", key)
	})
	return nil
}

// write records on the route that it matched event at.
func (m *matchNotes) write(ctx context.Context, key types.NamespacedName, at time.Time, event string) error {
	ir := &problemhookv1alpha1.IntegrationRoute{}
	ir.Namespace, ir.Name = key.Namespace, key.Name
	patch := client.MergeFrom(ir.DeepCopy())
	ir.Status.LastMatchTime, ir.Status.LastMatchedEvent = &metav1.Time{Time: at}, event
	if err := client.IgnoreNotFound(m.client.Status().Patch(ctx, ir, patch)); err != nil {
		return fmt.Errorf("recording the last match on IntegrationRoute %s: %w", klog.KObj(ir), err)
	}
	return nil
}
