//go:build linux

package drills

import (
	"context"
	"fmt"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// namespaceWithJobs is namespace with a jobController following its Jobs.
func (d *drills) namespaceWithJobs(ctx context.Context, name string, dynatraceAPI bool, manifest string) (string, *jobController, error) {
	ns, err := d.namespace(ctx, name, dynatraceAPI, manifest)
	if err != nil {
		return "", nil, err
	}
	jc, err := d.startJobController(ctx, ns)
	return ns, jc, err
}

// jobController plays the Job controller of a cluster with no node: it
// marks each Job of the namespace Complete a moment after it appears, and
// counts how often each Job name was created.
type jobController struct {
	mu      sync.Mutex
	created map[string]int
	stop    func()
}

func (d *drills) startJobController(ctx context.Context, ns string) (*jobController, error) {
	w, err := d.cs.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	jc := &jobController{created: map[string]int{}, stop: w.Stop}
	go func() {
		for ev := range w.ResultChan() {
			job, ok := ev.Object.(*batchv1.Job)
			if !ok || ev.Type != watch.Added {
				continue
			}
			jc.mu.Lock()
			jc.created[job.Name]++
			jc.mu.Unlock()
			go d.completeJob(ctx, job, 300*time.Millisecond)
		}
	}()
	return jc, nil
}

func (jc *jobController) twice() []string {
	jc.mu.Lock()
	defer jc.mu.Unlock()
	var out []string
	for name, n := range jc.created {
		if n > 1 {
			out = append(out, fmt.Sprintf("Job %s created %d times", name, n))
		}
	}
	return out
}

func (jc *jobController) count() int {
	jc.mu.Lock()
	defer jc.mu.Unlock()
	return len(jc.created)
}

// completeJob marks a Job Complete as the Job controller would after its
// Pod exited 0.
func (d *drills) completeJob(ctx context.Context, job *batchv1.Job, after time.Duration) {
	time.Sleep(after)
	for range 20 {
		var current batchv1.Job
		if err := d.kube.Get(ctx, client.ObjectKeyFromObject(job), &current); err != nil {
			return
		}
		now := metav1.Now()
		current.Status.StartTime = &now
		current.Status.CompletionTime = &now
		current.Status.Succeeded = 1
		current.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
		}
		if err := d.kube.Status().Update(ctx, &current); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
