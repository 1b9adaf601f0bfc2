package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// eventToJob posts notifications at 100/s to a namespace with 10 routes,
// 3 of which match, and measures from each POST to each of its Jobs being
// seen by a watch.
func (b *bench) eventToJob(ctx context.Context) error {
	const rate, routes, matching = 100, 10, 3
	ns, err := b.namespace(ctx, "jobs")
	if err != nil {
		return err
	}
	for r := range routes {
		severity := "CUSTOM_ALERT"
		if r < matching {
			severity = "AVAILABILITY"
		}
		ir := &problemhookv1alpha1.IntegrationRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("route-%d", r)},
			Spec: problemhookv1alpha1.IntegrationRouteSpec{
				Match: problemhookv1alpha1.RouteMatch{Severities: []string{severity}},
				Actions: []problemhookv1alpha1.Action{{Name: "legacy", Job: &problemhookv1alpha1.JobAction{Template: runtime.RawExtension{
					Raw: []byte(`{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"legacy","image":"busybox:1.36","args":["$(PROBLEM_ID)"]}]}}}}`),
				}}}},
			},
		}
		if err := b.k8s.Create(ctx, ir); err != nil {
			return err
		}
	}
	// Routes are used once Ready.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var l problemhookv1alpha1.IntegrationRouteList
		if err := b.k8s.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return err
		}
		ready := 0
		for _, ir := range l.Items {
			for _, c := range ir.Status.Conditions {
				if c.Type == problemhookv1alpha1.ConditionReady && c.Status == metav1.ConditionTrue {
					ready++
				}
			}
		}
		if ready == routes {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d routes Ready after 60s", ready, routes)
		}
		time.Sleep(200 * time.Millisecond)
	}

	wc, err := client.NewWithWatch(b.cfg, client.Options{Scheme: b.k8s.Scheme()})
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	w, err := wc.Watch(watchCtx, &batchv1.JobList{}, client.InNamespace(ns))
	if err != nil {
		return err
	}
	defer w.Stop()
	var mu sync.Mutex
	posted := map[string]time.Time{} // event name → when its POST began
	seen := map[string]time.Time{}   // Job name → when the watch saw it, with its event
	eventOf := map[string]string{}
	go func() {
		for e := range w.ResultChan() {
			job, ok := e.Object.(*batchv1.Job)
			if !ok {
				continue
			}
			mu.Lock()
			if _, dup := seen[job.Name]; !dup {
				seen[job.Name] = time.Now()
				eventOf[job.Name] = job.Labels[problemhookv1alpha1.LabelEvent]
			}
			mu.Unlock()
		}
	}()

	n := int(rate * b.o.duration.Seconds())
	name := fmt.Sprintf("POST to Job, %d/s, %d of %d routes", rate, matching, routes)
	return b.measureWrites(ctx, name, n, func() error {
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		ack := b.openLoop(ctx, rate, n, func(i int) (int, error) {
			pid := fmt.Sprintf("-%d_1669823466223V2", 20_000_000+i)
			mu.Lock()
			posted[problemhookv1alpha1.EventName("dynatrace", pid, problemhookv1alpha1.StateOpen)] = time.Now()
			mu.Unlock()
			return b.post(ctx, hc, ns, fmt.Sprintf(`{"State":"OPEN","ProblemID":"%d","PID":%q,"ProblemSeverity":"AVAILABILITY"}`, 20_000_000+i, pid))
		}, http.StatusAccepted)
		if ack.Failed > 0 {
			return fmt.Errorf("%d notifications not stored", ack.Failed)
		}
		want := n * matching
		deadline = time.Now().Add(5 * time.Minute)
		for {
			mu.Lock()
			got := len(seen)
			mu.Unlock()
			if got >= want {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d Jobs after 5 minutes", got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
		mu.Lock()
		var lat []time.Duration
		var last time.Time
		for job, at := range seen {
			lat = append(lat, at.Sub(posted[eventOf[job]]))
			if at.After(last) {
				last = at
			}
		}
		mu.Unlock()
		var first time.Time
		for _, t := range posted {
			if first.IsZero() || t.Before(first) {
				first = t
			}
		}
		l := latencies(name, lat, last.Sub(first), 0)
		l.Offered = rate * matching
		b.results.EventToJob = &l
		b.logf("%s: %d Jobs, p50 %.1f ms, p99 %.1f ms, max %.1f ms", l.Name, len(lat), l.P50, l.P99, l.Max)
		return b.waitIdle(ctx)
	})
}
