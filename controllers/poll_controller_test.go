package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/controllers/notificationtarget"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// problemAt is a problem that started at start and, unless end is zero, ended at end.
func problemAt(n int, start, end time.Time) dynatrace.Problem {
	p := dynatrace.Problem{
		ProblemID: fmt.Sprintf("-%d_%dV2", 6150203450926486400+n, start.UnixMilli()), DisplayID: fmt.Sprintf("P-%d", 100+n),
		Title: fmt.Sprintf("Problem %d", n), Status: "OPEN", SeverityLevel: "ERROR", ImpactLevel: "SERVICES",
		StartTime: start.UnixMilli(), EndTime: -1,
		ImpactedEntities: []dynatrace.EntityStub{{EntityID: dynatrace.EntityID{ID: "SERVICE-00000000000000A1", Type: "SERVICE"}, Name: "checkout"}},
	}
	if !end.IsZero() {
		p.Status, p.EndTime = "CLOSED", end.UnixMilli()
	}
	return p
}

// polledEvents lists ns's events by name, with their origin.
func polledEvents(t *testing.T, ns string) map[string]problemhookv1alpha1.EventOrigin {
	t.Helper()
	var l problemhookv1alpha1.ProblemEventList
	if err := k8s.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]problemhookv1alpha1.EventOrigin{}
	for _, ev := range l.Items {
		out[ev.Name] = ev.Spec.Origin
	}
	return out
}

func eventName(p dynatrace.Problem, state problemhookv1alpha1.ProblemState) string {
	return problemhookv1alpha1.EventName("dynatrace", p.ProblemID, state)
}

// newPollingTarget is a Ready target that polls a fake Dynatrace every 5
// minutes over a 2-hour window, on a clock the test sets, from
// 2026-11-21T10:00Z; the tests call the poller themselves.
func newPollingTarget(t *testing.T) (*fixture, *dynatracetest.Server, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{Now: clk.Now})
	t.Cleanup(dt.Close)
	dt.AddToken(dtToken, "problems.read")
	f := newTargetFixture(t, dt, func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Spec.Dynatrace.Poll = &problemhookv1alpha1.PollSpec{Interval: metav1.Duration{Duration: 5 * time.Minute}, Window: metav1.Duration{Duration: 2 * time.Hour}}
	})
	expectReady(t, client.ObjectKeyFromObject(f.target), metav1.ConditionTrue, problemhookv1alpha1.ReasonReady, "Receiving notifications at /hooks/"+f.ns+"/dynatrace")
	return f, dt, clk
}

// The poller records each state a problem entered since its last poll,
// never the last two minutes (Dynatrace's frame is not complete yet), never
// what a notification already stored, and reads every page; a failed poll
// leaves its frame for the next one. The clock is the test's, and the
// reconciler is called directly, so every poll happens exactly when the
// test says.
func TestPollerCatchesUpOnMissedProblems(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f, dt, clk := newPollingTarget(t)
	t0 := clk.Now()
	nt := f.target

	open := problemAt(1, t0.Add(-10*time.Minute), time.Time{})
	closed := problemAt(2, t0.Add(-30*time.Minute), t0.Add(-5*time.Minute))
	endedInWindow := problemAt(3, t0.Add(-3*time.Hour), t0.Add(-20*time.Minute))
	tooRecent := problemAt(4, t0.Add(-time.Minute), time.Time{})
	notified := problemAt(5, t0.Add(-15*time.Minute), time.Time{})
	beforeWindow := problemAt(6, t0.Add(-4*time.Hour), t0.Add(-3*time.Hour))
	for _, p := range []dynatrace.Problem{open, closed, endedInWindow, tooRecent, notified, beforeWindow} {
		dt.AddProblem(p)
	}
	// The notification for this one arrived.
	f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: notified.ProblemID, DisplayID: "105", State: problemhookv1alpha1.StateOpen})

	recorder := events.NewFakeRecorder(10)
	poller := &notificationtarget.PollReconciler{Deps: controllers.Deps{Client: k8s, Recorder: recorder, Clock: clk, Dynatrace: fastDynatrace()}, PageSize: 2}
	req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(nt)}
	pollStatus := func() *problemhookv1alpha1.PollStatus {
		var got problemhookv1alpha1.NotificationTarget
		g.Expect(k8s.Get(ctx, req.NamespacedName, &got)).To(Succeed())
		return got.Status.Poll
	}
	listCalls := func() int {
		n := 0
		for _, r := range dt.Requests() {
			if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/problems") && !credentialCheck(r) {
				n++
			}
		}
		return n
	}

	res, err := poller.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(5 * time.Minute))
	g.Expect(polledEvents(t, f.ns)).To(Equal(map[string]problemhookv1alpha1.EventOrigin{
		eventName(open, problemhookv1alpha1.StateOpen):              problemhookv1alpha1.OriginPoll,
		eventName(closed, problemhookv1alpha1.StateOpen):            problemhookv1alpha1.OriginPoll,
		eventName(closed, problemhookv1alpha1.StateResolved):        problemhookv1alpha1.OriginPoll,
		eventName(endedInWindow, problemhookv1alpha1.StateResolved): problemhookv1alpha1.OriginPoll,
		eventName(notified, problemhookv1alpha1.StateOpen):          "",
	}))
	g.Expect(listCalls()).To(Equal(2), "four problems in the frame, in pages of two")
	st := pollStatus()
	g.Expect(st.LastError).To(BeEmpty())
	g.Expect(st.Listed).To(Equal(int32(4)))
	g.Expect(st.Recorded).To(Equal(int32(4)))
	g.Expect(st.CoveredUntil.Time).To(BeTemporally("==", t0.Add(-2*time.Minute)))
	g.Expect(st.LastPollTime.Time).To(BeTemporally("==", t0))
	g.Expect(recorder.Events).To(Receive(ContainSubstring("Polled Recorded 4 problem states whose notifications had not arrived")))
	// The events are counted by state, the notified one not among them,
	// and the poll's success is stamped with its time.
	polled := func(state string) float64 {
		return controlplane.MetricSum(t, metrics.EventsName, map[string]string{"namespace": f.ns, "target": nt.Name, "state": state, "origin": "poll"})
	}
	g.Expect(polled("open")).To(Equal(2.0))
	g.Expect(polled("resolved")).To(Equal(2.0))
	lastSuccess := func() float64 {
		return controlplane.MetricSum(t, metrics.PollLastSuccessName, map[string]string{"namespace": f.ns, "target": nt.Name})
	}
	g.Expect(lastSuccess()).To(Equal(float64(t0.Unix())))

	// A polled event is what the notification would have stored.
	var ev problemhookv1alpha1.ProblemEvent
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: eventName(open, problemhookv1alpha1.StateOpen)}, &ev)).To(Succeed())
	g.Expect(ev.Spec).To(And(
		HaveField("ProblemID", open.ProblemID), HaveField("DisplayID", "101"), HaveField("Title", "Problem 1"),
		HaveField("Severity", "ERROR"), HaveField("Impact", "SERVICE"), HaveField("Target", "dynatrace"),
		HaveField("ImpactedEntities", ConsistOf(problemhookv1alpha1.ImpactedEntity{ID: "SERVICE-00000000000000A1", Name: "checkout", Type: "SERVICE"})),
		HaveField("URL", dt.URL()+"/#problems/problemdetails;pid="+open.ProblemID),
	))
	g.Expect(ev.Spec.ReceivedAt.Time).To(BeTemporally("==", t0))
	g.Expect(ev.Labels).To(HaveKeyWithValue(problemhookv1alpha1.LabelState, "open"))

	// Not due yet: nothing is asked of Dynatrace.
	calls := listCalls()
	clk.SetTime(t0.Add(time.Minute))
	res, err = poller.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(4 * time.Minute))
	g.Expect(listCalls()).To(Equal(calls))

	// The next poll starts where the last one ended: the problem that was
	// too recent then is recorded now, the others are not listed again.
	clk.SetTime(t0.Add(5 * time.Minute))
	_, err = poller.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(polledEvents(t, f.ns)).To(HaveLen(6))
	g.Expect(polledEvents(t, f.ns)).To(HaveKeyWithValue(eventName(tooRecent, problemhookv1alpha1.StateOpen), problemhookv1alpha1.OriginPoll))
	st = pollStatus()
	g.Expect(st.Listed).To(Equal(int32(1)), "only the problem that started in the new frame")
	g.Expect(st.Recorded).To(Equal(int32(1)))
	g.Expect(st.CoveredUntil.Time).To(BeTemporally("==", t0.Add(3*time.Minute)))
	g.Expect(recorder.Events).To(Receive(Equal("Normal Polled Recorded 1 problem state whose notification had not arrived, from 2026-11-21T09:58:00Z to 2026-11-21T10:03:00Z")))

	// Dynatrace fails: the frame stays uncovered, the poll is retried
	// within a minute, and then covers the whole gap.
	clk.SetTime(t0.Add(10 * time.Minute))
	dt.FailNext(http.MethodGet, "/problems", dynatrace.DefaultMaxAttempts, http.StatusServiceUnavailable, "")
	res, err = poller.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(time.Minute))
	st = pollStatus()
	g.Expect(st.LastError).To(ContainSubstring("503"))
	g.Expect(st.CoveredUntil.Time).To(BeTemporally("==", t0.Add(3*time.Minute)))
	g.Expect(recorder.Events).To(Receive(HavePrefix("Warning PollFailed")))
	g.Expect(lastSuccess()).To(Equal(float64(t0.Add(5*time.Minute).Unix())), "a failed poll is no success")

	duringOutage := problemAt(7, t0.Add(4*time.Minute), t0.Add(7*time.Minute))
	dt.AddProblem(duringOutage)
	clk.SetTime(t0.Add(11 * time.Minute))
	_, err = poller.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(polledEvents(t, f.ns)).To(And(
		HaveKey(eventName(duringOutage, problemhookv1alpha1.StateOpen)),
		HaveKey(eventName(duringOutage, problemhookv1alpha1.StateResolved)),
		HaveLen(8),
	))
	st = pollStatus()
	g.Expect(st.LastError).To(BeEmpty())
	g.Expect(st.CoveredUntil.Time).To(BeTemporally("==", t0.Add(9*time.Minute)))
	g.Expect(lastSuccess()).To(Equal(float64(t0.Add(11 * time.Minute).Unix())))
	g.Expect(polled("open") + polled("resolved")).To(Equal(8.0 - 1))

	// A target that stops polling has no series: its age would be noise.
	g.Expect(k8s.Patch(ctx, nt.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"dynatrace":{"poll":null}}}`)))).To(Succeed())
	_, err = poller.Reconcile(ctx, req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(controlplane.MetricSum(t, metrics.PollLastSuccessName, map[string]string{"namespace": f.ns})).To(BeZero())
}

// A manager that was down while problems opened records them when it
// comes back, and a notification that arrives after the poller recorded
// its problem is answered as a duplicate.
func TestManagerBackFromOutageRecordsMissedProblems(t *testing.T) {
	missed := problemAt(11, time.Now().Add(-20*time.Minute), time.Time{})
	notified := problemAt(12, time.Now().Add(-10*time.Minute), time.Time{})
	f := newFixture(t)
	f.dt.AddProblem(missed)
	f.dt.AddProblem(notified)

	post := func(p dynatrace.Problem) int {
		body := fmt.Sprintf(`{"State":"OPEN","ProblemID":%q,"PID":%q}`, strings.TrimPrefix(p.DisplayID, "P-"), p.ProblemID)
		req, err := http.NewRequestWithContext(f.ctx, http.MethodPost, f.receiver+problemhookv1alpha1.WebhookPath(f.ns, "dynatrace"), strings.NewReader(body))
		f.g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("dynatrace", "secret")
		resp, err := http.DefaultClient.Do(req)
		f.g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	f.g.Eventually(func() int { return post(notified) }).Should(Equal(http.StatusAccepted))
	// The manager comes back with polling on.
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"dynatrace":{"poll":{"interval":"1m","window":"1h"}}}}`))
	f.g.Expect(k8s.Patch(f.ctx, f.target.DeepCopy(), patch)).To(Succeed())

	f.g.Eventually(func() map[string]problemhookv1alpha1.EventOrigin { return polledEvents(t, f.ns) }).Should(Equal(map[string]problemhookv1alpha1.EventOrigin{
		eventName(missed, problemhookv1alpha1.StateOpen):   problemhookv1alpha1.OriginPoll,
		eventName(notified, problemhookv1alpha1.StateOpen): "",
	}))
	// Dynatrace's notification for the missed problem turns up late.
	f.g.Expect(post(missed)).To(Equal(http.StatusOK))
	f.g.Consistently(func() int { return len(polledEvents(t, f.ns)) }).WithTimeout(time.Second).Should(Equal(2))
	var nt problemhookv1alpha1.NotificationTarget
	f.g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(f.target), &nt)).To(Succeed())
	f.g.Expect(nt.Status.Poll).To(And(HaveField("Recorded", int32(1)), HaveField("Listed", int32(2)), HaveField("LastError", "")))
}

// A poll creates at most MaxEventsPerPoll events, oldest first; the rest
// of its frame stays uncovered, and the next poll, a minute later rather
// than an interval, goes on from there until the poller has caught up.
func TestPollerCreatesAtMostItsBoundPerPoll(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f, dt, clk := newPollingTarget(t)
	t0 := clk.Now()
	// Five problems opened a minute apart, 60 to 56 minutes ago, all missed.
	var missed []dynatrace.Problem
	for i := range 5 {
		p := problemAt(20+i, t0.Add(-time.Duration(60-i)*time.Minute), time.Time{})
		dt.AddProblem(p)
		missed = append(missed, p)
	}
	poller := &notificationtarget.PollReconciler{Deps: controllers.Deps{Client: k8s, Recorder: events.NewFakeRecorder(10), Clock: clk, Dynatrace: fastDynatrace()}, MaxEventsPerPoll: 2}
	req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(f.target)}
	status := func() *problemhookv1alpha1.PollStatus {
		var got problemhookv1alpha1.NotificationTarget
		g.Expect(k8s.Get(ctx, req.NamespacedName, &got)).To(Succeed())
		return got.Status.Poll
	}

	for round, want := range []int{2, 4, 5} {
		res, err := poller.Reconcile(ctx, req)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(polledEvents(t, f.ns)).To(HaveLen(want), "round %d", round)
		st := status()
		if want < len(missed) {
			g.Expect(res.RequeueAfter).To(Equal(time.Minute), "behind: the next poll comes sooner")
			g.Expect(st.Recorded).To(Equal(int32(2)))
			g.Expect(st.CoveredUntil.Time).To(BeTemporally("==", time.UnixMilli(missed[want].StartTime)), "covered up to the first state left for later")
		} else {
			g.Expect(res.RequeueAfter).To(Equal(5 * time.Minute))
			g.Expect(st.CoveredUntil.Time).To(BeTemporally("==", clk.Now().Add(-notificationtarget.CompletenessDelay)))
		}
		clk.SetTime(clk.Now().Add(time.Minute))
	}
	for _, p := range missed {
		g.Expect(polledEvents(t, f.ns)).To(HaveKey(eventName(p, problemhookv1alpha1.StateOpen)))
	}
}
