package problemevent

// What a finished Job said: the end of its container's log, bounded and
// with the Secrets its route and its Pod use masked, kept in the run's
// status for the comment and the dashboard.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"k8s.io/utils/ptr"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/actionkind"
)

// Defaults of a Job action's output.
const (
	DefaultOutputLines = 20
	DefaultOutputBytes = 2048
)

// MaxEventOutput bounds the output all of an event's runs keep together:
// an action that runs a Job for each of hundreds of impacted entities must
// not carry the event past what etcd stores.
const MaxEventOutput = 64 << 10

// PodLogs reads the end of a container's log.
type PodLogs interface {
	// Tail returns at most the last tailLines lines of the log of
	// container in pod, and no more than limitBytes bytes of them.
	Tail(ctx context.Context, namespace, pod, container string, tailLines, limitBytes int64) ([]byte, error)
}

// NewPodLogs reads logs through the API server, which asks the Pod's
// kubelet: one bounded request per finished Pod.
func NewPodLogs(cfg *rest.Config, httpClient *http.Client) (PodLogs, error) {
	cs, err := kubernetes.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return apiPodLogs{cs}, nil
}

type apiPodLogs struct{ cs kubernetes.Interface }

// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get

func (l apiPodLogs) Tail(ctx context.Context, namespace, pod, container string, tailLines, limitBytes int64) ([]byte, error) {
	return l.cs.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container: container, TailLines: &tailLines, LimitBytes: &limitBytes,
	}).DoRaw(ctx)
}

// outputBounds are a Job action's output bounds, with their defaults.
func outputBounds(action *problemhookv1alpha1.Action) (lines, limit int) {
	lines, limit = DefaultOutputLines, DefaultOutputBytes
	if action == nil || action.Job == nil || action.Job.Output == nil {
		return lines, limit
	}
	o := action.Job.Output
	return int(ptr.Deref(o.TailLines, int32(lines))), int(ptr.Deref(o.LimitBytes, int32(limit)))
}

// keepOutput stores the end of the log of the Pod container whose exit
// code the run records in a.Output. A log that cannot be read is said so
// there; it never fails the run.
func (r *Reconciler) keepOutput(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, job *batchv1.Job, pod, container string, a *problemhookv1alpha1.ActionStatus) {
	if r.PodLogs == nil || pod == "" {
		return
	}
	ir, err := r.integrationRoute(ctx, ev.Namespace, a.Route)
	if err != nil {
		return
	}
	var action *problemhookv1alpha1.Action
	if ir != nil {
		action = findAction(ir, a.Action)
	}
	lines, limit := outputBounds(action)
	if lines == 0 {
		return
	}
	if kept := eventOutput(ev); kept+limit > MaxEventOutput {
		a.Output = fmt.Sprintf("(not kept: this event's runs keep %d bytes of output already, the most one event keeps)", kept)
		return
	}
	// The server cuts at limitBytes from the start of what it sends; ask
	// for more than is kept and keep the end.
	raw, err := r.PodLogs.Tail(ctx, ev.Namespace, pod, container, int64(lines), int64(4*limit))
	if err != nil {
		a.Output = controllers.Truncate("(the log of Pod "+pod+" could not be read: "+err.Error()+")", limit)
		return
	}
	a.Output = mask(tail(raw, limit), r.secretValues(ctx, ev.Namespace, ir, job))
}

// eventOutput is how many bytes of output the event's runs keep.
func eventOutput(ev *problemhookv1alpha1.ProblemEvent) int {
	n := 0
	for _, a := range ev.Status.Actions {
		n += len(a.Output)
	}
	return n
}

// tail keeps the last whole lines of out within limit bytes, as valid
// UTF-8, marking a cut with "…" on a line of its own.
func tail(out []byte, limit int) string {
	out = bytes.TrimRight(out, "\n")
	if len(out) <= limit {
		return strings.ToValidUTF8(string(out), "\uFFFD")
	}
	const cut = "…\n"
	out = out[len(out)-(limit-len(cut)):]
	if i := bytes.IndexByte(out, '\n'); i >= 0 && i < len(out)-1 {
		out = out[i+1:]
	}
	for len(out) > 0 && !utf8.RuneStart(out[0]) {
		out = out[1:]
	}
	return cut + strings.ToValidUTF8(string(out), "\uFFFD")
}

// maskedValue replaces a Secret's value in output.
const maskedValue = "[masked]"

// minMasked is the shortest value masked: shorter ones ("1", "true")
// would mask what is not secret and hide nothing that is.
const minMasked = 4

// mask replaces each of values in out, longest first, so that a value
// that contains another is masked whole.
func mask(out string, values []string) string {
	for _, v := range values {
		out = strings.ReplaceAll(out, v, maskedValue)
	}
	return out
}

// secretValues are the values of the Secrets the route's actions and the
// Job's Pod use, and each line of them, longest first.
func (r *Reconciler) secretValues(ctx context.Context, ns string, ir *problemhookv1alpha1.IntegrationRoute, job *batchv1.Job) []string {
	names := map[string]bool{}
	if ir != nil {
		for _, n := range actionkind.SecretNames(&ir.Spec) {
			names[n] = true
		}
	}
	spec := &job.Spec.Template.Spec
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				names[e.ValueFrom.SecretKeyRef.Name] = true
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				names[e.SecretRef.Name] = true
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			names[v.Secret.SecretName] = true
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					names[src.Secret.Name] = true
				}
			}
		}
	}
	var data []map[string][]byte
	for name := range names {
		var secret corev1.Secret
		if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &secret); err != nil {
			continue // a Secret that is gone has nothing left to leak
		}
		data = append(data, secret.Data)
	}
	return maskValues(data...)
}

// maskValues are the values of Secrets' data, and each line of them, as
// mask takes them: longest first, none shorter than minMasked.
func maskValues(data ...map[string][]byte) []string {
	seen := map[string]bool{}
	var values []string
	add := func(v string) {
		v = strings.TrimSpace(v)
		if len(v) >= minMasked && !seen[v] {
			seen[v] = true
			values = append(values, v)
		}
	}
	for _, d := range data {
		for _, v := range d {
			add(string(v))
			for _, line := range strings.Split(string(v), "\n") {
				add(line)
			}
		}
	}
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	return values
}
