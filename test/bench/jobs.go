package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// eventToJob posts notifications at 100/s to a namespace with 10 routes,
// 3 of which match, and measures from each POST to each of its Jobs being
// seen by a watch. Right before, its pipeline: a bare client doing the
// same writes at the same rate, with the manager stopped.
func (b *bench) eventToJob(ctx context.Context) error {
	const rate, routes, matching = 100, 10, 3
	ns, err := b.namespace(ctx, "jobs")
	if err != nil {
		return err
	}
	// The routes' Jobs are created as their ServiceAccount, as in a
	// cluster where no route acts with the operator's rights.
	if err := b.jobsServiceAccount(ctx, ns); err != nil {
		return err
	}
	matches := map[string]*problemhookv1alpha1.IntegrationRoute{}
	for r := range routes {
		severity := "CUSTOM_ALERT"
		if r < matching {
			severity = "AVAILABILITY"
		}
		ir := &problemhookv1alpha1.IntegrationRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("route-%d", r)},
			Spec: problemhookv1alpha1.IntegrationRouteSpec{
				ServiceAccountName: jobsServiceAccount,
				Match:              problemhookv1alpha1.RouteMatch{Severities: []string{severity}},
				Actions: []problemhookv1alpha1.Action{{Name: "legacy", Job: &problemhookv1alpha1.JobAction{Template: runtime.RawExtension{
					Raw: []byte(`{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"legacy","image":"busybox:1.36","args":["$(PROBLEM_ID)"]}]}}}}`),
				}}}},
			},
		}
		if err := b.k8s.Create(ctx, ir); err != nil {
			return err
		}
		if r < matching {
			matches[ir.Name] = ir
		}
	}
	if err := b.waitRoutesReady(ctx, ns, routes); err != nil {
		return err
	}
	// When each Job is first seen, and the event it is for.
	jw, err := b.watchFirst(ctx, ns, &batchv1.JobList{}, func(o client.Object) (string, bool) {
		return o.GetLabels()[problemhookv1alpha1.LabelEvent], true
	})
	if err != nil {
		return err
	}
	defer jw.stop()

	body := func(id int) string {
		return fmt.Sprintf(`{"State":"OPEN","ProblemID":"%d","PID":"-%d_1669823466223V2","ProblemSeverity":"AVAILABILITY"}`, id, id)
	}
	// What the leader writes for such a notification, to do the same in
	// the pipeline.
	running, err := b.leaderStatus(ctx, ns, body(29_999_999), func(ev *problemhookv1alpha1.ProblemEvent) bool {
		return ev.Status.Phase == problemhookv1alpha1.PhaseRunning
	})
	if err != nil {
		return err
	}
	if err := b.clearJobs(ctx, ns); err != nil {
		return err
	}

	n := int(rate * b.o.duration.Seconds())
	name := fmt.Sprintf("POST to Job, %d/s, %d of %d routes", rate, matching, routes)
	pipelineName := name + ", pipeline"
	target := &problemhookv1alpha1.NotificationTarget{}
	if err := b.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dynatrace"}, target); err != nil {
		return err
	}
	err = b.withoutManager(ctx, func() error {
		err := b.measureWrites(ctx, pipelineName, n, func() error {
			posted := &postTimes{at: map[string]time.Time{}}
			ack := b.openLoop(ctx, rate, n, func(i int) (int, error) {
				posted.add(30_000_000 + i)
				err := b.jobPipeline(ctx, target, []byte(body(30_000_000+i)), matches, &running.Status)
				return http.StatusAccepted, err
			}, http.StatusAccepted)
			if ack.Failed > 0 {
				return fmt.Errorf("%d of the pipeline's notifications failed", ack.Failed)
			}
			l, err := jw.latencies(ctx, pipelineName, posted, matching)
			if err != nil {
				return err
			}
			l.Offered = rate * matching
			b.results.EventToJobPipeline = &l
			b.logf("%s: %d Jobs, %.0f/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms", l.Name, l.N, l.Achieved, l.P50, l.P99, l.Max)
			return nil
		})
		if err != nil {
			return err
		}
		// The leader, started next, finds none of them.
		return b.clearJobs(ctx, ns)
	})
	if err != nil {
		return err
	}

	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	// run posts n notifications numbered from base, and waits for their Jobs.
	run := func(name string, base int) (Latency, error) {
		posted := &postTimes{at: map[string]time.Time{}}
		ack := b.openLoop(ctx, rate, n, func(i int) (int, error) {
			posted.add(base + i)
			return b.post(ctx, hc, ns, body(base+i))
		}, http.StatusAccepted)
		if ack.Failed > 0 {
			return Latency{}, fmt.Errorf("%d notifications not stored", ack.Failed)
		}
		return jw.latencies(ctx, name, posted, matching)
	}
	before, err := b.managerTimes()
	if err != nil {
		return err
	}
	err = b.measureWrites(ctx, name, n, func() error {
		l, err := run(name, 20_000_000)
		if err != nil {
			return err
		}
		l.Offered = rate * matching
		l.Baseline = pipelineName
		b.results.EventToJob = &l
		after, err := b.managerTimes()
		if err != nil {
			return err
		}
		b.results.EventToJobWhere = after.since(before)
		b.logf("%s: %d Jobs, %.0f/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms", l.Name, l.N, l.Achieved, l.P50, l.P99, l.Max)
		return b.waitIdle(ctx)
	})
	if err != nil {
		return err
	}
	// Profiles of the same load, apart from the figures.
	if err := b.clearJobs(ctx, ns); err != nil {
		return err
	}
	return b.profiled("post-to-job", func() error {
		_, err := run(name, 40_000_000)
		return err
	})
}

// jobsServiceAccount is the ServiceAccount the bench's routes name: it may
// create and delete Jobs in its namespace, and nothing else.
const jobsServiceAccount = "legacy"

// jobsServiceAccount creates jobsServiceAccount in ns, with its Role.
func (b *bench) jobsServiceAccount(ctx context.Context, ns string) error {
	meta := metav1.ObjectMeta{Namespace: ns, Name: jobsServiceAccount}
	for _, obj := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: meta},
		&rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "create", "delete"},
		}}},
		&rbacv1.RoleBinding{ObjectMeta: meta,
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: jobsServiceAccount},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: jobsServiceAccount}},
		},
	} {
		if err := b.k8s.Create(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}

// waitRoutesReady waits until the n routes of ns are Ready: routes are
// used once Ready.
func (b *bench) waitRoutesReady(ctx context.Context, ns string, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		var l problemhookv1alpha1.IntegrationRouteList
		if err := b.k8s.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return err
		}
		ready := 0
		for _, ir := range l.Items {
			if meta.IsStatusConditionTrue(ir.Status.Conditions, problemhookv1alpha1.ConditionReady) {
				ready++
			}
		}
		if ready == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d routes Ready after 60s", ready, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// clearJobs deletes the events and Jobs of ns and waits until they are
// gone, and the manager, if it runs, is idle.
func (b *bench) clearJobs(ctx context.Context, ns string) error {
	if err := b.waitIdle(ctx); err != nil {
		return err
	}
	if err := b.deleteJobs(ctx, ns); err != nil {
		return err
	}
	if err := b.settle(ctx, ns); err != nil {
		return err
	}
	if err := b.waitGone(ctx, ns, &batchv1.JobList{}, "Jobs"); err != nil {
		return err
	}
	return b.waitIdle(ctx)
}
