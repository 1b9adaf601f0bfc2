package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

// defaultRetryLimit is RetryPolicy.limit's default, for routes that give no retry policy.
const defaultRetryLimit = 5

// DefaultJobTTL is how long a finished Job is kept, unless its template
// says otherwise: long enough to read its logs, and its outcome is in the
// ProblemEvent's status for as long as the event is kept.
const DefaultJobTTL = 24 * time.Hour

// restrict fills in what the template leaves unsaid of the restricted Pod
// Security profile: non-root, the runtime's seccomp profile, no privilege
// escalation, no capabilities. What the template sets is left as it is.
func restrict(pod *corev1.PodSpec) {
	if pod.SecurityContext == nil {
		pod.SecurityContext = &corev1.PodSecurityContext{}
	}
	psc := pod.SecurityContext
	if psc.RunAsNonRoot == nil {
		psc.RunAsNonRoot = new(true)
	}
	if psc.SeccompProfile == nil {
		psc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	for _, containers := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range containers {
			if containers[i].SecurityContext == nil {
				containers[i].SecurityContext = &corev1.SecurityContext{}
			}
			sc := containers[i].SecurityContext
			if sc.AllowPrivilegeEscalation == nil {
				sc.AllowPrivilegeEscalation = new(false)
			}
			if sc.Capabilities == nil {
				sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
			}
		}
	}
}

// jobName is the deterministic name of the Job that runs action of route
// for the event (and entity, with per-entity fan-out): a readable prefix
// and a hash of what makes the Job unique. A retried reconcile, a restart
// or a second replica computes the same name, so AlreadyExists means done.
func jobName(event, route, action, entity string) string {
	sum := sha256.Sum256([]byte(event + "\x00" + route + "\x00" + action + "\x00" + entity))
	suffix := hex.EncodeToString(sum[:5])
	// Job names become the batch.kubernetes.io/job-name label of their
	// Pods, so they must fit in a label value: 63 characters.
	prefix := strings.TrimRight(truncate(route+"-"+action, 63-1-len(suffix)), "-.")
	return prefix + "-" + suffix
}

// newJob builds the Job that runs a Job action for a problem, and for one
// of its impacted entities when entity is not nil. The problem reaches the
// containers as environment variables only: the template's args can refer
// to them as $(PROBLEM_TITLE), which the kubelet expands without a shell,
// so no problem data is ever parsed as a command.
func newJob(p *routing.Problem, route *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, entity *routing.Entity) (*batchv1.Job, error) {
	tmpl, err := routing.JobTemplate(action.Job.Template.Raw)
	if err != nil {
		return nil, err
	}
	entityID := ""
	if entity != nil {
		entityID = entity.ID
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   route.Namespace,
			Name:        jobName(p.Event, route.Name, action.Name, entityID),
			Labels:      tmpl.Labels,
			Annotations: tmpl.Annotations,
		},
		Spec: tmpl.Spec,
	}
	ours := map[string]string{
		problemhookv1alpha1.LabelEvent:  p.Event,
		problemhookv1alpha1.LabelRoute:  route.Name,
		problemhookv1alpha1.LabelAction: action.Name,
	}
	job.Labels = merged(job.Labels, ours)
	job.Spec.Template.Labels = merged(job.Spec.Template.Labels, ours)
	if entity != nil {
		job.Annotations = merged(job.Annotations, map[string]string{problemhookv1alpha1.AnnotationEntity: entity.ID})
	}
	if job.Spec.BackoffLimit == nil {
		limit, _ := retryPolicy(route)
		job.Spec.BackoffLimit = &limit
	}
	if job.Spec.TTLSecondsAfterFinished == nil {
		ttl := int32(DefaultJobTTL.Seconds())
		job.Spec.TTLSecondsAfterFinished = &ttl
	}
	env, err := problemEnv(p, entity)
	if err != nil {
		return nil, err
	}
	pod := &job.Spec.Template.Spec
	restrict(pod)
	for _, containers := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range containers {
			// Ours first, so that the template's own variables can refer
			// to them and, given the same name, win.
			containers[i].Env = append(append([]corev1.EnvVar{}, env...), containers[i].Env...)
		}
	}
	return job, nil
}

// problemEnv is the environment every container of a Job action gets.
func problemEnv(p *routing.Problem, entity *routing.Entity) ([]corev1.EnvVar, error) {
	problemJSON, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding PROBLEM_JSON: %w", err)
	}
	env := []corev1.EnvVar{
		{Name: "PROBLEM_EVENT", Value: p.Event},
		{Name: "PROBLEM_ID", Value: p.ProblemID},
		{Name: "PROBLEM_DISPLAY_ID", Value: p.DisplayID},
		{Name: "PROBLEM_STATE", Value: p.State},
		{Name: "PROBLEM_TITLE", Value: p.Title},
		{Name: "PROBLEM_SEVERITY", Value: p.Severity},
		{Name: "PROBLEM_IMPACT", Value: p.Impact},
		{Name: "PROBLEM_URL", Value: p.URL},
		{Name: "PROBLEM_TAGS", Value: strings.Join(p.Tags, ",")},
		{Name: "PROBLEM_JSON", Value: string(problemJSON)},
	}
	if entity != nil {
		env = append(env,
			corev1.EnvVar{Name: "ENTITY_ID", Value: entity.ID},
			corev1.EnvVar{Name: "ENTITY_NAME", Value: entity.Name},
			corev1.EnvVar{Name: "ENTITY_TYPE", Value: entity.Type},
		)
	}
	return env, nil
}

// jobOutcome reads how a Job ended from its conditions: done is false
// while it runs.
func jobOutcome(job *batchv1.Job) (done, succeeded bool, reason, msg string) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, true, c.Reason, c.Message
		case batchv1.JobFailed:
			return true, false, c.Reason, c.Message
		}
	}
	return false, false, "", ""
}

// jobAttempts counts the Pods a Job has run so far.
func jobAttempts(job *batchv1.Job) int32 {
	n := job.Status.Failed + job.Status.Succeeded + job.Status.Active
	if n == 0 {
		return 1
	}
	return n
}

// exitCode finds the exit code of the Job's last terminated Pod: the first
// container that failed, else its first container.
func exitCode(pods []corev1.Pod) (int32, bool) {
	var (
		last  *corev1.ContainerStateTerminated
		code  int32
		found bool
	)
	for i := range pods {
		for _, cs := range pods[i].Status.ContainerStatuses {
			t := cs.State.Terminated
			if t == nil {
				continue
			}
			if last == nil || t.FinishedAt.After(last.FinishedAt.Time) || (t.FinishedAt.Equal(&last.FinishedAt) && t.ExitCode != 0 && code == 0) {
				last, code, found = t, t.ExitCode, true
			}
		}
	}
	return code, found
}

func merged(base, extra map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	maps.Copy(out, base)
	maps.Copy(out, extra)
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
