package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers/problemevent"
)

// podLogs stands in for the kubelet behind pods/log, which envtest has
// not: it answers only for a Pod that exists and a container it has, as
// the API server does, with the last tailLines lines cut at limitBytes
// from their start. (make e2e reads real logs on a real node.)
type podLogs struct {
	mu       sync.Mutex
	logs     map[string]string // by Pod name
	requests []string
}

func (l *podLogs) Tail(ctx context.Context, namespace, pod, container string, tailLines, limitBytes int64) ([]byte, error) {
	l.mu.Lock()
	l.requests = append(l.requests, fmt.Sprintf("%s/%s/%s tailLines=%d limitBytes=%d", namespace, pod, container, tailLines, limitBytes))
	l.mu.Unlock()
	var p corev1.Pod
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: pod}, &p); err != nil {
		return nil, err
	}
	found := false
	for _, c := range p.Spec.Containers {
		found = found || c.Name == container
	}
	if !found || tailLines < 0 || limitBytes <= 0 {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, pod))
	}
	l.mu.Lock()
	log, ok := l.logs[pod]
	l.mu.Unlock()
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods/log"}, pod)
	}
	lines := strings.SplitAfter(log, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	lines = lines[max(0, len(lines)-int(tailLines)):]
	out := strings.Join(lines, "")
	return []byte(out[:min(len(out), int(limitBytes))]), nil
}

// A finished Job's last lines are kept in its run, bounded as its action
// says, with the Secrets it uses masked, and quoted in the comment.
func TestJobOutputIsKept(t *testing.T) {
	logs := &podLogs{logs: map[string]string{}}
	f := newFixture(t)
	f.stop()
	f.stop, f.receiver = startEventManager(t, f.ns, func(r *problemevent.Reconciler) { r.PodLogs = logs })
	f.dt.AddProblem(richProblem())
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "legacy-credentials"},
		Data: map[string][]byte{"password": []byte("hunter2-correct-horse")}})
	action := problemhookv1alpha1.Action{Name: "incident", Job: &problemhookv1alpha1.JobAction{
		Output: &problemhookv1alpha1.JobOutput{TailLines: new(int32(5)), LimitBytes: new(int32(200))},
		Template: jobTemplate(t, func(j *batchv1.JobTemplateSpec) {
			j.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "legacy-credentials"}, Key: "password"},
			}}}
		}),
	}}
	f.route("legacy-incident", problemhookv1alpha1.RouteMatch{}, action)
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "P-1", State: problemhookv1alpha1.StateOpen, Title: "CPU"})
	job := f.waitJobs(1)[0]
	var log strings.Builder
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&log, "step %02d of 40\n", i)
	}
	log.WriteString("logging in with hunter2-correct-horse\nno space left on /var\n")
	logs.mu.Lock()
	logs.logs[job.Name+"-pod"] = log.String()
	logs.mu.Unlock()
	f.finishJob(&job, 3)

	want := "step 38 of 40\nstep 39 of 40\nstep 40 of 40\nlogging in with [masked]\nno space left on /var"
	got := f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(And(HaveField("ExitCode", HaveValue(Equal(int32(3)))), HaveField("Output", want))))
		g.Expect(ev.Status.Comment).NotTo(BeNil())
		g.Expect(ev.Status.Comment.Posted).To(BeTrue(), ev.Status.Comment.Message)
	})
	f.g.Expect(got.Status.Comment.Message).To(Equal("problemhook ran Job legacy-incident/incident: failed (exit code 3)\n" +
		"> step 38 of 40\n> step 39 of 40\n> step 40 of 40\n> logging in with [masked]\n> no space left on /var\n" +
		"ProblemEvent " + f.ns + "/" + ev.Name))
	f.g.Expect(f.dt.Comments(pid)).To(ConsistOf(HaveField("Content", got.Status.Comment.Message)))
	logs.mu.Lock()
	defer logs.mu.Unlock()
	f.g.Expect(logs.requests).To(Equal([]string{f.ns + "/" + job.Name + "-pod/legacy tailLines=5 limitBytes=800"}), "one bounded request per finished Pod")
}
