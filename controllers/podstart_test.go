package controllers_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers/problemevent"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

// startPod plays the Job controller and the kubelet for a Job whose Pod
// waits: the Job has one active Pod, none ready, and the Pod's container
// waits with reason and message.
func (f *fixture) startPod(job *batchv1.Job, reason, message string) {
	f.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: job.Name + "-pod", Labels: map[string]string{
			"batch.kubernetes.io/controller-uid": string(job.UID), "batch.kubernetes.io/job-name": job.Name,
		}},
		Spec: job.Spec.Template.Spec,
	}
	f.create(pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
		Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
	}}}
	f.g.Expect(k8s.Status().Update(f.ctx, pod)).To(Succeed())
	var current batchv1.Job
	f.g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(job), &current)).To(Succeed())
	now := metav1.Now()
	current.Status.StartTime, current.Status.Active, current.Status.Ready = &now, 1, ptr.To[int32](0)
	f.g.Expect(k8s.Status().Update(f.ctx, &current)).To(Succeed())
}

// A Job whose Pod cannot start, as the kubelet refuses a root image for
// a Pod that must run as non-root, says so in its run's message in the
// kubelet's words, and fails after the bound, its Job deleted, instead of
// running until the Job's deadline an hour later.
func TestARunSaysWhyItsPodCannotStart(t *testing.T) {
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{})
	t.Cleanup(dt.Close)
	dt.AddToken(dtToken, "problems.read", "problems.write")
	f := newTargetFixture(t, dt)
	const timeout = 4 * time.Second
	f.stop, f.receiver = startEventManager(t, f.ns, func(r *problemevent.Reconciler) { r.PodStartTimeout = timeout })
	f.route("root-image", problemhookv1alpha1.RouteMatch{}, jobAction(t, "run", false, 1))
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-3_1V2", DisplayID: "3", State: problemhookv1alpha1.StateOpen})
	job := f.waitJobs(1)[0]

	const kubelet = `container has runAsNonRoot and image will run as root (pod: "x", container: legacy)`
	f.startPod(&job, "CreateContainerConfigError", kubelet)
	f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseRunning))
		g.Expect(ev.Status.Actions).To(HaveExactElements(HaveField("Message",
			"Job "+job.Name+": Pod "+job.Name+"-pod cannot start: container legacy: CreateContainerConfigError: "+kubelet+"; the run fails if it still cannot after 4s")))
	})

	got := f.eventually(ev, phase(problemhookv1alpha1.PhaseFailed))
	f.g.Expect(got.Status.Actions).To(HaveExactElements(And(HaveField("State", problemhookv1alpha1.ActionFailed), HaveField("Message",
		"Job "+job.Name+" failed: Pod "+job.Name+"-pod did not start within 4s: container legacy: CreateContainerConfigError: "+kubelet+"; Job "+job.Name+" deleted"))))
	f.g.Eventually(func() bool {
		var gone batchv1.Job
		err := k8s.Get(f.ctx, client.ObjectKeyFromObject(&job), &gone)
		return apierrors.IsNotFound(err) || gone.DeletionTimestamp != nil
	}).Should(BeTrue(), "the Job is deleted")
}

// A Pod that is only slow to start (its image being pulled) is waited for:
// its run says it is starting, and runs once the Pod is ready.
func TestASlowPodIsWaitedFor(t *testing.T) {
	f := newFixture(t)
	f.route("slow", problemhookv1alpha1.RouteMatch{}, jobAction(t, "run", false, 1))
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-4_1V2", DisplayID: "4", State: problemhookv1alpha1.StateOpen})
	job := f.waitJobs(1)[0]
	f.startPod(&job, "ContainerCreating", "")
	f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(HaveField("Message", "Job "+job.Name+": its Pod is starting")))
	})
	var current batchv1.Job
	f.g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(&job), &current)).To(Succeed())
	current.Status.Ready = ptr.To[int32](1)
	f.g.Expect(k8s.Status().Update(f.ctx, &current)).To(Succeed())
	f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(And(HaveField("State", problemhookv1alpha1.ActionRunning), HaveField("Message", "Job "+job.Name+" running"))))
	})
	f.finishJob(&job, 0)
	f.eventually(ev, phase(problemhookv1alpha1.PhaseSucceeded))
}
