package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// whoAmI is the user the API server authenticates the tests' client as.
func whoAmI(t *testing.T) string {
	t.Helper()
	review := &authenticationv1.SelfSubjectReview{}
	if err := k8s.Create(context.Background(), review); err != nil {
		t.Fatal(err)
	}
	return review.Status.UserInfo.Username
}

// A failed Job run asked for again runs as a new attempt with a Job of its
// own; the request is recorded with who made it, acted on once, and its
// annotations removed.
func TestARerunRunsAFailedJobAgain(t *testing.T) {
	f := newFixture(t)
	f.route("restart", problemhookv1alpha1.RouteMatch{}, jobAction(t, "run", false, 1))
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-5_1V2", DisplayID: "5", State: problemhookv1alpha1.StateOpen})
	first := f.waitJobs(1)[0]
	f.finishJob(&first, 3)
	f.eventually(ev, phase(problemhookv1alpha1.PhaseFailed))

	me := whoAmI(t)
	var cur problemhookv1alpha1.ProblemEvent
	f.g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(ev), &cur)).To(Succeed())
	patch := client.MergeFrom(cur.DeepCopy())
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, problemhookv1alpha1.AnnotationRerun, "run")
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, problemhookv1alpha1.AnnotationRerunBy, me)
	f.g.Expect(k8s.Patch(f.ctx, &cur, patch)).To(Succeed())

	var second batchv1.Job
	f.g.Eventually(func(g Gomega) {
		jobs := f.jobs(g)
		g.Expect(jobs).To(HaveLen(2))
		for _, j := range jobs {
			if j.Name != first.Name {
				second = j
			}
		}
	}).Should(Succeed())
	got := f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Annotations).NotTo(HaveKey(problemhookv1alpha1.AnnotationRerun))
		g.Expect(ev.Annotations).NotTo(HaveKey(problemhookv1alpha1.AnnotationRerunBy))
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseRunning))
	})
	f.g.Expect(got.Status.Actions).To(HaveExactElements(And(HaveField("State", problemhookv1alpha1.ActionRunning),
		HaveField("Job", second.Name), HaveField("Reruns", int32(1)), HaveField("ExitCode", BeNil()))))
	f.g.Expect(got.Status.Reruns).To(HaveExactElements(And(HaveField("Action", "run"), HaveField("By", me),
		HaveField("Runs", int32(1)), HaveField("Requested", Not(BeNil())))))

	f.finishJob(&second, 0)
	got = f.eventually(ev, phase(problemhookv1alpha1.PhaseSucceeded))
	f.g.Expect(got.Status.Actions[0].Message).To(HavePrefix("Job " + second.Name + " succeeded"))
	f.g.Consistently(func(g Gomega) { g.Expect(f.jobs(g)).To(HaveLen(2)) }).WithTimeout(time.Second).Should(Succeed(), "the request is acted on once")
}
