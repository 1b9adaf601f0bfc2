package jobs

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

// DefaultJobDeadline is how long a Job may run, unless its template says
// otherwise: a Job whose image cannot be pulled, or that hangs, would
// otherwise never end, and neither would its event.
const DefaultJobDeadline = time.Hour

// MaxProblemJSON bounds PROBLEM_JSON. The kernel refuses an environment
// variable past 128 KiB, and the Pod would then never start; a problem
// with hundreds of impacted entities passes that.
const MaxProblemJSON = 32 << 10

// DefaultJobTTL is how long a finished Job is kept, unless its template
// says otherwise: long enough to read its logs, and its outcome is in the
// ProblemEvent's status for as long as the event is kept.
const DefaultJobTTL = 24 * time.Hour

// New builds the Job that runs a Job action for a problem, and for one
// of its impacted entities when entity is not nil. The problem reaches the
// containers as environment variables only: the template's args can refer
// to them as $(PROBLEM_TITLE), which the kubelet expands without a shell,
// so no problem data is ever parsed as a command.
func New(p *routing.Problem, route *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, entity *routing.Entity) (*batchv1.Job, error) {
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
			Name:        Name(p.Event, route.Name, action.Name, entityID),
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
		limit, _ := route.RetryPolicy()
		job.Spec.BackoffLimit = &limit
	}
	if job.Spec.ActiveDeadlineSeconds == nil {
		deadline := int64(DefaultJobDeadline.Seconds())
		job.Spec.ActiveDeadlineSeconds = &deadline
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

// Name is the deterministic name of the Job that runs action of route
// for the event (and entity, with per-entity fan-out): a readable prefix
// and a hash of what makes the Job unique. A retried reconcile, a restart
// or a second replica computes the same name, so AlreadyExists means done.
func Name(event, route, action, entity string) string {
	sum := sha256.Sum256([]byte(event + "\x00" + route + "\x00" + action + "\x00" + entity))
	suffix := hex.EncodeToString(sum[:5])
	// Job names become the batch.kubernetes.io/job-name label of their
	// Pods, so they must fit in a label value: 63 characters.
	prefix := strings.TrimRight(cutString(route+"-"+action, 63-1-len(suffix)), "-.")
	return prefix + "-" + suffix
}

// RerunName is the name of the Job of a run asked for again the rerun-th
// time: the first Job's name with a suffix of its own, so that each rerun
// creates a Job once, and never meets the Job of the run before it.
func RerunName(name string, rerun int32) string {
	if rerun == 0 {
		return name
	}
	// Name ends in a dash and ten hex digits; they are replaced.
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00rerun\x00%d", name, rerun))
	return name[:max(len(name)-11, 0)] + "-" + hex.EncodeToString(sum[:5])
}

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

// problemEnv is the environment every container of a Job action gets.
func problemEnv(p *routing.Problem, entity *routing.Entity) ([]corev1.EnvVar, error) {
	problemJSON, err := BoundedProblemJSON(p)
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
		{Name: "PROBLEM_JSON", Value: problemJSON},
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

// BoundedProblemJSON encodes the problem for PROBLEM_JSON within
// MaxProblemJSON. A problem past it keeps fewer of its impacted entities,
// tags and management zones (halving the longest list first) and less of
// its message, and says so in a field "truncated" that scripts can test:
// it stays JSON that parses.
func BoundedProblemJSON(p *routing.Problem) (string, error) {
	out, err := json.Marshal(p)
	if err != nil || len(out) <= MaxProblemJSON {
		return string(out), err
	}
	cut := *p
	for range 64 {
		lists := []*int{new(len(cut.ImpactedEntities)), new(len(cut.Tags)), new(len(cut.ManagementZones))}
		longest := lists[0]
		for _, n := range lists[1:] {
			if *n > *longest {
				longest = n
			}
		}
		if *longest == 0 {
			cut.Message = cutString(cut.Message, 1024)
		}
		*longest /= 2
		cut.ImpactedEntities = cut.ImpactedEntities[:*lists[0]]
		cut.Tags = cut.Tags[:*lists[1]]
		cut.ManagementZones = cut.ManagementZones[:*lists[2]]
		note := struct {
			*routing.Problem
			Truncated string `json:"truncated"`
		}{&cut, fmt.Sprintf("PROBLEM_JSON is cut to %d bytes: it lists %d of %d impactedEntities, %d of %d tags and %d of %d managementZones",
			MaxProblemJSON, len(cut.ImpactedEntities), len(p.ImpactedEntities), len(cut.Tags), len(p.Tags), len(cut.ManagementZones), len(p.ManagementZones))}
		if out, err = json.Marshal(note); err != nil || len(out) <= MaxProblemJSON {
			return string(out), err
		}
	}
	return "", fmt.Errorf("the problem does not fit in %d bytes", MaxProblemJSON)
}

func merged(base, extra map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	maps.Copy(out, base)
	maps.Copy(out, extra)
	return out
}

// cutString is s cut to at most n bytes.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
