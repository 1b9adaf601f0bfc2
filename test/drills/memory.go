//go:build linux

package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/test/harness/fixtures"
)

// memoryLimit is the Deployment's memory limit, which the manager's peak
// must stay well inside.
const memoryLimit = 256 << 20

// memory does at once what each cost a replica hundreds of MiB before it
// was bounded: a template that doubles a string, a tenant's Dynatrace that
// answers every read with 8 MiB of empty objects (the problem, its
// comments page after page, the catch-up poll), 32 bodies of 1 MiB of
// empty entities at once, and a target's events past its maxBytes. The
// manager's peak RSS is reported against its RSS before, and must stay
// below the Deployment's 256 MiB limit; retention keeps the target within
// maxBytes.
func (d *drills) memory(ctx context.Context) result {
	var r result
	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	hostile := newEmptyObjectsDynatrace()
	defer hostile.Close()
	ns, err := d.namespace(ctx, "memory", false, httpRoute("hook", `{"event": {{json .Event}}}`))
	if err != nil {
		fail("%v", err)
		return r
	}
	var nt problemhookv1alpha1.NotificationTarget
	if err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: fixtures.TargetName}, &nt); err != nil {
		fail("reading the target: %v", err)
		return r
	}
	base := nt.DeepCopy()
	nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{URL: hostile.URL,
		TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: fixtures.APISecret},
		Poll:           &problemhookv1alpha1.PollSpec{Interval: metav1.Duration{Duration: 30 * time.Second}, Window: metav1.Duration{Duration: time.Hour}}}
	nt.Spec.Retention = &problemhookv1alpha1.Retention{MaxBytes: new(resource.MustParse("1Mi"))}
	if err := d.kube.Patch(ctx, &nt, client.MergeFrom(base)); err != nil {
		fail("pointing the target at the hostile Dynatrace: %v", err)
		return r
	}
	if err := d.waitTargetReady(ctx, ns); err != nil {
		fail("%v", err)
		return r
	}

	rssBefore, err := d.mgr.RSS()
	if err != nil {
		fail("reading the manager's RSS: %v", err)
	}
	peakReset := d.mgr.ResetPeakRSS() == nil
	var sampled sampledPeak
	stop := sampled.watch(d.mgr.RSS)

	// The template: refused when it is checked.
	doubling := &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "doubling"},
		Spec: problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{{Name: "hook",
			HTTP: &problemhookv1alpha1.HTTPAction{URL: d.hook.URL, Body: `{{$s := "xxxxxxxx"}}` + strings.Repeat(`{{$s = print $s $s}}`, 30)}}}}}
	if err := d.kube.Create(ctx, doubling); err != nil {
		fail("creating the doubling route: %v", err)
	}

	// The hostile Dynatrace: each event reads its problem and its comments.
	s := d.sender(d.mgr, ns)
	notes := problems("memory", 8)
	for _, n := range notes {
		if o := s.post(ctx, n); !o.stored() {
			fail("notification %s: %d %s %v", n.PID, o.status, o.result, o.err)
		}
	}

	// The bodies: each stored or shed before it is read.
	const bodies = 32
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[int]int{}
	for i := range bodies {
		wg.Go(func() {
			o := s.postBody(ctx, emptyEntitiesBody(i), oldPassword)
			mu.Lock()
			answers[o.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for status, n := range answers {
		if status != http.StatusAccepted && status != http.StatusServiceUnavailable {
			fail("%d bodies of empty entities answered %d", n, status)
		}
	}

	refused := d.waitRouteRefused(ctx, ns, "doubling")
	if !refused {
		fail("the doubling route was not refused as InvalidTemplate within 30s")
	}
	if _, err := d.settle(ctx, ns, len(notes), 2*time.Minute); err != nil {
		fail("%v", err)
	}
	// Retention takes the target back within maxBytes.
	var total int
	deadline := time.Now().Add(30 * time.Second)
	for {
		total = d.storedBytes(ctx, ns)
		if total <= 1<<20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if total > 1<<20 {
		fail("the target's events hold %d KiB, past its maxBytes of 1 MiB", total>>10)
	}
	stop()

	select {
	case <-d.mgr.Exited():
		fail("the manager exited")
	default:
	}
	peak := sampled.max()
	how := "sampled every 20 ms"
	if hwm, err := d.mgr.PeakRSS(); err == nil && peakReset {
		peak, how = max(peak, hwm), "the kernel's high-water mark"
	}
	if peak >= memoryLimit {
		fail("the manager's RSS peaked at %d MiB, at or past the Deployment's limit of %d MiB", peak>>20, memoryLimit>>20)
	}
	r.Counts = fmt.Sprintf("manager RSS %d MiB before, peak %d MiB (+%d MiB, %s; limit %d MiB); doubling refused: %t; %d bodies: %d stored, %d shed; hostile Dynatrace answered %d reads of 8 MiB; events kept in %d KiB of 1 MiB",
		rssBefore>>20, peak>>20, (peak-rssBefore)>>20, how, memoryLimit>>20, refused, bodies, answers[http.StatusAccepted], answers[http.StatusServiceUnavailable],
		hostile.reads(), total>>10)
	return r
}

// emptyEntitiesBody is a notification of 1 MiB, nearly all of it empty
// impacted entities: three bytes each, a struct each once decoded.
func emptyEntitiesBody(i int) []byte {
	prefix := fmt.Sprintf(`{"State":"OPEN","ProblemID":"%d","PID":"memory-body-%d_1700000000000V2","ImpactedEntities":[`, 20000+i, i)
	n := ((1 << 20) - len(prefix) - 2) / 3
	return []byte(prefix + strings.Repeat("{},", n-1) + "{}]}")
}

// waitTargetReady waits until the target of ns is Ready again.
func (d *drills) waitTargetReady(ctx context.Context, ns string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var nt problemhookv1alpha1.NotificationTarget
		err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: fixtures.TargetName}, &nt)
		if err == nil && nt.Status.ObservedGeneration == nt.Generation && meta.IsStatusConditionTrue(nt.Status.Conditions, problemhookv1alpha1.ConditionReady) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the target is not Ready within 30s (error %w, conditions %+v)", err, nt.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRouteRefused waits until route name of ns is Ready=False InvalidTemplate.
func (d *drills) waitRouteRefused(ctx context.Context, ns, name string) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var ir problemhookv1alpha1.IntegrationRoute
		if err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ir); err == nil {
			if c := meta.FindStatusCondition(ir.Status.Conditions, problemhookv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
				return c.Reason == problemhookv1alpha1.ReasonInvalidTemplate
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// storedBytes adds up the JSON of the events of ns.
func (d *drills) storedBytes(ctx context.Context, ns string) int {
	var list problemhookv1alpha1.ProblemEventList
	if err := d.kube.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0
	}
	total := 0
	for _, ev := range list.Items {
		b, _ := json.Marshal(ev)
		total += len(b)
	}
	return total
}

// sampledPeak is the largest of a series of readings.
type sampledPeak struct {
	mu   sync.Mutex
	peak int64
}

// watch reads every 20 ms until the returned function is called.
func (s *sampledPeak) watch(read func() (int64, error)) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if v, err := read(); err == nil {
				s.mu.Lock()
				s.peak = max(s.peak, v)
				s.mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func (s *sampledPeak) max() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// emptyObjectsDynatrace is a tenant's Dynatrace that answers the
// credential check as Dynatrace does and every other read with 8 MiB of
// empty objects in the list the client decodes, with a next page always.
type emptyObjectsDynatrace struct {
	*httptest.Server
	mu sync.Mutex
	n  int
}

func newEmptyObjectsDynatrace() *emptyObjectsDynatrace {
	fill := func(prefix, suffix string) []byte {
		n := (8<<20 - 1024 - len(prefix) - len(suffix)) / 3
		return []byte(prefix + strings.Repeat("{},", n-1) + "{}" + suffix)
	}
	problem := fill(`{"problemId":"x","displayId":"P-1","title":"t","status":"OPEN","impactedEntities":[`, `]}`)
	comments := fill(`{"totalCount":1,"pageSize":500,"nextPageKey":"next","comments":[`, `]}`)
	list := fill(`{"totalCount":1,"pageSize":500,"nextPageKey":"next","problems":[`, `]}`)
	h := &emptyObjectsDynatrace{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		req := dynatracetest.Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
		var answer []byte
		switch {
		case req.CredentialCheck():
			answer = []byte(`{"totalCount":0,"pageSize":1,"problems":[]}`)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			answer = []byte(`{}`)
		case strings.HasSuffix(r.URL.Path, "/comments"):
			answer = comments
		case strings.HasSuffix(r.URL.Path, "/problems"):
			answer = list
		case strings.Contains(r.URL.Path, "/problems/"):
			answer = problem
		default:
			http.NotFound(w, r)
			return
		}
		if len(answer) > 1<<20 {
			h.mu.Lock()
			h.n++
			h.mu.Unlock()
		}
		_, _ = w.Write(answer)
	}))
	return h
}

// reads is how many 8 MiB answers the server gave.
func (h *emptyObjectsDynatrace) reads() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
