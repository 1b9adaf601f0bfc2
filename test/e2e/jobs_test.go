//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/fixtures"
	"github.com/problemhook/problemhook/test/harness/node"
)

// A notification of a problem with two impacted hosts runs one Pod per
// host. Each prints the ENTITY_ID it was given; the one for the second host
// exits 3 because of it. The event records both outcomes and Dynatrace
// gets one comment that says so.
func TestPerEntityJobsRunAndReportTheirExitCodes(t *testing.T) {
	e := newEnv(t)
	const good, bad = "HOST-00000000000E2E01", "HOST-00000000000E2E02"
	e.jobRoute("per-entity", "perImpactedEntity: true", "",
		fmt.Sprintf(`echo "entity $ENTITY_ID"; [ "$ENTITY_ID" = %s ] && exit 3; exit 0`, bad))
	pid := e.problem("P-9001", good, bad)
	e.notify(pid, "P-9001", "OPEN")

	ev := e.openEvent(pid, "to fail", 2*time.Minute, settled(problemhookv1alpha1.PhaseFailed))
	if len(ev.Status.Actions) != 2 {
		t.Fatalf("want one action per impacted host, got %s", actionsLine(ev))
	}
	for _, a := range ev.Status.Actions {
		want, code := problemhookv1alpha1.ActionSucceeded, int32(0)
		if a.Entity == bad {
			want, code = problemhookv1alpha1.ActionFailed, 3
		}
		if a.State != want || a.ExitCode == nil && code != 0 || a.ExitCode != nil && *a.ExitCode != code {
			t.Errorf("action for %s: want %s with exit code %d, got %s", a.Entity, want, code, actionsLine(ev))
		}
		pods := e.pods(a.Job)
		if len(pods) != 1 {
			t.Fatalf("Job %s of %s: want 1 Pod, got %d", a.Job, a.Entity, len(pods))
		}
		if log := e.logs(pods[0].Name); log != "entity "+a.Entity+"\n" {
			t.Errorf("Pod %s of %s printed %q: want %q", pods[0].Name, a.Entity, log, "entity "+a.Entity+"\n")
		}
	}

	e.openEvent(pid, "to have commented", 30*time.Second, func(ev *problemhookv1alpha1.ProblemEvent) error {
		if ev.Status.Comment == nil || !ev.Status.Comment.Posted {
			return fmt.Errorf("comment %+v", ev.Status.Comment)
		}
		return nil
	})
	comments := dt.Comments(pid)
	if len(comments) != 1 {
		t.Fatalf("want 1 comment on the problem, got %d: %+v", len(comments), comments)
	}
	want := "problemhook ran Job per-entity/run for 2 impacted entities: 1 succeeded, 1 failed (exit code 3)"
	if !strings.Contains(comments[0].Content, want) {
		t.Errorf("comment %q does not say %q", comments[0].Content, want)
	}
}

// With parallelism 2, four per-entity Jobs never have more than two Pods
// running at once, as the API server sees them; and two do run at once.
// Each runs long enough (5 s) for two to overlap on a slow machine.
func TestParallelismHoldsOnTheNode(t *testing.T) {
	e := newEnv(t)
	e.jobRoute("parallel", "perImpactedEntity: true\n      parallelism: 2", "", "sleep 5")
	hosts := []string{"HOST-00000000000E2E11", "HOST-00000000000E2E12", "HOST-00000000000E2E13", "HOST-00000000000E2E14"}
	pid := e.problem("P-9002", hosts...)

	w, err := cs.CoreV1().Pods(e.ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var (
		mu         sync.Mutex
		maxRunning int
		running    = map[string]bool{}
	)
	go func() {
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			running[pod.Name] = ev.Type != watch.Deleted && pod.Status.Phase == corev1.PodRunning
			n := 0
			for _, r := range running {
				if r {
					n++
				}
			}
			maxRunning = max(maxRunning, n)
			mu.Unlock()
		}
	}()

	e.notify(pid, "P-9002", "OPEN")
	ev := e.openEvent(pid, "to succeed", 2*time.Minute, settled(problemhookv1alpha1.PhaseSucceeded))
	if len(ev.Status.Actions) != len(hosts) {
		t.Fatalf("want %d actions, got %s", len(hosts), actionsLine(ev))
	}
	mu.Lock()
	defer mu.Unlock()
	if maxRunning > 2 {
		t.Errorf("%d Pods ran at once; parallelism is 2", maxRunning)
	}
	if maxRunning < 2 {
		t.Errorf("at most %d Pod ran at once: the bound of 2 was never reached, so this test proves nothing", maxRunning)
	}
	t.Logf("at most %d of %d Pods ran at once", maxRunning, len(running))
}

// A RESOLVED notification stops the Job its OPEN event still runs, and
// its Pod really ends.
func TestResolvedStopsTheRunningJob(t *testing.T) {
	e := newEnv(t)
	e.jobRoute("long", "", "", "sleep 300")
	pid := e.problem("P-9003", "HOST-00000000000E2E21")
	e.notify(pid, "P-9003", "OPEN")

	var job, pod string
	e.openEvent(pid, "to run its Job's Pod", time.Minute, func(ev *problemhookv1alpha1.ProblemEvent) error {
		if len(ev.Status.Actions) != 1 || ev.Status.Actions[0].Job == "" {
			return fmt.Errorf("actions %s", actionsLine(ev))
		}
		job = ev.Status.Actions[0].Job
		for _, p := range e.pods(job) {
			if p.Status.Phase == corev1.PodRunning {
				pod = p.Name
				return nil
			}
		}
		return fmt.Errorf("no Pod of Job %s running yet", job)
	})
	podUID := e.podUID(pod)

	e.notify(pid, "P-9003", "RESOLVED")
	ev := e.openEvent(pid, "to be stopped", time.Minute, func(ev *problemhookv1alpha1.ProblemEvent) error {
		if len(ev.Status.Actions) != 1 || ev.Status.Actions[0].State != problemhookv1alpha1.ActionStopped {
			return fmt.Errorf("actions %s", actionsLine(ev))
		}
		return nil
	})
	e.eventually("the Pod to end", time.Minute, func() error {
		p, err := cs.CoreV1().Pods(e.ns).Get(context.Background(), pod, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil // deleted: the kubelet has confirmed its containers are gone
		case err != nil:
			return err
		case p.UID != podUID:
			return nil
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
			return nil
		}
		return fmt.Errorf("Pod %s is %s", pod, p.Status.Phase)
	})
	t.Logf("stopped: %s", actionsLine(ev))
}

// activeDeadlineSeconds in a route's template ends a Job that hangs, and
// the event says why.
func TestActiveDeadlineEndsAHangingJob(t *testing.T) {
	e := newEnv(t)
	e.jobRoute("hangs", "", "activeDeadlineSeconds: 3", "sleep 300")
	pid := e.problem("P-9004", "HOST-00000000000E2E31")
	e.notify(pid, "P-9004", "OPEN")
	ev := e.openEvent(pid, "to fail", time.Minute, settled(problemhookv1alpha1.PhaseFailed))
	a := ev.Status.Actions[0]
	if a.State != problemhookv1alpha1.ActionFailed || !strings.Contains(a.Message, "DeadlineExceeded") {
		t.Errorf("want the action Failed with DeadlineExceeded in its message, got %s", actionsLine(ev))
	}
	for _, p := range e.pods(a.Job) {
		if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodPending {
			t.Errorf("Pod %s still %s after the deadline", p.Name, p.Status.Phase)
		}
	}
}

// A Job whose template sets no user, in an image that runs as root: the
// kubelet refuses to start it, since problemhook makes every Job's Pod
// runAsNonRoot. The run says so in the kubelet's words within a minute,
// and fails after the manager's --job-pod-start-timeout, its Job deleted,
// instead of running until the Job's deadline an hour later.
func TestARunSaysWhyItsPodCannotStart(t *testing.T) {
	e := newEnv(t)
	e.apply(fixtures.JobRoute{Name: "as-root", Image: node.BusyboxImage, Script: "true", AsImageUser: true}.Manifest())
	pid := e.problem("P-9007", "HOST-00000000000E2E71")
	start := time.Now()
	e.notify(pid, "P-9007", "OPEN")
	const kubelet = "container has runAsNonRoot and image will run as root"
	e.openEvent(pid, "to say why its Pod cannot start", time.Minute, func(ev *problemhookv1alpha1.ProblemEvent) error {
		if len(ev.Status.Actions) != 1 || !strings.Contains(ev.Status.Actions[0].Message, kubelet) {
			return fmt.Errorf("runs: %s", actionsLine(ev))
		}
		return nil
	})
	said := time.Since(start)
	ev := e.openEvent(pid, "to fail", podStartTimeout+time.Minute, settled(problemhookv1alpha1.PhaseFailed))
	a := ev.Status.Actions[0]
	if a.State != problemhookv1alpha1.ActionFailed || !strings.Contains(a.Message, "did not start within "+podStartTimeout.String()) ||
		!strings.Contains(a.Message, kubelet) || !strings.HasSuffix(a.Message, "Job "+a.Job+" deleted") {
		t.Errorf("want the run Failed, saying its Pod did not start and why, and its Job deleted; got %s", actionsLine(ev))
	}
	e.eventually("the Job is gone", time.Minute, func() error {
		var job batchv1.Job
		err := kube.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: a.Job}, &job)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("Job %s still there (%w)", a.Job, err)
	})
	t.Logf("said why after %s, failed after %s: %s", said.Round(time.Second), time.Since(start).Round(time.Second), a.Message)
}

// The manager is killed while an event's Jobs run and started again: each
// Job is created once and runs to its end once, and the event comments once.
func TestManagerKilledWhileJobsRun(t *testing.T) {
	e := newEnv(t)
	e.jobRoute("survives", "perImpactedEntity: true", "", `echo "$ENTITY_ID"; sleep 5`)
	hosts := []string{"HOST-00000000000E2E41", "HOST-00000000000E2E42", "HOST-00000000000E2E43"}
	pid := e.problem("P-9005", hosts...)
	e.notify(pid, "P-9005", "OPEN")

	var event string
	e.openEvent(pid, "to run its Jobs", time.Minute, func(ev *problemhookv1alpha1.ProblemEvent) error {
		event = ev.Name
		running := 0
		for _, j := range e.jobs(ev.Name) {
			for _, p := range e.pods(j.Name) {
				if p.Status.Phase == corev1.PodRunning {
					running++
				}
			}
		}
		if running < len(hosts) {
			return fmt.Errorf("%d of %d Pods running", running, len(hosts))
		}
		return nil
	})
	before := map[string]types.UID{}
	for _, j := range e.jobs(event) {
		before[j.Name] = j.UID
	}

	mgr.Kill()
	// A restart a moment later, as a crash-looping Pod's would be.
	time.Sleep(time.Second)
	if err := mgr.Start(context.Background()); err != nil {
		t.Fatalf("restarting the manager: %v", err)
	}

	ev := e.openEvent(pid, "to succeed and comment", 2*time.Minute, func(ev *problemhookv1alpha1.ProblemEvent) error {
		if err := settled(problemhookv1alpha1.PhaseSucceeded)(ev); err != nil {
			return err
		}
		if ev.Status.Comment == nil || !ev.Status.Comment.Posted {
			return fmt.Errorf("comment %+v", ev.Status.Comment)
		}
		return nil
	})
	jobs := e.jobs(event)
	if len(jobs) != len(hosts) {
		t.Errorf("want %d Jobs, got %d", len(hosts), len(jobs))
	}
	var seen []string
	for _, j := range jobs {
		if before[j.Name] != j.UID {
			t.Errorf("Job %s was created again after the restart", j.Name)
		}
		if j.Status.Succeeded != 1 || j.Status.Failed != 0 {
			t.Errorf("Job %s: succeeded=%d failed=%d, want one run to its end", j.Name, j.Status.Succeeded, j.Status.Failed)
		}
		pods := e.pods(j.Name)
		if len(pods) != 1 {
			t.Errorf("Job %s has %d Pods, want 1", j.Name, len(pods))
			continue
		}
		seen = append(seen, strings.TrimSpace(e.logs(pods[0].Name)))
	}
	slices.Sort(seen)
	if !slices.Equal(seen, hosts) {
		t.Errorf("the Pods printed %v, want %v", seen, hosts)
	}
	// Give a second comment the time to show, were one coming: proving
	// that nothing happens takes waiting.
	time.Sleep(3 * time.Second)
	if n := len(dt.Comments(pid)); n != 1 {
		t.Errorf("want 1 comment after the restart, got %d", n)
	}
	t.Logf("after the restart: %s", actionsLine(ev))
}

func (e *env) podUID(name string) types.UID {
	e.t.Helper()
	p, err := cs.CoreV1().Pods(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.UID
}

// A Job that prints 40 lines keeps its last ones, read from the kubelet
// through the API server, and the comment quotes them under the run's line.
func TestJobOutputIsKeptAndQuoted(t *testing.T) {
	e := newEnv(t)
	e.jobRoute("chatty", "output: {tailLines: 5, limitBytes: 256}", "",
		`for i in $(seq 1 40); do echo "step $i of 40"; done; echo "disk full"; exit 2`)
	pid := e.problem("P-9040", "HOST-00000000000E2E40")
	e.notify(pid, "P-9040", "OPEN")

	ev := e.openEvent(pid, "to fail", 2*time.Minute, settled(problemhookv1alpha1.PhaseFailed))
	const want = "step 37 of 40\nstep 38 of 40\nstep 39 of 40\nstep 40 of 40\ndisk full"
	if len(ev.Status.Actions) != 1 || ev.Status.Actions[0].Output != want {
		t.Fatalf("want the run to keep the last 5 lines %q, got %s with output %q", want, actionsLine(ev), ev.Status.Actions[0].Output)
	}
	e.openEvent(pid, "to have commented", 30*time.Second, func(ev *problemhookv1alpha1.ProblemEvent) error {
		if ev.Status.Comment == nil || !ev.Status.Comment.Posted {
			return fmt.Errorf("comment %+v", ev.Status.Comment)
		}
		return nil
	})
	comments := dt.Comments(pid)
	quoted := "problemhook ran Job chatty/run: failed (exit code 2)\n> step 37 of 40\n> step 38 of 40\n> step 39 of 40\n> step 40 of 40\n> disk full\n"
	if len(comments) != 1 || !strings.Contains(comments[0].Content, quoted) {
		t.Fatalf("want 1 comment quoting %q, got %+v", quoted, comments)
	}
}
