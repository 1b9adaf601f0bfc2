package controllers_test

import (
	"io"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/cli"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// A remediation ladder: a restart, then a later step that waits, looks at
// the problem again or asks a person. Each test runs the first step, then
// watches what the second does.

// ladder creates a route of two Job actions, restart and scale-out, whose
// second is shaped by second, with a retry policy of limit retries after
// backoff.
func (f *fixture) ladder(limit int32, backoff time.Duration, second func(*problemhookv1alpha1.Action)) {
	f.t.Helper()
	restart, scaleOut := jobAction(f.t, "restart", false, 1), jobAction(f.t, "scale-out", false, 1)
	second(&scaleOut)
	f.create(&problemhookv1alpha1.IntegrationRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "ladder"},
		Spec: problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{restart, scaleOut},
			Retry: &problemhookv1alpha1.RetryPolicy{Limit: &limit, Backoff: metav1.Duration{Duration: backoff}}},
	})
}

// openProblem stores the OPEN event of the fixture's problem.
func (f *fixture) openProblem() *problemhookv1alpha1.ProblemEvent {
	return f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "P-1234", State: problemhookv1alpha1.StateOpen})
}

// runFirstStep waits for the ladder's first Job and ends it well.
func (f *fixture) runFirstStep() {
	f.t.Helper()
	first := f.waitJobs(1)[0]
	f.g.Expect(first.Labels).To(HaveKeyWithValue(problemhookv1alpha1.LabelAction, "restart"))
	f.finishJob(&first, 0)
}

// second is the ladder's second run.
func second(g Gomega, ev *problemhookv1alpha1.ProblemEvent) problemhookv1alpha1.ActionStatus {
	g.Expect(ev.Status.Actions).To(HaveLen(2))
	return ev.Status.Actions[1]
}

// A delayed step waits its delay after the step before it settled, holding
// no worker, and a restart of the manager keeps the wait: it is computed
// from the times status records.
func TestADelayedStepWaitsAcrossARestart(t *testing.T) {
	f := newFixture(t)
	f.dt.AddProblem(richProblem())
	f.ladder(2, time.Second, func(a *problemhookv1alpha1.Action) { a.Delay = &metav1.Duration{Duration: 4 * time.Second} })
	ev := f.openProblem()
	f.runFirstStep()

	waiting := f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseWaiting))
		g.Expect(second(g, ev).NextAttemptTime).NotTo(BeNil())
	})
	run := waiting.Status.Actions[1]
	due := run.NextAttemptTime.Time
	settled := waiting.Status.Actions[0].CompletionTime.Time
	f.g.Expect(due.Sub(settled)).To(BeNumerically("~", 4*time.Second, time.Second))
	f.g.Expect(run.State).To(Equal(problemhookv1alpha1.ActionPending))
	f.g.Expect(run.Message).To(Equal("Waiting until " + due.UTC().Format(time.RFC3339) + ": delay 4s after the action before it settled"))
	f.g.Expect(waiting.Status.Summary).To(Equal("1 succeeded, 1 waiting until " + due.UTC().Format(time.TimeOnly)))

	f.restart()
	jobs := f.waitJobs(2)
	scaleOut := jobs[slicesIndex(jobs, "scale-out")]
	f.g.Expect(scaleOut.CreationTimestamp.Time).NotTo(BeTemporally("<", due), "the wait outlives the manager that began it")
	got := f.eventually(ev, phase(problemhookv1alpha1.PhaseRunning))
	f.g.Expect(got.Status.Actions[1].ClearedTime).NotTo(BeNil())
	f.g.Expect(got.Status.Actions[1].NextAttemptTime).To(BeNil())
}

// slicesIndex finds the Job of an action.
func slicesIndex(jobs []batchv1.Job, action string) int {
	for i, j := range jobs {
		if j.Labels[problemhookv1alpha1.LabelAction] == action {
			return i
		}
	}
	return -1
}

// A step that runs only while the problem is open is skipped when
// Dynatrace says the problem closed, though its RESOLVED notification
// never arrived; the comment says which step ran and which did not.
func TestAStepIsSkippedWhenDynatraceSaysTheProblemClosed(t *testing.T) {
	f := newFixture(t)
	f.dt.AddProblem(richProblem())
	f.ladder(2, time.Second, func(a *problemhookv1alpha1.Action) { a.OnlyWhileOpen = true })
	skippedBefore := controlplane.MetricSum(t, metrics.ActionsName, map[string]string{"namespace": f.ns, "result": "skipped"})
	ev := f.openProblem()
	first := f.waitJobs(1)[0]

	closed := richProblem()
	closed.Status, closed.EndTime = "CLOSED", time.Date(2026, 12, 6, 12, 4, 10, 0, time.UTC).UnixMilli()
	f.dt.AddProblem(closed)
	f.finishJob(&first, 0)

	got := f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseSucceeded))
		g.Expect(ev.Status.Comment).NotTo(BeNil())
	})
	f.g.Expect(got.Status.Actions[1]).To(And(HaveField("State", problemhookv1alpha1.ActionSkipped),
		HaveField("Message", "Skipped: the problem closed at 2026-12-06T12:04:10Z in Dynatrace before this step; nothing was created or sent")))
	f.g.Expect(got.Status.Summary).To(Equal("1 succeeded, 1 skipped"))
	f.g.Expect(got.Status.Comment.Message).To(HavePrefix("problemhook ran Job ladder/restart: succeeded\n" +
		"problemhook ran Job ladder/scale-out: skipped (the problem closed at 2026-12-06T12:04:10Z in Dynatrace before this step)\n"))
	f.g.Consistently(func(g Gomega) { g.Expect(f.jobs(g)).To(HaveLen(1)) }).WithTimeout(time.Second).Should(Succeed(), "nothing is created for a skipped step")
	f.g.Eventually(func() float64 {
		return controlplane.MetricSum(t, metrics.ActionsName, map[string]string{"namespace": f.ns, "result": "skipped"}) - skippedBefore
	}).Should(Equal(1.0))
}

// Without a Dynatrace connection, the problem's RESOLVED notification is
// what closes it: a step that runs only while it is open, and that the
// RESOLVED does not stop, is skipped once it arrived.
func TestAStepIsSkippedOnceTheProblemResolved(t *testing.T) {
	f := newFixture(t, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = nil })
	restart := jobAction(t, "restart", false, 1)
	restart.Job.StopOnResolve = new(false)
	verify := jobAction(t, "verify", false, 1)
	verify.Job.StopOnResolve, verify.OnlyWhileOpen = new(false), true
	f.route("ladder", problemhookv1alpha1.RouteMatch{States: []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateOpen}}, restart, verify)
	spec := problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "P-1234", State: problemhookv1alpha1.StateOpen}
	ev := f.event(spec)
	first := f.waitJobs(1)[0]
	spec.State = problemhookv1alpha1.StateResolved
	spec.ReceivedAt = metav1.NewTime(time.Date(2026, 12, 6, 12, 4, 10, 0, time.UTC))
	resolved := f.event(spec)
	f.finishJob(&first, 0)

	got := f.eventually(ev, phase(problemhookv1alpha1.PhaseSucceeded))
	f.g.Expect(got.Status.Actions[0].State).To(Equal(problemhookv1alpha1.ActionSucceeded))
	f.g.Expect(got.Status.Actions[1]).To(And(HaveField("State", problemhookv1alpha1.ActionSkipped),
		HaveField("Message", "Skipped: the problem closed at 2026-12-06T12:04:10Z (its RESOLVED notification, ProblemEvent "+resolved.Name+") before this step; nothing was created or sent")))
	f.g.Consistently(func(g Gomega) { g.Expect(f.jobs(g)).To(HaveLen(1)) }).WithTimeout(time.Second).Should(Succeed())
}

// When Dynatrace cannot say whether the problem is open, the step waits
// and asks again within the route's retry policy, saying so; it runs once
// Dynatrace answers that the problem is open, and never on a guess.
func TestAStepWaitsWhileDynatraceCannotBeAsked(t *testing.T) {
	f := newFixture(t)
	f.dt.AddProblem(richProblem())
	f.ladder(3, 2*time.Second, func(a *problemhookv1alpha1.Action) { a.OnlyWhileOpen = true })
	ev := f.openProblem()
	first := f.waitJobs(1)[0]
	// Every attempt of one call fails: the client's own retries do not
	// get through.
	f.dt.FailNext("GET", "/problems/"+pid, 4, 503, "")
	f.finishJob(&first, 0)

	waiting := f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(second(g, ev).FailedChecks).To(Equal(int32(1)))
	})
	run := waiting.Status.Actions[1]
	f.g.Expect(run.State).To(Equal(problemhookv1alpha1.ActionPending))
	f.g.Expect(run.Message).To(And(HavePrefix("Waiting: could not ask Dynatrace whether the problem is still open (attempt 1 of 4): "),
		HaveSuffix("; asking again at "+run.NextAttemptTime.UTC().Format(time.RFC3339))))
	f.g.Expect(f.jobs(f.g)).To(HaveLen(1), "no step runs on a guess")

	jobs := f.waitJobs(2)
	f.g.Expect(jobs[slicesIndex(jobs, "scale-out")].CreationTimestamp.Time).NotTo(BeTemporally("<", run.NextAttemptTime.Time))
	got := f.eventually(ev, phase(problemhookv1alpha1.PhaseRunning))
	f.g.Expect(got.Status.Actions[1]).To(And(HaveField("State", problemhookv1alpha1.ActionRunning), HaveField("FailedChecks", int32(1))))
}

// A step that needs approval waits for a person, holding no worker, and
// then runs, or ends Skipped when rejected or when nobody decides in time.
// The run records who decided, as the API server authenticated them; the
// comment and the metrics say what became of it.
func TestAStepAwaitsApproval(t *testing.T) {
	for _, tc := range []struct {
		name    string
		decide  func(f *fixture, ev *problemhookv1alpha1.ProblemEvent)
		timeout time.Duration
		want    func(f *fixture, ev *problemhookv1alpha1.ProblemEvent, me string)
		metric  string
	}{{
		name: "approved",
		decide: func(f *fixture, ev *problemhookv1alpha1.ProblemEvent) {
			f.g.Expect(cli.Approve(f.ctx, k8s, client.ObjectKeyFromObject(ev), "scale-out", false, io.Discard)).To(Succeed())
		},
		timeout: time.Hour,
		want: func(f *fixture, ev *problemhookv1alpha1.ProblemEvent, me string) {
			jobs := f.waitJobs(2)
			scaleOut := jobs[slicesIndex(jobs, "scale-out")]
			got := f.eventually(ev, phase(problemhookv1alpha1.PhaseRunning))
			f.g.Expect(got.Status.Actions[1].Approval).To(HaveValue(And(HaveField("Decision", problemhookv1alpha1.ApprovalApproved),
				HaveField("By", me), HaveField("Time", Not(BeNil())))))
			f.g.Expect(got.Annotations).NotTo(HaveKey(problemhookv1alpha1.AnnotationApprove))
			f.finishJob(&scaleOut, 0)
			got = f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) { g.Expect(ev.Status.Comment).NotTo(BeNil()) })
			f.g.Expect(got.Status.Comment.Message).To(ContainSubstring("problemhook ran Job ladder/scale-out: succeeded (approved by " + me + ")\n"))
		},
		metric: metrics.ApprovalApproved,
	}, {
		name: "rejected",
		decide: func(f *fixture, ev *problemhookv1alpha1.ProblemEvent) {
			f.g.Expect(cli.Approve(f.ctx, k8s, client.ObjectKeyFromObject(ev), "ladder/scale-out", true, io.Discard)).To(Succeed())
		},
		timeout: time.Hour,
		want: func(f *fixture, ev *problemhookv1alpha1.ProblemEvent, me string) {
			got := f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
				g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseSucceeded))
				g.Expect(ev.Status.Comment).NotTo(BeNil())
			})
			f.g.Expect(got.Status.Actions[1]).To(And(HaveField("State", problemhookv1alpha1.ActionSkipped),
				HaveField("Message", "Skipped: rejected by "+me+"; nothing was created or sent"),
				HaveField("Approval", HaveValue(And(HaveField("Decision", problemhookv1alpha1.ApprovalRejected), HaveField("By", me))))))
			f.g.Expect(got.Status.Comment.Message).To(ContainSubstring("problemhook ran Job ladder/scale-out: skipped (rejected by " + me + ")\n"))
			f.g.Expect(f.jobs(f.g)).To(HaveLen(1))
		},
		metric: metrics.ApprovalRejected,
	}, {
		name:    "timed out",
		decide:  func(*fixture, *problemhookv1alpha1.ProblemEvent) {},
		timeout: 2 * time.Second,
		want: func(f *fixture, ev *problemhookv1alpha1.ProblemEvent, _ string) {
			got := f.eventually(ev, phase(problemhookv1alpha1.PhaseSucceeded))
			f.g.Expect(got.Status.Actions[1]).To(And(HaveField("State", problemhookv1alpha1.ActionSkipped),
				HaveField("Message", "Skipped: approval timed out after 2s; nobody approved or rejected it, and nothing was created or sent"),
				HaveField("Approval", HaveValue(And(HaveField("Decision", problemhookv1alpha1.ApprovalTimedOut), HaveField("By", ""))))))
			f.g.Expect(f.jobs(f.g)).To(HaveLen(1))
		},
		metric: metrics.ApprovalTimedOut,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.dt.AddProblem(richProblem())
			f.ladder(2, time.Second, func(a *problemhookv1alpha1.Action) {
				a.Approval = &problemhookv1alpha1.ApprovalPolicy{Required: true, Timeout: &metav1.Duration{Duration: tc.timeout}}
			})
			decisions := func() float64 {
				return controlplane.MetricSum(t, metrics.ApprovalsName, map[string]string{"namespace": f.ns, "decision": tc.metric})
			}
			before := decisions()
			ev := f.openProblem()
			f.runFirstStep()

			awaiting := f.eventually(ev, phase(problemhookv1alpha1.PhaseAwaitingApproval))
			run := awaiting.Status.Actions[1]
			f.g.Expect(run.State).To(Equal(problemhookv1alpha1.ActionAwaitingApproval))
			f.g.Expect(run.Approval).To(HaveValue(HaveField("Decision", problemhookv1alpha1.ApprovalDecision(""))))
			deadline := run.Approval.RequestedTime.Add(tc.timeout)
			f.g.Expect(run.NextAttemptTime.Time).To(BeTemporally("==", deadline))
			f.g.Expect(run.Message).To(Equal("Awaiting approval until " + deadline.UTC().Format(time.RFC3339) +
				": manager approve " + f.ns + "/" + ev.Name + " scale-out"))
			f.g.Expect(awaiting.Status.Summary).To(Equal("1 succeeded, 1 awaiting approval"))
			f.g.Expect(f.jobs(f.g)).To(HaveLen(1))

			tc.decide(f, ev)
			tc.want(f, ev, whoAmI(t))
			f.g.Eventually(func() float64 { return decisions() - before }).Should(Equal(1.0))
		})
	}
}

// A decision that finds nothing awaiting approval changes nothing, and is
// removed: it does not wait to approve a later run.
func TestAnApprovalOfNothingAwaitingIsDropped(t *testing.T) {
	f := newFixture(t)
	f.dt.AddProblem(richProblem())
	f.ladder(2, time.Second, func(a *problemhookv1alpha1.Action) {
		a.Approval = &problemhookv1alpha1.ApprovalPolicy{Required: true, Timeout: &metav1.Duration{Duration: time.Hour}}
	})
	ev := f.openProblem()
	f.waitJobs(1)
	me := whoAmI(t)
	cur := f.get(ev)
	patch := client.MergeFrom(cur.DeepCopy())
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, problemhookv1alpha1.AnnotationApprove, "scale-out")
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, problemhookv1alpha1.AnnotationApproveBy, me)
	f.g.Expect(k8s.Patch(f.ctx, cur, patch)).To(Succeed())
	f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Annotations).NotTo(HaveKey(problemhookv1alpha1.AnnotationApprove))
		g.Expect(ev.Annotations).NotTo(HaveKey(problemhookv1alpha1.AnnotationApproveBy))
	})
	f.runFirstStep()
	got := f.eventually(ev, phase(problemhookv1alpha1.PhaseAwaitingApproval))
	f.g.Expect(got.Status.Actions[1].Approval.Decision).To(BeEmpty(), "an early approval does not approve the step")
}
