//go:build linux

package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/test/harness/fixtures"
)

// fanOutRoute calls the HTTP endpoint with a body whose three nested
// ranges over the impacted entities stay within the render budget for the
// sample problem's two entities (14 steps) and pass it for 30 (27,930).
var fanOutRoute = httpRoute("fan-out",
	`{{range .ImpactedEntities}}{{range $.ImpactedEntities}}{{range $.ImpactedEntities}}{{end}}{{end}}{{end}}{"event": {{json .Event}}}`)

// templateBombs applies routes whose templates would never end or would
// allocate gigabytes (30 doublings of a string want 8 GiB): each is
// refused when it is checked, naming its field. A route within its budget for the sample problem but past it for
// problems with 30 impacted hosts fails those runs at once. The manager
// neither restarts nor grows.
func (d *drills) templateBombs(ctx context.Context) result {
	var r result
	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	ns, err := d.namespace(ctx, "template-bombs", false, fanOutRoute)
	if err != nil {
		fail("%v", err)
		return r
	}
	rssBefore, err := d.mgr.RSS()
	if err != nil {
		fail("reading the manager's RSS: %v", err)
	}
	bombs := map[string]string{
		"range-forever":   "{{range 9223372036854775807}}{{end}}",
		"nested-ranges":   "{{range 1000}}{{range 1000}}{{range 1000}}{{end}}{{end}}{{end}}",
		"recursion":       `{{define "a"}}{{template "a" .}}{{template "a" .}}{{end}}{{template "a" .}}`,
		"printf-megabyte": `{{printf "%999999d %999999d" 1 2}}`,
		"printf-star":     `{{printf "%*d" 99999999 1}}`,
		"string-doubling": `{{$s := "xxxxxxxx"}}` + strings.Repeat(`{{$s = print $s $s}}`, 30),
	}
	start := time.Now()
	for name, body := range bombs {
		ir := &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{{Name: "hook",
				HTTP: &problemhookv1alpha1.HTTPAction{URL: d.hook.URL, Body: body}}}}}
		if err := d.kube.Create(ctx, ir); err != nil {
			fail("creating route %s: %v", name, err)
		}
	}
	refused := 0
	for name := range bombs {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var ir problemhookv1alpha1.IntegrationRoute
			err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ir)
			c := meta.FindStatusCondition(ir.Status.Conditions, problemhookv1alpha1.ConditionReady)
			if err == nil && c != nil && c.Status == metav1.ConditionFalse {
				if c.Reason != problemhookv1alpha1.ReasonInvalidTemplate || !strings.HasPrefix(c.Message, "spec.actions[0].http.body: ") {
					fail("route %s: Ready=False %s %q, want InvalidTemplate naming spec.actions[0].http.body", name, c.Reason, c.Message)
				}
				refused++
				break
			}
			if time.Now().After(deadline) {
				fail("route %s: not refused within 30s (condition %+v, error %v)", name, c, err)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	checked := time.Since(start)

	// Twenty problems with 30 hosts: the fan-out route's runs fail at once,
	// before anything is sent (no attempt).
	notes := problems("bomb", 20)
	for i := range notes {
		notes[i].Entities = 30
	}
	s := d.sender(d.mgr, ns)
	sent := time.Now()
	for _, n := range notes {
		if o := s.post(ctx, n); !o.stored() {
			fail("notification %s: %d %s %v", n.PID, o.status, o.result, o.err)
		}
	}
	failedAtOnce := 0
	var slowest time.Duration
	for _, n := range notes {
		name := problemhookv1alpha1.EventName(fixtures.TargetName, n.PID, problemhookv1alpha1.StateOpen)
		deadline := time.Now().Add(60 * time.Second)
		for {
			var ev problemhookv1alpha1.ProblemEvent
			err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ev)
			i := slices.IndexFunc(ev.Status.Actions, func(a problemhookv1alpha1.ActionStatus) bool { return a.Route == "fan-out" })
			if err == nil && i >= 0 && ev.Status.Actions[i].State.Settled() {
				a := ev.Status.Actions[i]
				if a.State != problemhookv1alpha1.ActionFailed || a.Attempts != 0 || !strings.Contains(a.Message, "the template loops or calls templates more than 10000 times") {
					fail("event %s: fan-out run %s after %d attempts: %q", name, a.State, a.Attempts, a.Message)
				} else {
					failedAtOnce++
				}
				slowest = max(slowest, time.Since(sent))
				break
			}
			if time.Now().After(deadline) {
				fail("event %s: the fan-out run did not settle within 60s (error %v)", name, err)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	select {
	case <-d.mgr.Exited():
		fail("the manager exited")
	default:
	}
	rssAfter, err := d.mgr.RSS()
	if err != nil {
		fail("reading the manager's RSS: %v", err)
	}
	if grew := rssAfter - rssBefore; grew > 64<<20 {
		fail("the manager's RSS grew by %d MiB", grew>>20)
	}
	r.Counts = fmt.Sprintf("%d bombs refused as InvalidTemplate within %s; %d of %d runs past the budget failed at once, the last %s after its notification; manager RSS %d -> %d MiB",
		refused, checked.Round(100*time.Millisecond), failedAtOnce, len(notes), slowest.Round(100*time.Millisecond), rssBefore>>20, rssAfter>>20)
	return r
}

// flood sends 3,000 notifications as fast as 32 connections can to one
// target with the default rate limit (50 a second, burst 500): past it the
// receiver answers 429 with Retry-After and stores nothing; everything it
// acknowledged is stored, and it still takes notifications afterwards.
func (d *drills) flood(ctx context.Context) result {
	var r result
	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	ns, err := d.namespace(ctx, "flood", false, "")
	if err != nil {
		fail("%v", err)
		return r
	}
	// The fixture's target has the highest limit there is; this one has the default.
	var nt problemhookv1alpha1.NotificationTarget
	if err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: fixtures.TargetName}, &nt); err != nil {
		fail("reading the target: %v", err)
		return r
	}
	base := nt.DeepCopy()
	nt.Spec.RateLimit = &problemhookv1alpha1.RateLimit{PerSecond: problemhookv1alpha1.DefaultRateLimitPerSecond, Burst: problemhookv1alpha1.DefaultRateLimitBurst}
	if err := d.kube.Patch(ctx, &nt, client.MergeFrom(base)); err != nil {
		fail("setting the default rate limit: %v", err)
		return r
	}
	s := d.sender(d.mgr, ns)
	// The receiver's cache sees the new limit before the flood.
	time.Sleep(2 * time.Second)
	start := time.Now()
	results := burst(ctx, func(int) sender { return s }, problems("flood", 3000), 32, 3000, nil)
	took := time.Since(start)
	var stored, throttled, other int
	var slowest time.Duration
	for key, attempts := range results {
		o := attempts[len(attempts)-1]
		slowest = max(slowest, o.done.Sub(o.sent))
		switch {
		case o.stored():
			stored++
		case o.status == http.StatusTooManyRequests:
			throttled++
			if o.retryAfter == "" || o.retryAfter == "0" {
				fail("%s: 429 without Retry-After", key)
			}
		default:
			other++
			fail("%s: %d %s %v", key, o.status, o.result, o.err)
		}
	}
	if budget := problemhookv1alpha1.DefaultRateLimitBurst + int(problemhookv1alpha1.DefaultRateLimitPerSecond*(took.Seconds()+1)); stored > budget {
		fail("%d stored in %s, more than the bucket allows (%d)", stored, took.Round(time.Millisecond), budget)
	}
	var events problemhookv1alpha1.ProblemEventList
	if err := d.kube.List(ctx, &events, client.InNamespace(ns)); err != nil {
		fail("listing events: %v", err)
	}
	// The drills' readiness check stored the test notification too.
	if got := len(events.Items) - 1; got != stored {
		fail("%d acknowledged, %d stored", stored, got)
	}
	throttledMetric, err := d.mgr.Metric(metrics.ReceiverNotificationsName, `namespace="`+ns+`"`, `result="`+metrics.ResultThrottled+`"`)
	if err != nil || int(throttledMetric) != throttled {
		fail("metric throttled = %v (%v), want %d", throttledMetric, err, throttled)
	}
	// A second later the bucket holds notifications again.
	time.Sleep(time.Second)
	if o := s.post(ctx, notification{PID: "flood-after_1700000000000V2", State: "OPEN", Display: "99"}); !o.stored() {
		fail("after the flood: %d %s %v", o.status, o.result, o.err)
	}
	select {
	case <-d.mgr.Exited():
		fail("the manager exited")
	default:
	}
	r.Counts = fmt.Sprintf("3000 notifications in %s from 32 connections: %d stored, %d answered 429 + Retry-After, %d other; slowest answer %s; taken again a second later",
		took.Round(time.Millisecond), stored, throttled, other, slowest.Round(time.Millisecond))
	return r
}

// thousandEntities sends a problem that names 1,000 impacted hosts to a
// route with four per-entity Job actions: the notification is stored and
// routed, the event stays well under what etcd stores and counts what it
// does not hold, its RESOLVED stops what runs, and it settles, saying so
// in its comment.
func (d *drills) thousandEntities(ctx context.Context) result {
	var r result
	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	ns, err := d.namespace(ctx, "thousand-entities", true, "")
	if err != nil {
		fail("%v", err)
		return r
	}
	var actions []problemhookv1alpha1.Action
	for i := 1; i <= 4; i++ {
		actions = append(actions, problemhookv1alpha1.Action{Name: fmt.Sprintf("step%d", i), Job: &problemhookv1alpha1.JobAction{
			PerImpactedEntity: true, Parallelism: new(int32(100)),
			Template: runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"step","image":"busybox:1.36","args":["$(ENTITY_ID)"]}]}}}}`)},
		}})
	}
	if err := d.kube.Create(ctx, &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fanout"},
		Spec: problemhookv1alpha1.IntegrationRouteSpec{Actions: actions}}); err != nil {
		fail("creating the route: %v", err)
		return r
	}
	time.Sleep(time.Second) // the manager's cache sees the route
	n := notification{PID: "thousand-0001_1700000000000V2", State: "OPEN", Display: "1", Entities: 1000}
	d.addProblems([]notification{n})
	s := d.sender(d.mgr, ns)
	if o := s.deliver(ctx, n, time.Now().Add(30*time.Second)); !o[len(o)-1].stored() {
		fail("the notification was not stored: %d %s", o[len(o)-1].status, o[len(o)-1].result)
		return r
	}
	key := client.ObjectKey{Namespace: ns, Name: problemhookv1alpha1.EventName(fixtures.TargetName, n.PID, problemhookv1alpha1.StateOpen)}
	var ev problemhookv1alpha1.ProblemEvent
	routed := func() bool { return d.kube.Get(ctx, key, &ev) == nil && len(ev.Status.Actions) > 0 }
	for deadline := time.Now().Add(30 * time.Second); !routed() && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	if !routed() {
		fail("the event was not routed within 30s")
		return r
	}
	data, _ := json.Marshal(&ev)
	omitted := 0
	for _, o := range ev.Status.Omitted {
		omitted += int(o.Omitted)
	}
	if len(ev.Status.Actions)+omitted != 4000 {
		fail("%d runs held and %d omitted: %d asked for, want 4000", len(ev.Status.Actions), omitted, len(ev.Status.Actions)+omitted)
	}
	if len(data) > 1<<20 {
		fail("the event takes %d KiB, not well under 1 MiB", len(data)>>10)
	}
	resolved := time.Now()
	n.State = "RESOLVED"
	if o := s.deliver(ctx, n, time.Now().Add(30*time.Second)); !o[len(o)-1].stored() {
		fail("the RESOLVED was not stored: %d %s", o[len(o)-1].status, o[len(o)-1].result)
		return r
	}
	settledAndCommented := func() bool {
		return d.kube.Get(ctx, key, &ev) == nil && meta.IsStatusConditionTrue(ev.Status.Conditions, problemhookv1alpha1.ConditionReady) &&
			ev.Status.Comment != nil && ev.Status.Comment.Posted
	}
	for deadline := time.Now().Add(60 * time.Second); !settledAndCommented() && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	if !settledAndCommented() {
		fail("not settled and commented within 60s of its RESOLVED: phase %s, %s", ev.Status.Phase, ev.Status.Summary)
		return r
	}
	if !strings.Contains(ev.Status.Comment.Message, "for 256 of 1000 impacted entities") {
		fail("the comment does not say what ran of what: %q", ev.Status.Comment.Message)
	}
	r.Counts = fmt.Sprintf("1 notification naming 1000 hosts, 4 per-entity actions: stored; %d runs in %d KiB (etcd holds 1.5 MiB), %d omitted and counted; %s; settled and commented %s after its RESOLVED",
		len(ev.Status.Actions), len(data)>>10, omitted, ev.Status.Summary, time.Since(resolved).Round(100*time.Millisecond))
	return r
}
