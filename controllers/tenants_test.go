package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers/problemevent"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

// A tenant whose Dynatrace never answers, and one whose HTTP endpoint
// never does, hold none of the workers the tenants share: a busy tenant's
// events beside them settle while every call of theirs still hangs. Had
// they held the workers, the busy tenant's events would have waited for
// a hanging call to give up. The test asserts that order, not seconds.
func TestAHangingTenantDelaysNoOther(t *testing.T) {
	hang := make(chan struct{})
	var arrived, gaveUp atomic.Int32
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The target's credential check gives up after its own 5 s, as
		// it should: only the events' calls are counted.
		check := dynatracetest.Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}.CredentialCheck()
		if !check {
			arrived.Add(1)
		}
		select {
		case <-hang:
		case <-r.Context().Done():
			if !check {
				gaveUp.Add(1)
			}
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(hang) })
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(hook.Close)

	m := newFixture(t) // the busy tenant: target dynatrace, a healthy Dynatrace
	m.dt.AddProblem(richProblem())
	other := basicTarget(m.ns)
	other.Name = "hanging"
	other.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{URL: hanging.URL,
		TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "dynatrace-api"}}
	m.create(other)
	slow := basicTarget(m.ns)
	slow.Name = "slow-endpoint"
	m.create(slow)
	hookRoute := m.route("hook", problemhookv1alpha1.RouteMatch{}, problemhookv1alpha1.Action{Name: "hook",
		HTTP: &problemhookv1alpha1.HTTPAction{URL: hook.URL, Body: "{}"}})
	updateRoute(m.g, hookRoute, func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.Targets = []string{"dynatrace", "hanging"} })
	slowRoute := m.route("slow", problemhookv1alpha1.RouteMatch{}, problemhookv1alpha1.Action{Name: "hook",
		HTTP: &problemhookv1alpha1.HTTPAction{URL: hanging.URL, Body: "{}"}})
	updateRoute(m.g, slowRoute, func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.Targets = []string{"slow-endpoint"} })
	for _, ir := range []*problemhookv1alpha1.IntegrationRoute{hookRoute, slowRoute} {
		routeReady(t, ir, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady)
	}
	time.Sleep(200 * time.Millisecond) // the event manager's cache sees them too

	// More of the hanging tenants' events than there are workers, first:
	// one tenant's Dynatrace hangs, another's HTTP endpoint does.
	var stuck, sending []*problemhookv1alpha1.ProblemEvent
	for i := range 6 {
		for _, target := range []*problemhookv1alpha1.NotificationTarget{other, slow} {
			spec := problemhookv1alpha1.ProblemEventSpec{ProblemID: fmt.Sprintf("-9_%dV2", i), DisplayID: fmt.Sprint(i), State: problemhookv1alpha1.StateOpen,
				Source: problemhookv1alpha1.FormatDynatrace, ReceivedAt: metav1.Now()}
			ev := problemhookv1alpha1.NewProblemEvent(target, &spec)
			m.create(ev)
			if target == other {
				stuck = append(stuck, ev)
			} else {
				sending = append(sending, ev)
			}
		}
	}
	// Every one of them holds a call: more calls than there are workers.
	m.g.Eventually(arrived.Load).WithTimeout(10 * time.Second).Should(BeNumerically(">=", len(stuck)+len(sending)))
	start := time.Now()
	var busy []*problemhookv1alpha1.ProblemEvent
	for i := range 4 {
		busy = append(busy, m.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: fmt.Sprintf("-1_%dV2", i), DisplayID: fmt.Sprint(100 + i), State: problemhookv1alpha1.StateOpen}))
	}
	for _, ev := range busy {
		m.eventually(ev, phase(problemhookv1alpha1.PhaseSucceeded))
	}
	took := time.Since(start)
	t.Logf("4 events of the busy tenant settled in %s beside 6 of a tenant whose Dynatrace hangs and 6 of one whose endpoint does", took.Round(time.Millisecond))
	m.g.Expect(gaveUp.Load()).To(BeZero(), "the busy tenant's events waited for a hanging call to give up: the hanging tenants held the workers")
	for _, ev := range stuck {
		m.g.Expect(m.get(ev).Status.Phase).To(BeEmpty(), "still waiting for its Dynatrace")
	}
	for _, ev := range sending {
		got := m.get(ev)
		m.g.Expect(got.Status.Actions).To(HaveExactElements(HaveField("State", problemhookv1alpha1.ActionRunning)), "still sending: %s", got.Status.Phase)
	}
}

// One namespace stores a thousand events in a burst while the workers are
// busy, then another namespace stores one: the lone event's action is
// among the first to run, not behind the thousand, as it would be in a
// queue in arrival order. The test asserts that order, not seconds.
func TestABacklogInOneNamespaceDelaysNoOther(t *testing.T) {
	const flood = 1000
	var mu sync.Mutex
	var calls []string // the namespaces of the hook's calls, in order
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, strings.TrimPrefix(r.URL.Path, "/"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{})
	t.Cleanup(dt.Close)
	dt.AddToken(dtToken, "problems.read", "problems.write")
	busy, quiet := newTargetFixture(t, dt), newTargetFixture(t, dt)
	for _, f := range []*fixture{busy, quiet} {
		ir := f.route("hook", problemhookv1alpha1.RouteMatch{}, problemhookv1alpha1.Action{Name: "hook",
			HTTP: &problemhookv1alpha1.HTTPAction{URL: hook.URL + "/" + f.ns, Body: "{}"}})
		routeReady(t, ir, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady)
	}
	// The workers' first status writes wait until the backlog is queued.
	gate := make(chan struct{})
	startEventManagerOver(t, []string{busy.ns, quiet.ns}, func(r *problemevent.Reconciler) {
		r.Client = gatedStatus{Client: r.Client, gate: gate}
	})

	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				busy.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: fmt.Sprintf("-7_%dV2", i), DisplayID: fmt.Sprint(i), State: problemhookv1alpha1.StateOpen})
			}
		})
	}
	for i := range flood {
		work <- i
	}
	close(work)
	wg.Wait()
	lone := quiet.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-8_1V2", DisplayID: "1", State: problemhookv1alpha1.StateOpen})
	time.Sleep(time.Second) // the informer queues the lone event
	start := time.Now()
	close(gate)

	quiet.eventually(lone, phase(problemhookv1alpha1.PhaseSucceeded))
	mu.Lock()
	order := slices.Index(calls, quiet.ns)
	before := len(calls)
	mu.Unlock()
	t.Logf("the lone event's action was call %d, %s after the workers were let go; %d of the busy namespace's %d had run by the time it settled",
		order+1, time.Since(start).Round(time.Millisecond), before-1, flood)
	quiet.g.Expect(order).To(And(BeNumerically(">=", 0), BeNumerically("<", 10)), "the lone event waited behind the other namespace's backlog")
	quiet.g.Expect(before).To(BeNumerically("<", flood/2), "the backlog was gone before the lone event ran: the test shows nothing")
}

// gatedStatus holds every status write until gate is closed.
type gatedStatus struct {
	client.Client
	gate <-chan struct{}
}

func (c gatedStatus) Status() client.SubResourceWriter {
	return gatedStatusWriter{SubResourceWriter: c.Client.Status(), gate: c.gate}
}

type gatedStatusWriter struct {
	client.SubResourceWriter
	gate <-chan struct{}
}

func (w gatedStatusWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	<-w.gate
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}
