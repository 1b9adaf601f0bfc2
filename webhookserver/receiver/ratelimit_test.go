package receiver

import (
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// A target's bucket holds burst notifications, refills at perSecond, and is
// made anew when its limit changes or the target is recreated.
func TestLimiters(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	target := &problemhookv1alpha1.NotificationTarget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dynatrace", UID: "one"},
		Spec: problemhookv1alpha1.NotificationTargetSpec{RateLimit: &problemhookv1alpha1.RateLimit{PerSecond: 2, Burst: 3}}}
	var l limiters
	for i := range 3 {
		ok, _ := l.allow(target, t0)
		g.Expect(ok).To(BeTrue(), "within the burst: %d", i)
	}
	ok, wait := l.allow(target, t0)
	g.Expect(ok).To(BeFalse())
	g.Expect(wait).To(Equal(500 * time.Millisecond))
	ok, _ = l.allow(target, t0.Add(500*time.Millisecond))
	g.Expect(ok).To(BeTrue(), "refilled at 2 a second")

	// A refused notification spends nothing: the next one waits as long.
	ok, wait = l.allow(target, t0.Add(500*time.Millisecond))
	g.Expect(ok).To(BeFalse())
	g.Expect(wait).To(Equal(500 * time.Millisecond))

	// Other targets have buckets of their own.
	other := target.DeepCopy()
	other.Name, other.UID = "guance", "two"
	ok, _ = l.allow(other, t0)
	g.Expect(ok).To(BeTrue())

	// A new limit, or a target recreated under the name, starts full.
	raised := target.DeepCopy()
	raised.Spec.RateLimit.Burst = 10
	for range 10 {
		ok, _ = l.allow(raised, t0.Add(500*time.Millisecond))
		g.Expect(ok).To(BeTrue())
	}
	recreated := raised.DeepCopy()
	recreated.UID = "three"
	ok, _ = l.allow(recreated, t0.Add(500*time.Millisecond))
	g.Expect(ok).To(BeTrue())
	g.Expect(l.buckets).To(HaveLen(2))

	// Sweeping forgets only the buckets idle long enough to be full again:
	// guance's (3 at 2 a second: 1.5 s) but not dynatrace's (10 at 2: 5 s).
	l.sweep(t0.Add(5 * time.Second))
	g.Expect(l.buckets).To(HaveLen(1))
	g.Expect(l.buckets).To(HaveKey(types.NamespacedName{Namespace: "shop", Name: "dynatrace"}))
	l.sweep(t0.Add(5500 * time.Millisecond))
	g.Expect(l.buckets).To(BeEmpty())
}

// Past the limit: 429, and Retry-After in whole seconds, at least one.
func TestThrottle(t *testing.T) {
	g := NewWithT(t)
	target := &problemhookv1alpha1.NotificationTarget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dynatrace"}}
	for _, tc := range []struct {
		wait  time.Duration
		after string
	}{
		{time.Millisecond, "1"},
		{time.Second, "1"},
		{1500 * time.Millisecond, "2"},
		{0, "1"},
	} {
		ref := throttle(target, tc.wait)
		g.Expect(ref.status).To(Equal(http.StatusTooManyRequests))
		g.Expect(ref.header.Get("Retry-After")).To(Equal(tc.after))
		g.Expect(ref.msg).To(Equal("NotificationTarget shop/dynatrace takes at most 50 notifications a second (burst 500) on this replica: retry after " + tc.after + " s"))
	}
}
