package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/actionkind"
	"github.com/problemhook/problemhook/internal/jobs"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/payload"
	"github.com/problemhook/problemhook/internal/routing"
	"github.com/problemhook/problemhook/internal/secretref"
)

// RoutesReport is what `routes test -o json` prints.
type RoutesReport struct {
	// Problem is the problem the routes see, as templates and CEL read it.
	Problem *routing.Problem `json:"problem"`
	// Unchecked lists what the test cannot tell without the cluster.
	Unchecked []string `json:"unchecked"`
	// Routes are the routes read, by name.
	Routes []RouteResult `json:"routes"`
}

// RouteResult is what one route does for the problem.
type RouteResult struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	File      string `json:"file"`
	// Ready is false when the controller would set the route's Ready
	// condition False, for ReadyReason; Reason is then its message.
	Ready       bool   `json:"ready"`
	ReadyReason string `json:"readyReason,omitempty"`
	// Matched is true when the problem would run the route's actions.
	Matched bool `json:"matched"`
	// Reason says why the route does not run for the problem: the first
	// criterion it fails, or that it is suspended, not Ready, or failed.
	Reason    string `json:"reason,omitempty"`
	Suspended bool   `json:"suspended"`
	// Muted says which mute time interval holds the test's time, and
	// until when: a matching route's runs would then be Muted, nothing
	// created or sent.
	Muted string `json:"muted,omitempty"`
	// Actions are the runs a matching route makes, by action.
	Actions []ActionResult `json:"actions"`
}

// ActionResult is an action and the runs it makes.
type ActionResult struct {
	Name string `json:"name"`
	// Kind is its type in status: Job, Twilio, DingTalk or HTTP.
	Kind string      `json:"kind"`
	Runs []RunResult `json:"runs"`
}

// RunResult is one run, its templates rendered.
type RunResult struct {
	// Entity is the impacted entity of a per-entity Job's run.
	Entity *routing.Entity `json:"entity,omitempty"`
	// Recipient is a Twilio run's number, masked as status shows it.
	Recipient string `json:"recipient,omitempty"`
	// Error is why the run would fail: a template that fails for this
	// problem, a per-entity Job with no entity.
	Error    string       `json:"error,omitempty"`
	Job      *JobRun      `json:"job,omitempty"`
	Twilio   *TwilioRun   `json:"twilio,omitempty"`
	DingTalk *DingTalkRun `json:"dingtalk,omitempty"`
	HTTP     *HTTPRun     `json:"http,omitempty"`
}

// JobRun is the Job a run creates.
type JobRun struct {
	Name       string         `json:"name"`
	Containers []ContainerRun `json:"containers"`
}

// ContainerRun is a container of a Job, init containers first: its
// environment, and its command and args as the kubelet expands $(VAR)
// references in them.
type ContainerRun struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	Env     []EnvVar `json:"env"`
}

// EnvVar is one environment variable; a value from elsewhere shows as
// <secret:NAME/KEY>, <configMap:NAME/KEY> or <field:PATH>.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TwilioRun is the SMS a run sends.
type TwilioRun struct {
	From string `json:"from"`
	Body string `json:"body"`
}

// DingTalkRun is the robot message a run sends.
type DingTalkRun struct {
	URL     string `json:"url"`
	Sign    string `json:"sign,omitempty"`
	MsgType string `json:"msgType"`
	Title   string `json:"title,omitempty"`
	Text    string `json:"text"`
}

// HTTPRun is the call a run makes.
type HTTPRun struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	// Path is http.path rendered, which URL ends with.
	Path    string `json:"path,omitempty"`
	Headers string `json:"headers,omitempty"`
	Body    string `json:"body"`
}

// unchecked is what a test cannot tell without the cluster.
var unchecked = []string{
	"the route's Secrets: that they exist and hold the keys its actions and templates read",
	"its Jobs: the API server's dry run of each, and whether its ServiceAccount may create them",
	"its schema: the API server checks it when the route is applied (kubectl apply --dry-run=server)",
}

// secretPlaceholder stands for a Secret's value, which is never read.
func secretPlaceholder(name, key string) string {
	return "<secret:" + name + "/" + key + ">"
}

// RoutesTest reads the routes and the notification (or stored event) of
// o and writes what each route does for it. c reads a stored event and is
// nil for a payload. The report is written in full; the error then lists
// the routes that would not be Ready and those that fail for the problem.
func RoutesTest(ctx context.Context, c client.Reader, o RoutesTestOptions, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	routes, err := readRoutes(o.Routes)
	if err != nil {
		return err
	}
	now := o.At
	if now.IsZero() {
		now = time.Now()
	}
	ev, err := routesTestEvent(ctx, c, o, routes, now)
	if err != nil {
		return err
	}
	p := routing.NewProblem(ev)
	report := RoutesReport{Problem: p, Unchecked: slices.Clone(unchecked), Routes: []RouteResult{}}
	if o.Event.Name == "" && ev.Spec.Source != problemhookv1alpha1.FormatGuance {
		report.Unchecked = append(report.Unchecked,
			"the problem's details from the Dynatrace API, which fill in what the notification leaves out when the target may read them")
	}
	if ev.Spec.Test {
		report.Unchecked = append(report.Unchecked,
			fmt.Sprintf("a test notification runs routes only when NotificationTarget %s has spec.testNotifications: Run", ev.Spec.Target))
	}
	policy := jobs.Policy{AllowPrivileged: o.AllowPrivilegedJobs}
	var failures []string
	for i := range routes {
		res, failure := testRoute(&routes[i], ev, o.Event.Name != "", p, &policy, now)
		report.Routes = append(report.Routes, res)
		if failure != "" {
			failures = append(failures, failure)
		}
	}
	if o.Output == OutputJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if err := writeRoutesReport(out, &report, ev); err != nil {
		return err
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "\n"))
	}
	return nil
}

// routesTestEvent builds the ProblemEvent the receiver would store for the
// payload, in the namespace of the first route, or reads the stored one.
func routesTestEvent(ctx context.Context, c client.Reader, o RoutesTestOptions, routes []loadedRoute, now time.Time) (*problemhookv1alpha1.ProblemEvent, error) {
	if o.Event.Name != "" {
		var ev problemhookv1alpha1.ProblemEvent
		if err := c.Get(ctx, o.Event, &ev); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("ProblemEvent %s not found", o.Event)
			}
			return nil, fmt.Errorf("reading ProblemEvent %s: %w", o.Event, err)
		}
		return &ev, nil
	}
	body, err := os.ReadFile(o.Payload)
	if err != nil {
		return nil, fmt.Errorf("reading payload: %w", err)
	}
	spec, err := payload.Parse(o.Format, body)
	if err != nil {
		// The receiver's answer: 400 with this message.
		return nil, fmt.Errorf("%s: the receiver would refuse it: %s payload: %w", o.Payload, o.Format, err)
	}
	spec.ReceivedAt = metav1.NewTime(now.UTC().Truncate(time.Second))
	target := &problemhookv1alpha1.NotificationTarget{}
	target.Name, target.Namespace = cmp.Or(o.Target, defaultTarget(o.Format)), routes[0].route.Namespace
	return problemhookv1alpha1.NewProblemEvent(target, spec), nil
}

// testRoute says what one route does for the event, as the ProblemEvent
// controller decides it, and returns a failure line when the route would
// not be Ready or fails for the problem.
// A stored event runs only the routes of its namespace; a payload is
// tested as posted to a target of the route's namespace.
func testRoute(lr *loadedRoute, ev *problemhookv1alpha1.ProblemEvent, stored bool, p *routing.Problem, policy *jobs.Policy, now time.Time) (RouteResult, string) {
	ir := &lr.route
	res := RouteResult{Name: ir.Name, Namespace: ir.Namespace, File: lr.file, Ready: true, Suspended: ir.Spec.Suspend, Actions: []ActionResult{}}
	ref := fmt.Sprintf("IntegrationRoute %s/%s (%s)", ir.Namespace, ir.Name, lr.file)

	compiled, reason, err := validateRoute(ir, policy)
	if err != nil {
		// The Ready condition's message, as the controller writes it.
		msg := strings.ReplaceAll(err.Error(), "\n", "; ")
		res.Ready, res.ReadyReason, res.Reason = false, reason, msg
		return res, fmt.Sprintf("%s would not be Ready: %s: %s", ref, reason, msg)
	}
	if muted, i := compiled.Muted(now); muted {
		until := "for more than a week"
		if t := compiled.MutedUntil(now); !t.IsZero() {
			until = "until " + t.UTC().Format(time.RFC3339)
		}
		res.Muted = fmt.Sprintf("by spec.muteTimeIntervals[%d] %s", i, until)
	}

	switch {
	case ir.Namespace == ev.Namespace:
	case stored:
		res.Reason = fmt.Sprintf("the route is in namespace %s: only routes of the event's namespace %s run for it", ir.Namespace, ev.Namespace)
		return res, ""
	default:
		// A payload is posted to a target in the route's own namespace.
		copied := *p
		copied.Namespace = ir.Namespace
		p = &copied
	}
	if ev.Spec.Test && !ir.Spec.IncludeTestNotifications {
		res.Reason = "a test notification runs only routes with spec.includeTestNotifications: true"
		return res, ""
	}
	why, err := compiled.WhyNot(p)
	if err != nil {
		res.Reason = err.Error()
		return res, fmt.Sprintf("%s could not be matched: %v", ref, err)
	}
	if ir.Spec.Suspend {
		res.Reason = "suspended (spec.suspend): it matches no new event"
		if why == "" {
			res.Reason += "; unsuspended, it would match this one"
		} else {
			res.Reason += "; unsuspended, it would not match this one either: " + why
		}
		return res, ""
	}
	if why != "" {
		res.Reason = why
		return res, ""
	}
	res.Matched = true
	var failed []string
	for _, run := range compiled.Runs(ir.Spec.Actions, p) {
		a := run.Action
		if n := len(res.Actions); n == 0 || res.Actions[n-1].Name != a.Name {
			res.Actions = append(res.Actions, ActionResult{Name: a.Name, Kind: actionkind.Of(a).Type, Runs: []RunResult{}})
		}
		r := renderRun(ir, compiled, p, run)
		if r.Error != "" && !run.NoEntities {
			failed = append(failed, fmt.Sprintf("action %s: %s", a.Name, r.Error))
		}
		res.Actions[len(res.Actions)-1].Runs = append(res.Actions[len(res.Actions)-1].Runs, r)
	}
	if len(failed) > 0 {
		return res, fmt.Sprintf("%s fails for the problem: %s", ref, strings.Join(failed, "; "))
	}
	return res, ""
}

// validateRoute makes the checks of the IntegrationRoute controller that
// need no cluster, in its order, and returns the compiled route, or the
// Ready condition's reason and error.
func validateRoute(ir *problemhookv1alpha1.IntegrationRoute, policy *jobs.Policy) (*routing.Route, string, error) {
	compiled, err := routing.Compile(&ir.Spec)
	if err != nil {
		var fe *routing.FieldError
		if errors.As(err, &fe) {
			return nil, fe.Reason, err
		}
		return nil, problemhookv1alpha1.ReasonInvalidSpec, err
	}
	for i := range ir.Spec.Actions {
		a := &ir.Spec.Actions[i]
		if a.Job == nil {
			continue
		}
		// The Job the controller builds for its dry run.
		at := fmt.Sprintf("spec.actions[%d].job.template", i)
		p := routing.SampleProblem()
		var entity *routing.Entity
		if a.Job.PerImpactedEntity {
			entity = &p.ImpactedEntities[0]
		}
		job, err := jobs.New(p, ir, a, entity)
		if err != nil {
			return nil, problemhookv1alpha1.ReasonInvalidJobTemplate, fmt.Errorf("%s: %w", at, err)
		}
		if err := policy.NodeAccess(job, at); err != nil {
			return nil, problemhookv1alpha1.ReasonPrivilegedJobTemplate, err
		}
	}
	return compiled, "", nil
}

// renderRun renders what one run creates or sends.
func renderRun(ir *problemhookv1alpha1.IntegrationRoute, compiled *routing.Route, p *routing.Problem, run routing.Run) RunResult {
	a := run.Action
	res := RunResult{Entity: run.Entity}
	if run.Recipient != "" {
		res.Recipient = notify.MaskPhone(run.Recipient)
	}
	if run.NoEntities {
		res.Error = "No impacted entities to run a Job for: the notification named none, and Dynatrace gave none"
		return res
	}
	var err error
	switch {
	case a.Twilio != nil:
		res.Twilio = &TwilioRun{From: cmp.Or(a.Twilio.MessagingServiceSID, a.Twilio.From)}
		res.Twilio.Body, err = compiled.Render(a.Name, "twilio.body", p)
	case a.DingTalk != nil:
		d := a.DingTalk
		res.DingTalk = &DingTalkRun{
			URL:     secretPlaceholder(d.URLSecretRef.Name, secretref.KeyOrDefault(d.URLSecretRef, problemhookv1alpha1.DefaultDingTalkURLKey)),
			MsgType: cmp.Or(string(d.MsgType), "markdown"),
		}
		if s := d.SignSecretRef; s != nil {
			res.DingTalk.Sign = secretPlaceholder(s.Name, secretref.KeyOrDefault(*s, problemhookv1alpha1.DefaultDingTalkSignKey))
		}
		if res.DingTalk.Title, err = compiled.Render(a.Name, "dingtalk.title", p); err == nil {
			res.DingTalk.Text, err = compiled.Render(a.Name, "dingtalk.text", p)
		}
	case a.HTTP != nil:
		res.HTTP, err = renderHTTP(a, compiled, p)
	default:
		res.Job, err = renderJob(ir, a, p, run.Entity)
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// renderHTTP renders a call: its URL with the path appended as it is sent,
// and its body with each secret it reads shown as a placeholder.
func renderHTTP(a *problemhookv1alpha1.Action, compiled *routing.Route, p *routing.Problem) (*HTTPRun, error) {
	h := a.HTTP
	call := &HTTPRun{Method: cmp.Or(h.Method, "POST"), URL: h.URL}
	fromSecret := h.URLSecretRef != nil
	if fromSecret {
		call.URL = secretPlaceholder(h.URLSecretRef.Name, secretref.KeyOrDefault(*h.URLSecretRef, problemhookv1alpha1.DefaultHTTPURLKey))
	}
	if h.HeadersSecretRef != nil {
		call.Headers = secretPlaceholder(h.HeadersSecretRef.Name, "*")
	}
	var err error
	if h.Path != "" {
		if call.Path, err = compiled.Render(a.Name, "http.path", p); err != nil {
			return call, err
		}
		if fromSecret {
			// Where the URL is unknown, so is whether the path stays in it.
			call.URL = call.URL + "/" + strings.TrimLeft(call.Path, "/")
		} else if call.URL, err = actionkind.JoinPath(call.URL, call.Path); err != nil {
			return call, fmt.Errorf("http.path: %w", err)
		}
	}
	secretName := ""
	if h.SecretRef != nil {
		secretName = h.SecretRef.Name
	}
	call.Body, err = compiled.RenderSecretsAs(a.Name, "http.body", p, func(key string) string { return secretPlaceholder(secretName, key) })
	return call, err
}

// renderJob builds the Job as the controller creates it, and shows what
// its containers get.
func renderJob(ir *problemhookv1alpha1.IntegrationRoute, a *problemhookv1alpha1.Action, p *routing.Problem, entity *routing.Entity) (*JobRun, error) {
	job, err := jobs.New(p, ir, a, entity)
	if err != nil {
		return nil, err
	}
	return &JobRun{Name: job.Name, Containers: containers(job)}, nil
}

func containers(job *batchv1.Job) []ContainerRun {
	pod := &job.Spec.Template.Spec
	out := []ContainerRun{}
	for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		vars := map[string]string{}
		run := ContainerRun{Name: c.Name, Image: c.Image, Env: []EnvVar{}}
		for _, e := range c.Env {
			v := envValue(e, vars)
			vars[e.Name] = v
			run.Env = append(run.Env, EnvVar{Name: e.Name, Value: v})
		}
		for _, s := range c.Command {
			run.Command = append(run.Command, expand(s, vars))
		}
		for _, s := range c.Args {
			run.Args = append(run.Args, expand(s, vars))
		}
		out = append(out, run)
	}
	return out
}

// envValue is what a container gets for e, given the variables before it;
// a value from elsewhere shows where it comes from.
func envValue(e corev1.EnvVar, vars map[string]string) string {
	from := e.ValueFrom
	switch {
	case from == nil:
		return expand(e.Value, vars)
	case from.SecretKeyRef != nil:
		return secretPlaceholder(from.SecretKeyRef.Name, from.SecretKeyRef.Key)
	case from.ConfigMapKeyRef != nil:
		return "<configMap:" + from.ConfigMapKeyRef.Name + "/" + from.ConfigMapKeyRef.Key + ">"
	case from.FieldRef != nil:
		return "<field:" + from.FieldRef.FieldPath + ">"
	case from.ResourceFieldRef != nil:
		return "<resource:" + from.ResourceFieldRef.Resource + ">"
	default:
		return "<valueFrom>"
	}
}

// expand expands $(VAR) references as the kubelet does in env values,
// command and args: a defined variable is replaced, an undefined one is
// left as written, and $$ is a literal $.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// writeRoutesReport writes the report as text: the problem, a table of the
// routes, then the runs of each matching route.
func writeRoutesReport(out io.Writer, r *RoutesReport, ev *problemhookv1alpha1.ProblemEvent) error {
	w := &errWriter{w: out}
	p := r.Problem
	w.printf("Problem %s %s %q from target %s/%s (%s)\n", cmp.Or(p.DisplayID, p.ProblemID), p.State, p.Title, ev.Namespace, p.Target, p.Source)
	w.printf("  severity %s, impact %s, tags %s, management zones %s\n", orNone(p.Severity), orNone(p.Impact), listOf(p.Tags), listOf(p.ManagementZones))
	entities := make([]string, 0, len(p.ImpactedEntities))
	for _, e := range p.ImpactedEntities {
		entities = append(entities, entityString(e))
	}
	w.printf("  impacted entities %s\n", listOf(entities))
	if p.Test {
		w.printf("  a test notification\n")
	}
	w.printf("\n")

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "ROUTE\tMATCHED\tRUNS\tWHY NOT, OR NOTE")
	for _, rr := range r.Routes {
		matched, runs := "no", "-"
		switch {
		case !rr.Ready:
			matched = "invalid"
		case rr.Matched:
			matched, runs = "yes", fmt.Sprint(countRuns(rr.Actions))
		}
		note := rr.Reason
		if !rr.Ready {
			note = rr.ReadyReason + ": " + rr.Reason
		}
		if rr.Muted != "" {
			note = strings.TrimPrefix(note+"; muted "+rr.Muted, "; ")
		}
		line := rr.Name + "\t" + matched + "\t" + runs
		if note != "" {
			line += "\t" + note // a line without one ends unpadded
		}
		_, _ = fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	for _, rr := range r.Routes {
		if !rr.Matched {
			continue
		}
		w.printf("\nRoute %s (%s/%s, %s)", rr.Name, rr.Namespace, rr.Name, rr.File)
		if rr.Muted != "" {
			w.printf(": muted %s, its runs create and send nothing", rr.Muted)
		}
		w.printf("\n")
		for _, a := range rr.Actions {
			for _, run := range a.Runs {
				writeRun(w, a, run)
			}
		}
	}
	w.printf("\nNot checked offline:\n")
	for _, u := range r.Unchecked {
		w.printf("  - %s\n", u)
	}
	return w.err
}

func writeRun(w *errWriter, a ActionResult, run RunResult) {
	w.printf("  action %s (%s)", a.Name, a.Kind)
	switch {
	case run.Entity != nil:
		w.printf(", entity %s", entityString(*run.Entity))
	case run.Recipient != "":
		w.printf(", to %s", run.Recipient)
	}
	w.printf("\n")
	if run.Error != "" {
		w.printf("    fails: %s\n", run.Error)
	}
	field := func(name, value string) {
		if !strings.Contains(value, "\n") {
			w.printf("    %s: %s\n", name, value)
			return
		}
		w.printf("    %s: |\n", name)
		for _, line := range strings.Split(strings.TrimRight(value, "\n"), "\n") {
			w.printf("      %s\n", line)
		}
	}
	switch {
	case run.Job != nil:
		field("job", run.Job.Name)
		for _, c := range run.Job.Containers {
			w.printf("    container %s (%s)\n", c.Name, c.Image)
			if c.Command != nil {
				w.printf("      command: %s\n", quoteList(c.Command))
			}
			if c.Args != nil {
				w.printf("      args: %s\n", quoteList(c.Args))
			}
			w.printf("      env:\n")
			for _, e := range c.Env {
				v := e.Value
				if e.Name == "PROBLEM_JSON" {
					v = fmt.Sprintf("<%d bytes of JSON: the problem>", len(v))
				}
				w.printf("        %s=%s\n", e.Name, v)
			}
		}
	case run.Twilio != nil:
		field("from", run.Twilio.From)
		field("body", run.Twilio.Body)
	case run.DingTalk != nil:
		field("url", run.DingTalk.URL)
		if run.DingTalk.Sign != "" {
			field("sign", run.DingTalk.Sign)
		}
		field("msgType", run.DingTalk.MsgType)
		field("title", run.DingTalk.Title)
		field("text", run.DingTalk.Text)
	case run.HTTP != nil:
		field("request", run.HTTP.Method+" "+run.HTTP.URL)
		if run.HTTP.Headers != "" {
			field("headers", run.HTTP.Headers)
		}
		field("body", run.HTTP.Body)
	}
}

func countRuns(actions []ActionResult) int {
	n := 0
	for _, a := range actions {
		n += len(a.Runs)
	}
	return n
}

func entityString(e routing.Entity) string {
	return fmt.Sprintf("%s %s (%s)", e.Type, e.Name, e.ID)
}

func orNone(s string) string { return cmp.Or(s, "-") }

func listOf(values []string) string {
	if len(values) == 0 {
		return "-"
	}
	return strings.Join(values, ", ")
}

func quoteList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// errWriter keeps the first error of its writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (w *errWriter) Write(b []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.w.Write(b)
	w.err = err
	return n, err
}

func (w *errWriter) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}
