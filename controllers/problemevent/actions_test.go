package problemevent

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
)

// run is an action run of route/action in state, for the tables below.
func run(route, action string, state problemhookv1alpha1.ActionState) problemhookv1alpha1.ActionStatus {
	return problemhookv1alpha1.ActionStatus{Route: route, Action: action, Type: problemhookv1alpha1.ActionTypeJob, State: state}
}

const (
	pending   = problemhookv1alpha1.ActionPending
	running   = problemhookv1alpha1.ActionRunning
	succeeded = problemhookv1alpha1.ActionSucceeded
	failed    = problemhookv1alpha1.ActionFailed
	stopped   = problemhookv1alpha1.ActionStopped
)

// Runs group by route in the order routes first appear, and within a
// route by action in their recorded order: the order actions run in.
func TestGroupActions(t *testing.T) {
	for _, tc := range []struct {
		name string
		runs []problemhookv1alpha1.ActionStatus
		want []actionGroup
	}{
		{"none", nil, nil},
		{"one run", []problemhookv1alpha1.ActionStatus{run("r", "a", pending)}, []actionGroup{{route: "r", actions: [][]int{{0}}}}},
		{"fan-out then a message", []problemhookv1alpha1.ActionStatus{run("r", "job", pending), run("r", "job", pending), run("r", "sms", pending)},
			[]actionGroup{{route: "r", actions: [][]int{{0, 1}, {2}}}}},
		{"two routes interleaved keep their own order", []problemhookv1alpha1.ActionStatus{run("b", "x", pending), run("a", "y", pending), run("b", "z", pending)},
			[]actionGroup{{route: "b", actions: [][]int{{0}, {2}}}, {route: "a", actions: [][]int{{1}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(groupActions(tc.runs)).To(Equal(tc.want))
		})
	}
}

// An event's phase and Ready condition follow its runs: anything running
// or pending keeps it in progress; once all settled, one failure fails it.
func TestSummarise(t *testing.T) {
	for _, tc := range []struct {
		name       string
		states     []problemhookv1alpha1.ActionState
		phase      problemhookv1alpha1.EventPhase
		settled    bool
		readyCause string
		message    string
	}{
		{"all pending", []problemhookv1alpha1.ActionState{pending, pending}, problemhookv1alpha1.PhasePending, false, problemhookv1alpha1.ReasonProgressing,
			"2 actions: 0 succeeded, 0 failed, 0 stopped, 0 running, 2 pending"},
		{"running beats pending", []problemhookv1alpha1.ActionState{succeeded, running, pending}, problemhookv1alpha1.PhaseRunning, false, problemhookv1alpha1.ReasonProgressing,
			"3 actions: 1 succeeded, 0 failed, 0 stopped, 1 running, 1 pending"},
		{"a failure waits for the rest", []problemhookv1alpha1.ActionState{failed, pending}, problemhookv1alpha1.PhasePending, false, problemhookv1alpha1.ReasonProgressing,
			"2 actions: 0 succeeded, 1 failed, 0 stopped, 0 running, 1 pending"},
		{"settled with a failure", []problemhookv1alpha1.ActionState{succeeded, failed, stopped}, problemhookv1alpha1.PhaseFailed, true, problemhookv1alpha1.ReasonFailed,
			"3 actions: 1 succeeded, 1 failed, 1 stopped, 0 running, 0 pending"},
		{"stopped is no failure", []problemhookv1alpha1.ActionState{succeeded, stopped}, problemhookv1alpha1.PhaseSucceeded, true, problemhookv1alpha1.ReasonSucceeded,
			"2 actions: 1 succeeded, 0 failed, 1 stopped, 0 running, 0 pending"},
		{"all succeeded", []problemhookv1alpha1.ActionState{succeeded}, problemhookv1alpha1.PhaseSucceeded, true, problemhookv1alpha1.ReasonSucceeded,
			"1 actions: 1 succeeded, 0 failed, 0 stopped, 0 running, 0 pending"},
		{"awaiting approval beats pending", []problemhookv1alpha1.ActionState{succeeded, problemhookv1alpha1.ActionAwaitingApproval, pending}, problemhookv1alpha1.PhaseAwaitingApproval, false,
			problemhookv1alpha1.ReasonProgressing, "3 actions: 1 succeeded, 0 failed, 0 stopped, 0 running, 1 pending, 1 awaiting approval"},
		{"running beats awaiting approval", []problemhookv1alpha1.ActionState{running, problemhookv1alpha1.ActionAwaitingApproval}, problemhookv1alpha1.PhaseRunning, false,
			problemhookv1alpha1.ReasonProgressing, "2 actions: 0 succeeded, 0 failed, 0 stopped, 1 running, 0 pending, 1 awaiting approval"},
		{"skipped is no failure", []problemhookv1alpha1.ActionState{succeeded, problemhookv1alpha1.ActionSkipped}, problemhookv1alpha1.PhaseSucceeded, true,
			problemhookv1alpha1.ReasonSucceeded, "2 actions: 1 succeeded, 0 failed, 0 stopped, 0 running, 0 pending, 1 skipped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ev := &problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			for _, s := range tc.states {
				ev.Status.Actions = append(ev.Status.Actions, run("r", "a", s))
			}
			g.Expect(summarise(ev)).To(Equal(tc.settled))
			g.Expect(ev.Status.Phase).To(Equal(tc.phase))
			ready := meta.FindStatusCondition(ev.Status.Conditions, problemhookv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal(tc.readyCause))
			g.Expect(ready.Message).To(Equal(tc.message))
			g.Expect(ready.ObservedGeneration).To(Equal(int64(3)))
			g.Expect(ready.Status).To(Equal(map[bool]metav1.ConditionStatus{true: metav1.ConditionTrue, false: metav1.ConditionFalse}[tc.settled]))
		})
	}
}

// Runs that wait for a time (a delay, a retry) make the event Waiting,
// and its summary says until when; a run due now keeps it Pending.
func TestSummariseWaiting(t *testing.T) {
	g := NewWithT(t)
	at := func(hms string) *metav1.Time {
		tm, err := time.Parse(time.DateTime, "2026-12-06 "+hms)
		g.Expect(err).NotTo(HaveOccurred())
		return &metav1.Time{Time: tm}
	}
	ev := &problemhookv1alpha1.ProblemEvent{}
	ev.Status.Actions = []problemhookv1alpha1.ActionStatus{run("r", "a", succeeded), run("r", "b", pending), run("q", "c", pending)}
	ev.Status.Actions[1].NextAttemptTime, ev.Status.Actions[2].NextAttemptTime = at("12:09:00"), at("12:04:10")
	g.Expect(summarise(ev)).To(BeFalse())
	g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseWaiting))
	g.Expect(ev.Status.Summary).To(Equal("1 succeeded, 2 waiting until 12:04:10"))

	ev.Status.Actions[2].NextAttemptTime = nil
	summarise(ev)
	g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhasePending), "q/c is due")
	g.Expect(ev.Status.Summary).To(Equal("1 succeeded, 1 waiting until 12:09:00, 1 pending"))

	// The actions after a waiting one are not due: they wait with it.
	ev.Status.Actions[2].Route = "r"
	summarise(ev)
	g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseWaiting))
	g.Expect(ev.Status.Summary).To(Equal("1 succeeded, 1 waiting until 12:09:00, 1 pending"))
}

// The wait doubles after each failed attempt, and never passes an hour.
func TestBackoffAfter(t *testing.T) {
	for _, tc := range []struct {
		first   time.Duration
		attempt int32
		want    time.Duration
	}{
		{10 * time.Second, 1, 10 * time.Second},
		{10 * time.Second, 2, 20 * time.Second},
		{10 * time.Second, 4, 80 * time.Second},
		{10 * time.Second, 20, time.Hour},
		{2 * time.Hour, 1, time.Hour},
		{time.Second, 1 << 30, time.Hour},
	} {
		NewWithT(t).Expect(backoffAfter(tc.first, tc.attempt)).To(Equal(tc.want), "first %s, attempt %d", tc.first, tc.attempt)
	}
}

// A retry is due no earlier than its wait, at a whole second.
func TestCeilSecond(t *testing.T) {
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ in, want time.Time }{
		{base, base},
		{base.Add(time.Nanosecond), base.Add(time.Second)},
		{base.Add(999 * time.Millisecond), base.Add(time.Second)},
	} {
		NewWithT(t).Expect(ceilSecond(tc.in)).To(Equal(tc.want))
	}
}

// The event comes back when its earliest pending retry is due; runs that
// are not waiting for a retry do not bring it back.
func TestNextAttempt(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC))
	at := func(d time.Duration) *metav1.Time { return new(metav1.NewTime(clock.Now().Add(d))) }
	waiting := func(state problemhookv1alpha1.ActionState, next *metav1.Time) problemhookv1alpha1.ActionStatus {
		a := run("r", "sms", state)
		a.NextAttemptTime = next
		return a
	}
	for _, tc := range []struct {
		name     string
		runs     []problemhookv1alpha1.ActionStatus
		min, max time.Duration
	}{
		{"nothing waits", []problemhookv1alpha1.ActionStatus{run("r", "a", pending), waiting(failed, at(time.Minute))}, 0, 0},
		{"the earliest of two", []problemhookv1alpha1.ActionStatus{waiting(pending, at(time.Hour)), waiting(pending, at(30*time.Second))}, 30 * time.Second, 30 * time.Second},
		{"overdue is due at once", []problemhookv1alpha1.ActionStatus{waiting(pending, at(-time.Minute))}, time.Millisecond, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Reconciler{Deps: controllers.Deps{Clock: clock}}
			got := r.nextAttempt(&problemhookv1alpha1.ProblemEvent{Status: problemhookv1alpha1.ProblemEventStatus{Actions: tc.runs}})
			NewWithT(t).Expect(got).To(BeNumerically(">=", tc.min))
			NewWithT(t).Expect(got).To(BeNumerically("<=", tc.max))
		})
	}
}
