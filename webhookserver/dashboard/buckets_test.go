package dashboard

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// bucketEvents are n events of 3 targets spread evenly over the 6 days
// before now, every other one resolved, each with a run that settled
// when it was received.
func bucketEvents(n int, now time.Time) []problemhookv1alpha1.ProblemEvent {
	events := make([]problemhookv1alpha1.ProblemEvent, n)
	for i := range events {
		at := now.Add(-time.Duration(i) * 6 * 24 * time.Hour / time.Duration(n))
		ev := &events[i]
		ev.Namespace, ev.Spec.Target = "shop", fmt.Sprintf("target-%d", i%3)
		ev.Spec.ReceivedAt = metav1.NewTime(at)
		ev.Spec.State = problemhookv1alpha1.StateOpen
		if i%2 == 1 {
			ev.Spec.State = problemhookv1alpha1.StateResolved
		}
		ev.Status.Actions = []problemhookv1alpha1.ActionStatus{{State: problemhookv1alpha1.ActionSucceeded,
			CompletionTime: &metav1.Time{Time: at}}}
	}
	return events
}

func countBuckets(events []problemhookv1alpha1.ProblemEvent, now time.Time) []Bucket {
	c := newBucketCounter(chartRanges[1], now)
	for i := range events {
		c.add(&events[i])
	}
	return c.buckets()
}

// Counting allocates per target and bucket, never per event: a chart of
// 10,000 events allocates what one of 1,000 over the same days does.
func TestBucketsAllocateNothingPerEvent(t *testing.T) {
	now := time.Date(2036, 3, 14, 15, 30, 0, 0, time.UTC)
	few, many := bucketEvents(1000, now), bucketEvents(10000, now)
	a := leastAllocs(func() { countBuckets(few, now) })
	b := leastAllocs(func() { countBuckets(many, now) })
	if b > a {
		t.Errorf("counting 1,000 events allocates %v times, 10,000 events %v times", a, b)
	}
	var sum Counts
	for _, b := range countBuckets(many, now) {
		sum.Open, sum.Resolved, sum.Succeeded = sum.Open+b.Open, sum.Resolved+b.Resolved, sum.Succeeded+b.Succeeded
	}
	if want := (Counts{Open: 5000, Resolved: 5000, Succeeded: 10000}); sum != want {
		t.Errorf("counted %+v, want %+v", sum, want)
	}
}

// leastAllocs is the fewest allocations f made in any of a few
// measurements. AllocsPerRun counts every goroutine's allocations, and
// the package's manager (TestMain) allocates in the background now and
// then: the least of a few is f's own.
func leastAllocs(f func()) float64 {
	least := testing.AllocsPerRun(10, f)
	for range 4 {
		least = min(least, testing.AllocsPerRun(10, f))
	}
	return least
}

// BenchmarkDashboardBuckets measures counting 10,000 events into the
// week's chart alone, without the cache or HTTP.
func BenchmarkDashboardBuckets(b *testing.B) {
	now := time.Now()
	events := bucketEvents(10000, now)
	b.ReportAllocs()
	for b.Loop() {
		countBuckets(events, now)
	}
}
