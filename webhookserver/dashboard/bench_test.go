package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// BenchmarkDashboardEvents measures a page of the events table, and the
// overview, with 10,000 events of one target in the manager's cache: the
// first page (sorting every event) and a later page filtered by state,
// against the baseline of listing the events from the cache. The
// overview counts the events of its chart: 1,440 of them in the last
// day's, nearly all in the last week's.
// Run it with `go test ./webhookserver/dashboard -run '^$' -bench Dashboard`.
func BenchmarkDashboardEvents(b *testing.B) {
	const events = 10000
	ctx := context.Background()
	tg := benchTarget(b)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				ev := problemhookv1alpha1.NewProblemEvent(tg, &problemhookv1alpha1.ProblemEventSpec{
					Source: problemhookv1alpha1.FormatDynatrace, ProblemID: fmt.Sprintf("-%d_1669823466223V2", i), DisplayID: fmt.Sprint(i),
					State: problemhookv1alpha1.StateOpen, Title: fmt.Sprintf("Problem %d", i), ReceivedAt: metav1Time(i),
					Payload: fmt.Sprintf(`{"State":"OPEN","ProblemID":"%d","PID":"-%d_1669823466223V2"}`, i, i),
				})
				if err := env.Client.Create(ctx, ev); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range events {
		work <- i
	}
	close(work)
	wg.Wait()
	for {
		var list problemhookv1alpha1.ProblemEventList
		if err := env.Receiver.Cache.List(ctx, &list, client.InNamespace(tg.Namespace)); err != nil {
			b.Fatal(err)
		}
		if len(list.Items) == events {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The baseline: listing the events from the cache, which any page must.
	b.Run("cache list (baseline)", func(b *testing.B) {
		for b.Loop() {
			var list problemhookv1alpha1.ProblemEventList
			if err := env.Receiver.Cache.List(ctx, &list, client.InNamespace(tg.Namespace), client.UnsafeDisableDeepCopy); err != nil {
				b.Fatal(err)
			}
		}
	})
	srv := newDashboard(b)
	for _, path := range []string{
		"/api/events?target=" + tg.Namespace + "/" + tg.Name,
		"/events?target=" + tg.Namespace + "/" + tg.Name,
		"/events?target=" + tg.Namespace + "/" + tg.Name + "&state=OPEN&page=100",
		"/api/overview",
		"/api/overview?range=7d",
		"/",
		"/?range=7d",
	} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					b.Fatal(err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %s", path, resp.Status)
				}
			}
		})
	}
}

// benchTarget creates a namespace and a target with no auth in it; the
// namespace is deleted when the benchmark ends.
func benchTarget(b *testing.B) *problemhookv1alpha1.NotificationTarget {
	b.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "dashboard-bench-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = env.Client.Delete(ctx, ns) })
	tg := &problemhookv1alpha1.NotificationTarget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "dynatrace"},
		Spec: problemhookv1alpha1.NotificationTargetSpec{Format: problemhookv1alpha1.FormatDynatrace,
			Auth: problemhookv1alpha1.WebhookAuth{None: &problemhookv1alpha1.NoAuth{}}},
	}
	if err := env.Client.Create(ctx, tg); err != nil {
		b.Fatal(err)
	}
	return tg
}

// benchStart is when the benchmark's events are received from, backwards.
var benchStart = time.Now()

// metav1Time spreads events over the last days, one a minute, so that the
// overview's charts count them.
func metav1Time(i int) metav1.Time {
	return metav1.NewTime(benchStart.Add(-time.Duration(i) * time.Minute))
}
