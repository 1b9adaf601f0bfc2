package controllers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers/problemevent"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

// countingHook is an HTTP endpoint that counts what it is sent.
func countingHook(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	return hook, &calls
}

// A route muted for the night in Berlin, an interval that crosses
// midnight: an event it matches at 23:30 there records its run as Muted
// until 06:00 there, sends nothing, and says so in the comment; at 06:30
// the route runs again.
func TestAMutedRouteSendsNothingAndSaysUntilWhen(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 7, 23, 30, 0, 0, berlin))
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{})
	t.Cleanup(dt.Close)
	dt.AddToken(dtToken, "problems.read", "problems.write")
	f := newTargetFixture(t, dt)
	f.stop, f.receiver = startEventManager(t, f.ns, func(r *problemevent.Reconciler) { r.Clock = clk })
	dt.AddProblem(richProblem())
	hook, calls := countingHook(t)

	ir := f.route("night", problemhookv1alpha1.RouteMatch{}, problemhookv1alpha1.Action{Name: "hook",
		HTTP: &problemhookv1alpha1.HTTPAction{URL: hook.URL, Body: "{}"}})
	updateRoute(f.g, ir, func(ir *problemhookv1alpha1.IntegrationRoute) {
		ir.Spec.MuteTimeIntervals = []problemhookv1alpha1.TimeInterval{{Location: "Europe/Berlin",
			Times: []problemhookv1alpha1.TimeRange{{StartTime: "22:00", EndTime: "24:00"}, {StartTime: "00:00", EndTime: "06:00"}}}}
	})
	routeReady(t, ir, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady)

	muted := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen})
	const why = "Muted until 2026-12-08T05:00:00Z by the route's spec.muteTimeIntervals[0]: nothing was created or sent"
	got := f.eventually(muted, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseSkipped))
		g.Expect(ev.Status.Comment).NotTo(BeNil())
	})
	f.g.Expect(got.Status.Actions).To(HaveExactElements(And(
		HaveField("State", problemhookv1alpha1.ActionMuted), HaveField("Message", why), HaveField("Attempts", int32(0)))))
	f.g.Expect(got.Status.Summary).To(Equal("1 muted"))
	f.g.Expect(calls.Load()).To(BeZero())
	f.g.Expect(dt.Comments(pid)).To(ContainElement(HaveField("Content",
		ContainSubstring("night/hook: "+why))))

	// The night is over in Berlin: the route runs.
	clk.SetTime(time.Date(2026, 12, 8, 6, 30, 0, 0, berlin))
	morning := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-2_1V2", DisplayID: "2", State: problemhookv1alpha1.StateOpen,
		ReceivedAt: metav1.NewTime(clk.Now())})
	f.eventually(morning, phase(problemhookv1alpha1.PhaseSucceeded))
	f.g.Expect(calls.Load()).To(Equal(int32(1)))
}

// A suspended route matches no new event and says so in a condition of
// its own, staying Ready; resumed, it matches again.
func TestASuspendedRouteMatchesNothingNew(t *testing.T) {
	f := newFixture(t)
	hook, calls := countingHook(t)
	ir := f.route("paused", problemhookv1alpha1.RouteMatch{}, problemhookv1alpha1.Action{Name: "hook",
		HTTP: &problemhookv1alpha1.HTTPAction{URL: hook.URL, Body: "{}"}})
	updateRoute(f.g, ir, func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.Suspend = true })
	routeReady(t, ir, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady)
	suspended := func(g Gomega) *metav1.Condition {
		var got problemhookv1alpha1.IntegrationRoute
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(ir), &got)).To(Succeed())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		return meta.FindStatusCondition(got.Status.Conditions, problemhookv1alpha1.ConditionSuspended)
	}
	f.g.Eventually(suspended).Should(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", problemhookv1alpha1.ReasonSuspended),
		HaveField("Message", HavePrefix("Suspended: new events do not match the route until spec.suspend is false"))))

	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-1_1V2", DisplayID: "1", State: problemhookv1alpha1.StateOpen})
	got := f.eventually(ev, phase(problemhookv1alpha1.PhaseSkipped))
	f.g.Expect(meta.FindStatusCondition(got.Status.Conditions, problemhookv1alpha1.ConditionReady).Message).To(Equal("No IntegrationRoute matched"))

	updateRoute(f.g, ir, func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.Suspend = false })
	f.g.Eventually(suspended).Should(BeNil())
	time.Sleep(200 * time.Millisecond) // the event manager's cache sees the route resumed
	resumed := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-1_2V2", DisplayID: "2", State: problemhookv1alpha1.StateOpen})
	f.eventually(resumed, phase(problemhookv1alpha1.PhaseSucceeded))
	f.g.Expect(calls.Load()).To(Equal(int32(1)))
}

// An interval Alertmanager would refuse makes the route Ready=False,
// naming the field.
func TestAnInvalidMuteTimeIntervalNamesTheField(t *testing.T) {
	ns := newNamespace(t)
	ir := &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-mute"},
		Spec: problemhookv1alpha1.IntegrationRouteSpec{
			Actions:           []problemhookv1alpha1.Action{{Name: "hook", HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://example.com", Body: "{}"}}},
			MuteTimeIntervals: []problemhookv1alpha1.TimeInterval{{Weekdays: []string{"monday:friday"}}, {Weekdays: []string{"funday"}, Location: "Mars/Olympus"}},
		}}
	NewWithT(t).Expect(k8s.Create(context.Background(), ir)).To(Succeed())
	msg := routeReady(t, ir, metav1.ConditionFalse, problemhookv1alpha1.ReasonInvalidSpec)
	NewWithT(t).Expect(strings.Split(msg, "; ")).To(ConsistOf(
		`spec.muteTimeIntervals[1].weekdays[0]: "funday" is not a weekday`,
		`spec.muteTimeIntervals[1].location: "Mars/Olympus" is not an IANA time zone such as Europe/Berlin`))
}
