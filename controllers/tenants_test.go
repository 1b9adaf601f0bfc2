package controllers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
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
