package bench

// The pipeline baselines: a bare client doing exactly the writes the
// leader makes for one notification, the floor the leader is measured
// against.

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/jobs"
	"github.com/problemhook/problemhook/internal/payload"
	"github.com/problemhook/problemhook/internal/routing"
	"github.com/problemhook/problemhook/internal/statuspatch"
)

// withoutManager runs work with the manager stopped, so that nothing but
// work writes, then starts the manager again and waits until it leads.
// Its lease is released when it stops, so it leads again at once.
func (b *bench) withoutManager(ctx context.Context, work func() error) error {
	b.mgr.Stop()
	b.stopped = true
	err := work()
	b.stopped = false
	if err != nil {
		return err
	}
	if err := b.mgr.Start(ctx); err != nil {
		return err
	}
	if err := b.waitLeading(ctx); err != nil {
		return err
	}
	// A new leader reconciles every target and route first.
	return b.waitIdle(ctx)
}

// leaderStatus posts body to the target of ns and returns the event the
// leader stored for it, once the leader has written its status.
func (b *bench) leaderStatus(ctx context.Context, ns, body string, done func(*problemhookv1alpha1.ProblemEvent) bool) (*problemhookv1alpha1.ProblemEvent, error) {
	if _, err := b.post(ctx, http.DefaultClient, ns, body); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l problemhookv1alpha1.ProblemEventList
		if err := b.k8s.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		for i := range l.Items {
			if !l.Items[i].Spec.Test && done(&l.Items[i]) {
				return &l.Items[i], nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the leader did not write the status of the notification to %s within 30s", ns)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// routed reports whether the leader has routed an event.
func routed(ev *problemhookv1alpha1.ProblemEvent) bool { return ev.Status.Phase != "" }

// pipelineCell does, for n notifications of a kind on c workers, what the
// leader writes for each: the create the receiver makes, then the status
// patch its reconciler makes, the same JSON patch of the same status
// (routed's, as the leader wrote it for a notification of this kind),
// with the manager's client settings and the manager stopped. It returns
// how many notifications a second went through both writes, from the first
// create until a watch saw the last status, as the leader's are measured,
// and how long the API server took to answer a status patch, on average.
func (b *bench) pipelineCell(ctx context.Context, kind payloads, c, base int, routed *problemhookv1alpha1.ProblemEventStatus) (perSec, patchMs float64, err error) {
	ns, target, err := b.rawNamespace(ctx, "pipeline-"+kind.name)
	if err != nil {
		return 0, 0, err
	}
	routedAt, err := b.watchRouted(ctx, ns)
	if err != nil {
		return 0, 0, err
	}
	defer routedAt.stop()
	var patching atomic.Int64
	start := time.Now()
	_, failed, firstErr := parallel(c, b.o.n, func(i int) error {
		ev, err := b.createEvent(ctx, target, kind.body(base+i))
		if err != nil {
			return err
		}
		t0 := time.Now()
		err = b.patchStatus(ctx, ev, routed)
		patching.Add(int64(time.Since(t0)))
		return err
	})
	if failed > 0 {
		return 0, 0, fmt.Errorf("pipeline: %d failed, first: %w", failed, firstErr)
	}
	last, err := routedAt.done(ctx, b.o.n)
	if err != nil {
		return 0, 0, fmt.Errorf("pipeline: %w", err)
	}
	patchMs = float64(patching.Load()) / float64(b.o.n) / float64(time.Millisecond)
	return float64(b.o.n) / last.Sub(start).Seconds(), patchMs, b.settle(ctx, ns)
}

// createEvent creates the ProblemEvent the receiver would create for a
// Dynatrace notification to target, and returns it as stored.
func (b *bench) createEvent(ctx context.Context, target *problemhookv1alpha1.NotificationTarget, body []byte) (*problemhookv1alpha1.ProblemEvent, error) {
	spec, err := payload.Parse(problemhookv1alpha1.FormatDynatrace, body)
	if err != nil {
		return nil, err
	}
	spec.ReceivedAt = metav1.Now()
	ev := problemhookv1alpha1.NewProblemEvent(target, spec)
	return ev, b.k8s.Create(ctx, ev)
}

// patchStatus writes status as ev's, with the JSON patch the leader's
// status writer sends for an event it reconciles the first time.
func (b *bench) patchStatus(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, status *problemhookv1alpha1.ProblemEventStatus) error {
	done := ev.DeepCopy()
	done.Status = *status.DeepCopy()
	patch, err := statuspatch.Event(ev, done)
	if err != nil {
		return err
	}
	return b.k8s.Status().Patch(ctx, done, client.RawPatch(types.JSONPatchType, patch))
}

// jobPipeline does for one notification what the leader does when 3 of
// the namespace's routes match it: the event's create, the Job of each
// matching route, built and created as the leader builds and creates it
// (as the route's ServiceAccount), and the status patch that records
// them, the leader's status for such an event (running) with the run's
// Job names and times. The status's runs name the matching routes.
func (b *bench) jobPipeline(ctx context.Context, target *problemhookv1alpha1.NotificationTarget, body []byte, routes map[string]*problemhookv1alpha1.IntegrationRoute, running *problemhookv1alpha1.ProblemEventStatus) error {
	ev, err := b.createEvent(ctx, target, body)
	if err != nil {
		return err
	}
	policy := jobs.Policy{Config: b.cfg, HTTPClient: b.api}
	p := routing.NewProblem(ev)
	status := running.DeepCopy()
	for i := range status.Actions {
		a := &status.Actions[i]
		ir := routes[a.Route]
		action := &ir.Spec.Actions[0]
		job, err := jobs.New(p, ir, action, nil)
		if err != nil {
			return err
		}
		job.Name = jobs.RerunName(job.Name, 0)
		if err := controllerutil.SetControllerReference(ev, job, b.k8s.Scheme()); err != nil {
			return err
		}
		w, err := policy.Writer(b.k8s, ev.Namespace, ir)
		if err != nil {
			return err
		}
		w.OwnsJobs(job)
		if err := w.Create(ctx, job); err != nil {
			return fmt.Errorf("creating Job %s: %w", job.Name, err)
		}
		now := metav1.Now()
		a.Job, a.StartTime, a.Message = job.Name, &now, "Job "+job.Name+" created"
	}
	return b.patchStatus(ctx, ev, status)
}

// deleteJobs deletes the Jobs of ns; with no garbage collector in the
// embedded control plane, deleting their events leaves them.
func (b *bench) deleteJobs(ctx context.Context, ns string) error {
	return b.k8s.DeleteAllOf(ctx, &batchv1.Job{}, client.InNamespace(ns), client.PropagationPolicy(metav1.DeletePropagationBackground))
}
