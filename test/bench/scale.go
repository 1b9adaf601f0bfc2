package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// scaleUp stores more and more events and measures the manager's memory
// and the dashboard's list time with each count; then restarts the
// manager and measures how long it takes to go through them all again,
// and that it writes none.
func (b *bench) scaleUp(ctx context.Context) error {
	// What the earlier phases stored goes, and the manager starts afresh:
	// its memory is then that of the events counted here.
	var all problemhookv1alpha1.ProblemEventList
	if err := b.k8s.List(ctx, &all); err != nil {
		return err
	}
	namespaces := map[string]bool{}
	for _, ev := range all.Items {
		namespaces[ev.Namespace] = true
	}
	for ns := range namespaces {
		if err := b.k8s.DeleteAllOf(ctx, &problemhookv1alpha1.ProblemEvent{}, client.InNamespace(ns)); err != nil {
			return err
		}
		if err := b.k8s.DeleteAllOf(ctx, &batchv1.Job{}, client.InNamespace(ns), client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
			return err
		}
	}
	if _, err := b.mgr.Restart(ctx); err != nil {
		return err
	}
	ns, target, err := b.rawNamespace(ctx, "scale")
	if err != nil {
		return err
	}
	if err := b.measureScale(ctx, ns, 0); err != nil {
		return err
	}
	stored := 0
	for _, size := range b.o.scale {
		base := 30_000_000 + stored
		if _, failed, err := parallel(32, size-stored, func(i int) error {
			return b.createRaw(ctx, target,
				fmt.Appendf(nil, `{"State":"OPEN","ProblemID":"%d","PID":"-%d_1669823466223V2","ProblemTitle":"Scale %d"}`, base+i, base+i, base+i))
		}); failed > 0 {
			return fmt.Errorf("storing events: %d failed, first: %w", failed, err)
		}
		stored = size
		if err := b.waitIdle(ctx); err != nil {
			return err
		}
		if err := b.measureScale(ctx, ns, size); err != nil {
			return err
		}
	}

	before, err := b.versions(ctx)
	if err != nil {
		return err
	}
	b.logf("Restarting the manager with %d events stored", len(before))
	started, err := b.mgr.Restart(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		done, err := b.mgr.Metric("controller_runtime_reconcile_total", `controller="problemevent"`)
		if err != nil {
			return err
		}
		depth, err := b.mgr.Metric("workqueue_depth", `name="problemevent"`)
		if err != nil {
			return err
		}
		if int(done) >= len(before) && depth == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v of %d events reconciled 10 minutes after the restart", done, len(before))
		}
		time.Sleep(100 * time.Millisecond)
	}
	idle := time.Since(started)
	after, err := b.versions(ctx)
	if err != nil {
		return err
	}
	written := 0
	for name, rv := range after {
		if before[name] != rv {
			written++
		}
	}
	b.results.Restart = &RestartMeasure{Events: len(before), Seconds: idle.Seconds(), Rewrites: written}
	b.logf("Restart: %d events gone through in %.1f s, %d written", len(before), idle.Seconds(), written)
	return nil
}

// measureScale records the manager's RSS and the dashboard's list time
// with events stored in ns.
func (b *bench) measureScale(ctx context.Context, ns string, events int) error {
	rss, err := b.mgr.RSS()
	if err != nil {
		return err
	}
	var lists []time.Duration
	for range 5 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.mgr.DashboardAddr+"/api/events?target="+ns+"/dynatrace", nil)
		if err != nil {
			return err
		}
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("dashboard: %s", resp.Status)
		}
		lists = append(lists, time.Since(t0))
	}
	slices.Sort(lists)
	s := Scale{Events: events, RSSMiB: float64(rss) / (1 << 20), DashboardListMs: float64(lists[len(lists)/2].Microseconds()) / 1000}
	b.results.Scale = append(b.results.Scale, s)
	b.logf("%d events: RSS %.0f MiB, dashboard list %.1f ms", events, s.RSSMiB, s.DashboardListMs)
	return nil
}

// versions maps every ProblemEvent to its resourceVersion.
func (b *bench) versions(ctx context.Context) (map[string]string, error) {
	var l problemhookv1alpha1.ProblemEventList
	if err := b.k8s.List(ctx, &l); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, ev := range l.Items {
		out[client.ObjectKeyFromObject(&ev).String()] = ev.ResourceVersion
	}
	return out, nil
}
