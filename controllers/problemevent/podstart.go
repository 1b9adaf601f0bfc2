package problemevent

// A Job whose Pod cannot start looks, from the Job, like one that runs: it
// has an active Pod and nothing ends until its deadline, an hour later. A
// run looks at the Pods of a Job that has none ready, says in the
// kubelet's words why one waits when the reason will not clear by itself,
// and fails after PodStartTimeout, deleting the Job.

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
)

const (
	// DefaultPodStartTimeout is how long a Job's Pod may wait for a reason
	// that will not clear by itself before its run fails: long enough for
	// an image pull that failed once to be tried again, and for a Pod
	// that cannot be scheduled to find a node the cluster autoscaler adds.
	DefaultPodStartTimeout = 5 * time.Minute
	// podStartRecheck is how often a run looks again at a Job none of
	// whose Pods is ready: nothing about the Job changes while they wait.
	podStartRecheck = 20 * time.Second
)

// stuckReasons are the reasons a container waits that will not clear by
// themselves: a Secret or ConfigMap missing, an image that runs as root
// where the Pod wants non-root, an image that cannot be pulled.
var stuckReasons = sets.New("CreateContainerConfigError", "CreateContainerError", "ErrImagePull", "ImagePullBackOff",
	"InvalidImageName", "ErrImageNeverPull")

// podStartTimeout is PodStartTimeout, or its default.
func (r *Reconciler) podStartTimeout() time.Duration {
	if r.PodStartTimeout > 0 {
		return r.PodStartTimeout
	}
	return DefaultPodStartTimeout
}

// runningMessage is the message of a run whose Job has a Pod ready.
func runningMessage(job string) string { return "Job " + job + " running" }

// startingPods reports whether a run of ev waits for its Job's Pod to
// start, which no change of the Job will announce.
func startingPods(ev *problemhookv1alpha1.ProblemEvent) bool {
	for _, a := range ev.Status.Actions {
		if a.State == problemhookv1alpha1.ActionRunning && a.Job != "" && a.Message != runningMessage(a.Job) {
			return true
		}
	}
	return false
}

// watchPodStart records whether the Pods of job, which has not ended,
// run, and why one cannot start; past PodStartTimeout it fails the run
// and deletes the Job.
func (r *Reconciler) watchPodStart(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, ir *problemhookv1alpha1.IntegrationRoute,
	a *problemhookv1alpha1.ActionStatus, job *batchv1.Job) error {
	if ptr.Deref(job.Status.Ready, 0) > 0 {
		a.Message = runningMessage(job.Name)
		return nil
	}
	if job.Status.Active == 0 {
		return nil // no Pod yet, or between two
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(job.Namespace), client.MatchingLabels{jobControllerUIDLabel: string(job.UID)}); err != nil {
		return fmt.Errorf("listing the Pods of Job %s: %w", job.Name, err)
	}
	pod, why := stuckPod(pods.Items)
	if pod == nil {
		a.Message = "Job " + job.Name + ": its Pod is starting"
		return nil
	}
	timeout := r.podStartTimeout()
	waited := r.Now().Sub(pod.CreationTimestamp.Time)
	if waited < timeout {
		a.Message = controllers.Truncate(fmt.Sprintf("Job %s: Pod %s cannot start: %s; the run fails if it still cannot after %s", job.Name, pod.Name, why, timeout), 1024)
		return nil
	}
	what := "Job " + job.Name + " deleted"
	w, err := r.Jobs.Writer(r.Client, ev.Namespace, ir)
	if err != nil {
		return err
	}
	err = w.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &job.UID})
	switch {
	case w.Refused(err):
		what = w.Forbidden(err, "delete Job "+job.Name) + "; it runs on to its deadline"
	case client.IgnoreNotFound(err) != nil:
		return fmt.Errorf("deleting Job %s, whose Pod cannot start: %w", job.Name, err)
	}
	r.settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("Job %s failed: Pod %s did not start within %s: %s; %s", job.Name, pod.Name, timeout, why, what))
	ctrl.LoggerFrom(ctx).Info("Failed a run whose Pod cannot start", "Job", klog.KObj(job), "Pod", klog.KObj(pod), "reason", why)
	r.Recorder.Eventf(ev, job, corev1.EventTypeWarning, "JobPodNotStarted", "RunJob", "%s", a.Message)
	return nil
}

// stuckPod finds a Pod that waits for a reason that will not clear by
// itself, and says why in the words of the scheduler or the kubelet.
func stuckPod(pods []corev1.Pod) (*corev1.Pod, string) {
	for i := range pods {
		pod := &pods[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodPending {
			continue
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return pod, "Unschedulable: " + c.Message
			}
		}
		for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && stuckReasons.Has(w.Reason) {
				return pod, fmt.Sprintf("container %s: %s: %s", cs.Name, w.Reason, w.Message)
			}
		}
	}
	return nil, ""
}
