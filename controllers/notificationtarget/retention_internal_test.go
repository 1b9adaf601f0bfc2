package notificationtarget

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// Which events retention deletes, oldest first, and when it looks again.
func TestRetentionPlan(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	ev := func(name string, age time.Duration, phase problemhookv1alpha1.EventPhase) problemhookv1alpha1.ProblemEvent {
		return problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name)},
			Spec:   problemhookv1alpha1.ProblemEventSpec{ReceivedAt: metav1.NewTime(now.Add(-age))},
			Status: problemhookv1alpha1.ProblemEventStatus{Phase: phase}}
	}
	const (
		done    = problemhookv1alpha1.PhaseSucceeded
		running = problemhookv1alpha1.PhaseRunning
	)
	maxEvents := func(n int32) problemhookv1alpha1.Retention { return problemhookv1alpha1.Retention{MaxEvents: &n} }
	maxBytes := func(q string) problemhookv1alpha1.Retention {
		return problemhookv1alpha1.Retention{MaxBytes: new(resource.MustParse(q))}
	}
	// Each event is 1Ki, but for big, which is 3Ki.
	size := func(ev *problemhookv1alpha1.ProblemEvent) int64 {
		if ev.Name == "big" {
			return 3 << 10
		}
		return 1 << 10
	}
	maxAge := func(d time.Duration) problemhookv1alpha1.Retention {
		return problemhookv1alpha1.Retention{MaxAge: &metav1.Duration{Duration: d}}
	}
	for _, tc := range []struct {
		name    string
		events  []problemhookv1alpha1.ProblemEvent
		ret     problemhookv1alpha1.Retention
		past    []string
		recheck time.Duration
	}{
		{"within maxEvents", []problemhookv1alpha1.ProblemEvent{ev("a", time.Hour, done)}, maxEvents(2), nil, 0},
		{"the oldest go first, whatever the order listed", []problemhookv1alpha1.ProblemEvent{ev("new", time.Minute, done), ev("old", 3*time.Hour, done), ev("mid", time.Hour, done)},
			maxEvents(1), []string{"old", "mid"}, 0},
		{"a running event is kept, and the next oldest goes instead", []problemhookv1alpha1.ProblemEvent{ev("old", 3*time.Hour, running), ev("mid", time.Hour, done), ev("new", time.Minute, done)},
			maxEvents(2), []string{"mid"}, 0},
		{"past maxAge; the next to expire sets the recheck", []problemhookv1alpha1.ProblemEvent{ev("old", 3*time.Hour, done), ev("new", 90*time.Minute, done)},
			maxAge(2 * time.Hour), []string{"old"}, 30 * time.Minute},
		{"an expired event that still runs sets no deadline: it comes back when it settles", []problemhookv1alpha1.ProblemEvent{ev("old", 3*time.Hour, running)},
			maxAge(2 * time.Hour), nil, 0},
		{"a recheck waits at most an hour", []problemhookv1alpha1.ProblemEvent{ev("young", time.Minute, done)},
			maxAge(30 * 24 * time.Hour), nil, time.Hour},
		{"within maxBytes", []problemhookv1alpha1.ProblemEvent{ev("a", time.Hour, done), ev("b", time.Minute, done)}, maxBytes("2Ki"), nil, 0},
		{"past maxBytes, the oldest go until the rest fit", []problemhookv1alpha1.ProblemEvent{ev("new", time.Minute, done), ev("big", 3*time.Hour, done), ev("old", 4*time.Hour, done), ev("mid", time.Hour, done)},
			maxBytes("2Ki"), []string{"old", "big"}, 0},
		{"past maxBytes, a running event is kept", []problemhookv1alpha1.ProblemEvent{ev("big", 3*time.Hour, running), ev("mid", time.Hour, done), ev("new", time.Minute, done)},
			maxBytes("4Ki"), []string{"mid"}, 0},
		{"a recheck waits at least a second", []problemhookv1alpha1.ProblemEvent{ev("due", 2*time.Hour-time.Millisecond, done)},
			maxAge(2 * time.Hour), nil, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			past, recheck := retentionPlan(tc.events, tc.ret, now, size)
			var names []string
			for _, p := range past {
				names = append(names, p.Name)
			}
			g.Expect(names).To(Equal(tc.past))
			g.Expect(recheck).To(Equal(tc.recheck))
		})
	}
}

// An event's size is measured once a version, and forgotten with it.
func TestEventSizes(t *testing.T) {
	g := NewWithT(t)
	var sizes eventSizes
	target := types.NamespacedName{Namespace: "ns", Name: "t"}
	ev := problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "a", ResourceVersion: "1"},
		Spec: problemhookv1alpha1.ProblemEventSpec{Payload: strings.Repeat("x", 10000)}}
	size := sizes.measure(target, []problemhookv1alpha1.ProblemEvent{ev})
	g.Expect(size(&ev)).To(BeNumerically(">", 10000))
	g.Expect(size(&ev)).To(BeNumerically("<", 10500))

	// The same version is not encoded again, a new one is.
	sizes.byTarget[target]["a"] = eventSize{version: "1", bytes: 7}
	g.Expect(sizes.measure(target, []problemhookv1alpha1.ProblemEvent{ev})(&ev)).To(Equal(int64(7)))
	ev.ResourceVersion = "2"
	g.Expect(sizes.measure(target, []problemhookv1alpha1.ProblemEvent{ev})(&ev)).To(BeNumerically(">", 10000))

	sizes.measure(target, nil)
	g.Expect(sizes.byTarget[target]).To(BeEmpty(), "a deleted event's size is forgotten")
	sizes.forget(target)
	g.Expect(sizes.byTarget).NotTo(HaveKey(target))
}
