//go:build linux

package drills

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/fixtures"
)

// faultyDynatrace stands in front of the fake Dynatrace and answers each
// request path, in turn: 500, 429 with Retry-After 1, a reset connection,
// a 1.5 s delay before the real answer, and then the real answer.
type faultyDynatrace struct {
	*httptest.Server
	mu     sync.Mutex
	seen   map[string]int
	served map[string]int
}

func newFaultyDynatrace(next http.Handler) *faultyDynatrace {
	f := &faultyDynatrace{seen: map[string]int{}, served: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		key := r.Method + " " + r.URL.Path
		n := f.seen[key]
		f.seen[key]++
		fault := []string{"500", "429", "reset", "slow", "ok"}[min(n, 4)]
		f.served[fault]++
		f.mu.Unlock()
		switch fault {
		case "500":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":{"code":500,"message":"Internal Server Error"}}`))
		case "429":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"code":429,"message":"Too Many Requests"}}`))
		case "reset":
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
			}
		case "slow":
			time.Sleep(1500 * time.Millisecond)
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	}))
	return f
}

func (f *faultyDynatrace) counts() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("%d 500s, %d 429s, %d resets, %d slow", f.served["500"], f.served["429"], f.served["reset"], f.served["slow"])
}

// hangingServer accepts requests and never answers them, until closed.
func hangingServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
}

// hookOnlyRoute calls the HTTP endpoint for every event and comments.
var hookOnlyRoute = httpRoute("hook", `{"event": {{json .Event}}}`)

// httpRoute is the manifest of a route named name, for every event of the
// drills' target, whose one action, hook, posts body (a template) to the
// HTTP endpoint with the http-headers Secret; %[3]s stands for the
// endpoint's URL, as in every manifest d.namespace takes.
func httpRoute(name, body string) string {
	return `
apiVersion: problemhook.io/v1alpha1
kind: IntegrationRoute
metadata: {name: ` + name + `}
spec:
  targets: [dynatrace]
  actions:
  - name: hook
    http:
      url: %[3]s
      headersSecretRef: {name: http-headers}
      body: '` + body + `'
`
}

// dynatraceFaults sends notifications to three targets at once: one whose
// Dynatrace answers each request with 500, 429, a reset and a slow answer
// before the right one; one whose Dynatrace never answers; one whose
// Dynatrace is fine. The first's events are read and commented on after
// retries; the second's run their actions without details and record why;
// the third's are not held up by either.
func (d *drills) dynatraceFaults(ctx context.Context) result {
	var r result
	faulty := newFaultyDynatrace(d.dt.Handler())
	defer faulty.Close()
	hanging := hangingServer()
	defer hanging.Close()
	targets := []struct {
		name, url string
		ns        string
		notes     []notification
		took      time.Duration
	}{
		{name: "faulty", url: faulty.URL}, {name: "hanging", url: hanging.URL}, {name: "healthy", url: d.dt.URL()},
	}
	for i := range targets {
		t := &targets[i]
		ns, err := d.namespace(ctx, "dynatrace-"+t.name, true, hookOnlyRoute)
		if err != nil {
			r.Failures = append(r.Failures, err.Error())
			return r
		}
		t.ns = ns
		// Point the target at its Dynatrace.
		var target problemhookv1alpha1.NotificationTarget
		if err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: fixtures.TargetName}, &target); err != nil {
			r.Failures = append(r.Failures, err.Error())
			return r
		}
		target.Spec.Dynatrace.URL = t.url
		if err := d.kube.Update(ctx, &target); err != nil {
			r.Failures = append(r.Failures, err.Error())
			return r
		}
		t.notes = problems("dt"+t.name, 8)
		d.addProblems(t.notes)
	}
	time.Sleep(time.Second) // the targets' new URLs reach the manager's cache
	var wg sync.WaitGroup
	for i := range targets {
		t := &targets[i]
		wg.Go(func() {
			start := time.Now()
			results := burst(ctx, func(int) sender { return d.sender(d.mgr, t.ns) }, t.notes, 2, 20, nil)
			for key, attempts := range results {
				if !attempts[len(attempts)-1].stored() {
					r.Failures = append(r.Failures, key+": not stored")
				}
			}
			if _, err := d.settle(ctx, t.ns, len(t.notes), 3*time.Minute); err != nil {
				r.Failures = append(r.Failures, t.name+": "+err.Error())
			}
			t.took = time.Since(start)
		})
	}
	wg.Wait()

	check := func(t int, want func(*problemhookv1alpha1.ProblemEvent) string) {
		evs, err := d.events(ctx, targets[t].ns)
		if err != nil {
			r.Failures = append(r.Failures, err.Error())
			return
		}
		calls := d.hook.calls()
		for _, ev := range evs {
			if calls[ev.Name] != 1 {
				r.Failures = append(r.Failures, fmt.Sprintf("%s/%s: HTTP action called %d times", targets[t].name, ev.Name, calls[ev.Name]))
			}
			if problem := want(ev); problem != "" {
				r.Failures = append(r.Failures, fmt.Sprintf("%s/%s: %s", targets[t].name, ev.Name, problem))
			}
		}
	}
	enriched := func(ev *problemhookv1alpha1.ProblemEvent) *bool {
		c := meta.FindStatusCondition(ev.Status.Conditions, problemhookv1alpha1.ConditionEnriched)
		if c == nil {
			return nil
		}
		b := c.Status == "True"
		return &b
	}
	// The comments come after the actions, through the same faults.
	commented := func() error {
		evs, err := d.events(ctx, targets[0].ns)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.Status.Comment == nil || !ev.Status.Comment.Posted {
				return fmt.Errorf("%s: comment %+v", ev.Name, ev.Status.Comment)
			}
		}
		return nil
	}
	for deadline := time.Now().Add(time.Minute); commented() != nil && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
	}
	if err := commented(); err != nil {
		r.Failures = append(r.Failures, "faulty: not commented a minute after settling: "+err.Error())
	}
	check(0, func(ev *problemhookv1alpha1.ProblemEvent) string {
		if e := enriched(ev); e == nil || !*e {
			return "not enriched after the retries"
		}
		if n := len(d.dt.Comments(ev.Spec.ProblemID)); n != 1 {
			return fmt.Sprintf("%d comments on the problem", n)
		}
		return ""
	})
	check(1, func(ev *problemhookv1alpha1.ProblemEvent) string {
		c := meta.FindStatusCondition(ev.Status.Conditions, problemhookv1alpha1.ConditionEnriched)
		if c == nil || c.Status != "False" || c.Reason != problemhookv1alpha1.ReasonEnrichmentFailed {
			return fmt.Sprintf("want Enriched False EnrichmentFailed, got %+v", c)
		}
		return ""
	})
	check(2, func(ev *problemhookv1alpha1.ProblemEvent) string {
		if e := enriched(ev); e == nil || !*e {
			return "not enriched"
		}
		return ""
	})
	// Without the quiet after an unanswered request, each hanging event
	// holds a worker for 30 s, and the healthy ones wait a minute or more.
	if bound := 45 * time.Second; targets[2].took > bound {
		r.Failures = append(r.Failures, fmt.Sprintf("the healthy target's events took %s to settle, held up by the failing Dynatrace (bound %s)", targets[2].took.Round(100*time.Millisecond), bound))
	}
	r.Counts = fmt.Sprintf("8 events per target: faulty Dynatrace (%s) settled in %.1fs, enriched and commented; hanging Dynatrace settled in %.1fs without details; healthy settled in %.1fs",
		faulty.counts(), targets[0].took.Seconds(), targets[1].took.Seconds(), targets[2].took.Seconds())
	return r
}
