package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/routing"
	"github.com/problemhook/problemhook/internal/secretref"
)

// jobControllerUIDLabel is the label the Job controller puts on a Job's Pods.
const jobControllerUIDLabel = "batch.kubernetes.io/controller-uid"

// dynatraceCallTimeout bounds one enrichment or comment, retries included.
const dynatraceCallTimeout = 30 * time.Second

// ProblemEventReconciler runs the integrations of a ProblemEvent: it reads
// the problem's details from Dynatrace, selects the matching routes once,
// runs and follows their actions, and comments the outcome back. All it
// knows is in the event's status, so a restart resumes where it stopped.
type ProblemEventReconciler struct {
	client.Client
	// APIReader reads what the cache does not hold: the Pods of a finished
	// Job, and Jobs the cache has not seen yet.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	// NewDynatraceClient builds Dynatrace clients; dynatrace.New when nil.
	NewDynatraceClient DynatraceClientFunc
	// Notifier sends the messages of Twilio, DingTalk and HTTP actions; a
	// shared notify.Client when nil.
	Notifier *notify.Client
	// MaxConcurrentReconciles bounds how many events are worked on at once.
	MaxConcurrentReconciles int
	// MatchNoteInterval bounds how often a route's lastMatch status is
	// written; DefaultMatchNoteInterval when zero.
	MatchNoteInterval time.Duration

	routes    routeCache
	dynatrace *dtconn.Clients
	matches   *matchNotes
}

// SetupWithManager registers the reconciler. It follows the Jobs it owns,
// and the arrival of a RESOLVED event brings its OPEN event back, to stop
// what still runs for the problem.
func (r *ProblemEventReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.dynatrace = &dtconn.Clients{New: r.NewDynatraceClient}
	r.matches = &matchNotes{client: r.Client, interval: cmp.Or(r.MatchNoteInterval, DefaultMatchNoteInterval)}
	if err := mgr.Add(r.matches); err != nil {
		return fmt.Errorf("adding the route match recorder: %w", err)
	}
	resolvedCreated := predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool {
			return e.Object.GetLabels()[problemhookv1alpha1.LabelState] == strings.ToLower(string(problemhookv1alpha1.StateResolved))
		},
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	// A deleted route's compiled form is dropped with it.
	routes, err := mgr.GetCache().GetInformer(context.Background(), &problemhookv1alpha1.IntegrationRoute{})
	if err != nil {
		return fmt.Errorf("watching IntegrationRoutes: %w", err)
	}
	if _, err := routes.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: r.routes.forget}); err != nil {
		return fmt.Errorf("watching IntegrationRoutes: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&problemhookv1alpha1.ProblemEvent{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&batchv1.Job{}).
		Watches(&problemhookv1alpha1.ProblemEvent{}, handler.EnqueueRequestsFromMapFunc(openEventOf), builder.WithPredicates(resolvedCreated)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1)}).
		Complete(r)
}

// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents,verbs=get;list;watch
// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents/finalizers,verbs=update
// +kubebuilder:rbac:groups=problemhook.io,resources=integrationroutes,verbs=get;list;watch
// +kubebuilder:rbac:groups=problemhook.io,resources=integrationroutes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list

// Reconcile advances a ProblemEvent's integrations as far as they can go now.
func (r *ProblemEventReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	var ev problemhookv1alpha1.ProblemEvent
	if err := r.Get(ctx, req.NamespacedName, &ev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ev.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	w := newStatusWriter(r.Client, &ev)
	defer func() {
		// The status is the only record of what ran: a reconcile that read
		// an older one from the cache must not overwrite a newer one. It
		// is written even when the manager is stopping, since it may
		// record messages that were sent.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusWriteTimeout)
		defer cancel()
		// A conflict goes back to the queue as an error too: status
		// changes do not pass the watch's predicate, so no newer
		// version would bring the event back by itself.
		retErr = errors.Join(retErr, w.write(ctx, &ev))
	}()
	ev.Status.ObservedGeneration = ev.Generation

	target, err := r.target(ctx, &ev)
	if err != nil {
		return ctrl.Result{}, err
	}
	if ev.Status.Phase == "" {
		if err := r.route(ctx, &ev, target); err != nil {
			return ctrl.Result{}, err
		}
	}
	if ev.Status.Phase == problemhookv1alpha1.PhaseSkipped {
		return ctrl.Result{}, nil
	}
	created, err := r.drive(ctx, w, &ev)
	r.recordJobsCreated(&ev, created)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !summarise(&ev) {
		return ctrl.Result{RequeueAfter: nextAttempt(&ev)}, nil
	}
	return ctrl.Result{}, r.comment(ctx, &ev, target)
}

// target returns the event's NotificationTarget, or nil when it is gone.
func (r *ProblemEventReconciler) target(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent) (*problemhookv1alpha1.NotificationTarget, error) {
	var target problemhookv1alpha1.NotificationTarget
	if err := r.Get(ctx, types.NamespacedName{Namespace: ev.Namespace, Name: ev.Spec.Target}, &target); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading NotificationTarget %s: %w", ev.Spec.Target, err)
	}
	return &target, nil
}

// route enriches the event and records one pending action status per
// action (and entity) of every matching route. It runs once per event:
// a route that changes or appears later does not change what the event runs.
func (r *ProblemEventReconciler) route(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, target *problemhookv1alpha1.NotificationTarget) error {
	if ev.Spec.Test && (target == nil || target.Spec.TestNotifications != problemhookv1alpha1.TestNotificationsRun) {
		skip(ev, fmt.Sprintf("Test notification recorded only: NotificationTarget %s runs routes for tests when spec.testNotifications is Run", ev.Spec.Target))
		return nil
	}
	r.enrich(ctx, ev, target)

	var routes problemhookv1alpha1.IntegrationRouteList
	if err := r.List(ctx, &routes, client.InNamespace(ev.Namespace)); err != nil {
		return fmt.Errorf("listing IntegrationRoutes: %w", err)
	}
	slices.SortFunc(routes.Items, func(a, b problemhookv1alpha1.IntegrationRoute) int { return strings.Compare(a.Name, b.Name) })
	p := routing.NewProblem(ev)
	var actions []problemhookv1alpha1.ActionStatus
	for i := range routes.Items {
		ir := &routes.Items[i]
		if ev.Spec.Test && !ir.Spec.IncludeTestNotifications {
			continue
		}
		compiled, err := r.routes.get(ir)
		if err != nil {
			r.Recorder.Eventf(ev, ir, corev1.EventTypeWarning, "InvalidRoute", "Route", "IntegrationRoute %s is not used: %v", ir.Name, err)
			continue
		}
		ok, err := compiled.Matches(p)
		if err != nil {
			r.Recorder.Eventf(ev, ir, corev1.EventTypeWarning, "MatchFailed", "Route", "IntegrationRoute %s could not be matched: %v", ir.Name, err)
			continue
		}
		if !ok {
			continue
		}
		actions = append(actions, routeActions(ir, compiled, p)...)
		r.matches.note(ir, ev)
	}
	if len(actions) > problemhookv1alpha1.MaxActionStatuses {
		r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "TooManyActions", "Route", "The matching routes ask for %d actions; only the first %d run", len(actions), problemhookv1alpha1.MaxActionStatuses)
		actions = actions[:problemhookv1alpha1.MaxActionStatuses]
	}
	if len(actions) == 0 {
		skip(ev, "No IntegrationRoute matched")
		return nil
	}
	ev.Status.Actions = actions
	ev.Status.Phase = problemhookv1alpha1.PhasePending
	return nil
}

// routeActions lists the action runs a matching route asks for, in its order.
func routeActions(ir *problemhookv1alpha1.IntegrationRoute, compiled *routing.Route, p *routing.Problem) []problemhookv1alpha1.ActionStatus {
	var out []problemhookv1alpha1.ActionStatus
	for _, a := range ir.Spec.Actions {
		run := problemhookv1alpha1.ActionStatus{Route: ir.Name, Action: a.Name, Type: actionType(&a), State: problemhookv1alpha1.ActionPending}
		if a.Twilio != nil {
			for _, to := range a.Twilio.To {
				run.Recipient = notify.MaskPhone(to)
				out = append(out, run)
			}
			continue
		}
		if a.Job == nil || !a.Job.PerImpactedEntity {
			out = append(out, run)
			continue
		}
		entities := compiled.Entities(p)
		if len(entities) == 0 {
			now := metav1.Now()
			run.State, run.CompletionTime = problemhookv1alpha1.ActionFailed, &now
			run.Message = "No impacted entities to run a Job for: the notification named none, and Dynatrace gave none"
			out = append(out, run)
			continue
		}
		seen := map[string]bool{}
		for _, e := range entities {
			if k := entityKey(e); !seen[k] {
				seen[k] = true
				run.Entity = k
				out = append(out, run)
			}
		}
	}
	return out
}

func actionType(a *problemhookv1alpha1.Action) string {
	switch {
	case a.Twilio != nil:
		return problemhookv1alpha1.ActionTypeTwilio
	case a.DingTalk != nil:
		return problemhookv1alpha1.ActionTypeDingTalk
	case a.HTTP != nil:
		return problemhookv1alpha1.ActionTypeHTTP
	default:
		return problemhookv1alpha1.ActionTypeJob
	}
}

// entityKey identifies an impacted entity in status: its id, or its name
// when the sender gave no id.
func entityKey(e routing.Entity) string {
	if e.ID != "" {
		return e.ID
	}
	return e.Name
}

func skip(ev *problemhookv1alpha1.ProblemEvent, msg string) {
	ev.Status.Phase = problemhookv1alpha1.PhaseSkipped
	setReady(&ev.Status.Conditions, ev.Generation, metav1.ConditionTrue, problemhookv1alpha1.ReasonSkipped, msg)
}

// enrich reads the problem from the target's Dynatrace connection into
// status.details. A failure is recorded and does not hold back the actions.
func (r *ProblemEventReconciler) enrich(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, target *problemhookv1alpha1.NotificationTarget) {
	if target == nil || target.Spec.Dynatrace == nil || ev.Spec.Source != problemhookv1alpha1.FormatDynatrace || ev.Spec.Test {
		return
	}
	problem, err := func() (*dynatrace.Problem, error) {
		c, err := r.dynatrace.For(ctx, r.Client, target)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, dynatraceCallTimeout)
		defer cancel()
		return c.GetProblem(ctx, ev.Spec.ProblemID)
	}()
	if err != nil {
		msg := truncate(fmt.Sprintf("Reading problem %s from Dynatrace: %v; the actions run without its details", ev.Spec.ProblemID, err), 1024)
		meta.SetStatusCondition(&ev.Status.Conditions, metav1.Condition{
			Type: problemhookv1alpha1.ConditionEnriched, Status: metav1.ConditionFalse, ObservedGeneration: ev.Generation,
			Reason: problemhookv1alpha1.ReasonEnrichmentFailed, Message: msg,
		})
		r.Recorder.Eventf(ev, target, corev1.EventTypeWarning, problemhookv1alpha1.ReasonEnrichmentFailed, "Enrich", msg)
		return
	}
	ev.Status.Details = problemDetails(problem, metav1.Now())
	meta.SetStatusCondition(&ev.Status.Conditions, metav1.Condition{
		Type: problemhookv1alpha1.ConditionEnriched, Status: metav1.ConditionTrue, ObservedGeneration: ev.Generation,
		Reason: problemhookv1alpha1.ReasonEnriched, Message: "Read problem " + problem.DisplayID + " from Dynatrace",
	})
}

// drive starts, follows and stops the event's actions. Within a route the
// actions run in order, each once the one before it has settled; routes
// run side by side. It returns the Jobs it created, also when it fails.
func (r *ProblemEventReconciler) drive(ctx context.Context, w *statusWriter, ev *problemhookv1alpha1.ProblemEvent) (created []*batchv1.Job, err error) {
	resolvedBy, err := r.resolvedBy(ctx, ev)
	if err != nil {
		return nil, err
	}
	p := routing.NewProblem(ev)
	for _, group := range groupActions(ev.Status.Actions) {
		ir, err := r.integrationRoute(ctx, ev.Namespace, group.route)
		if err != nil {
			return created, err
		}
		previousSettled := true
		for _, runs := range group.actions {
			action := findAction(ir, ev.Status.Actions[runs[0]].Action)
			for _, i := range runs {
				a := &ev.Status.Actions[i]
				switch {
				case a.State != problemhookv1alpha1.ActionRunning:
				case a.Type != problemhookv1alpha1.ActionTypeJob:
					// Claimed by a reconcile that did not record the outcome.
					settle(a, problemhookv1alpha1.ActionFailed, outcomeUnknown)
					r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "MessageOutcomeUnknown", "Send", "IntegrationRoute %s action %s: %s", a.Route, a.Action, outcomeUnknown)
				case a.Job != "":
					if err := r.observeJob(ctx, ev, a); err != nil {
						return created, err
					}
				}
				if resolvedBy != "" && !a.State.Settled() && stopsOnResolve(a, action) {
					if err := r.stop(ctx, ev, a, resolvedBy); err != nil {
						return created, err
					}
				}
			}
			if previousSettled {
				jobs, err := r.start(ctx, w, ev, p, ir, action, runs)
				created = append(created, jobs...)
				if err != nil {
					return created, err
				}
			}
			previousSettled = allSettled(ev.Status.Actions, runs)
		}
	}
	return created, nil
}

// start starts the pending runs of an action, within its parallelism, and
// returns the Jobs it created.
func (r *ProblemEventReconciler) start(ctx context.Context, w *statusWriter, ev *problemhookv1alpha1.ProblemEvent, p *routing.Problem, ir *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, runs []int) (created []*batchv1.Job, err error) {
	if ir != nil && action != nil {
		// A route edited since the event was routed may have turned the
		// action into another kind: its runs cannot be made as recorded.
		if kind := actionType(action); kind != ev.Status.Actions[runs[0]].Type {
			for _, i := range runs {
				if a := &ev.Status.Actions[i]; a.State == problemhookv1alpha1.ActionPending {
					settle(a, problemhookv1alpha1.ActionFailed, "IntegrationRoute "+a.Route+" action "+a.Action+" is no longer a "+a.Type+" action")
				}
			}
			return nil, nil
		}
		if action.Job == nil {
			return nil, r.sendMessages(ctx, w, ev, p, ir, action, runs)
		}
	}
	running := int32(0)
	for _, i := range runs {
		if ev.Status.Actions[i].State == problemhookv1alpha1.ActionRunning {
			running++
		}
	}
	for _, i := range runs {
		a := &ev.Status.Actions[i]
		if a.State != problemhookv1alpha1.ActionPending {
			continue
		}
		switch {
		case ir == nil:
			settle(a, problemhookv1alpha1.ActionFailed, "IntegrationRoute "+a.Route+" was deleted before the action started")
		case action == nil:
			settle(a, problemhookv1alpha1.ActionFailed, "IntegrationRoute "+a.Route+" no longer has an action "+a.Action)
		case running < ptrOr(action.Job.Parallelism, 5):
			job, err := r.startJob(ctx, ev, p, ir, action, a)
			if job != nil {
				created = append(created, job)
			}
			if err != nil {
				return created, err
			}
			if a.State == problemhookv1alpha1.ActionRunning {
				running++
			}
		}
	}
	return created, nil
}

// startJob creates the Job of one run, and returns it when it created it.
// Its name is deterministic, so a Job that exists already is this run's,
// created before a restart.
func (r *ProblemEventReconciler) startJob(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, p *routing.Problem, ir *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, a *problemhookv1alpha1.ActionStatus) (*batchv1.Job, error) {
	var entity *routing.Entity
	if a.Entity != "" {
		for _, e := range p.ImpactedEntities {
			if entityKey(e) == a.Entity {
				entity = &e
				break
			}
		}
		if entity == nil {
			entity = &routing.Entity{ID: a.Entity}
		}
	}
	job, err := newJob(p, ir, action, entity)
	if err != nil {
		settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("IntegrationRoute %s action %s: %v", ir.Name, action.Name, err))
		return nil, nil
	}
	if err := controllerutil.SetControllerReference(ev, job, r.Scheme()); err != nil {
		return nil, fmt.Errorf("owning Job %s: %w", job.Name, err)
	}
	err = r.Create(ctx, job)
	switch {
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("IntegrationRoute %s action %s: the API server refused the Job: %v", ir.Name, action.Name, err))
		return nil, nil
	case err != nil && !apierrors.IsAlreadyExists(err):
		return nil, fmt.Errorf("creating Job %s: %w", job.Name, err)
	}
	now := metav1.Now()
	a.State, a.Job, a.Attempts, a.StartTime = problemhookv1alpha1.ActionRunning, job.Name, 1, &now
	a.Message = "Job " + job.Name + " created"
	if err != nil {
		// Created before a restart, and it may have ended since: no
		// change to it will come to announce that.
		return nil, r.observeJob(ctx, ev, a)
	}
	ctrl.LoggerFrom(ctx).Info("Created Job", "Job", klog.KObj(job), "route", ir.Name, "action", action.Name, "entity", a.Entity)
	return job, nil
}

// maxEventNote is the longest note an Event may carry.
const maxEventNote = 1024

// recordJobsCreated announces the Jobs a reconcile created in one Event:
// a notification that starts a Job for each of many impacted entities
// costs the API server one Event, not one for each Job. The event's status
// names every Job.
func (r *ProblemEventReconciler) recordJobsCreated(ev *problemhookv1alpha1.ProblemEvent, created []*batchv1.Job) {
	describe := func(job *batchv1.Job) string {
		return fmt.Sprintf("%s for IntegrationRoute %s action %s", job.Name, job.Labels[problemhookv1alpha1.LabelRoute], job.Labels[problemhookv1alpha1.LabelAction])
	}
	switch len(created) {
	case 0:
	case 1:
		r.Recorder.Eventf(ev, created[0], corev1.EventTypeNormal, "JobsCreated", "CreateJob", "Created Job %s", describe(created[0]))
	default:
		note := fmt.Sprintf("Created %d Jobs: ", len(created))
		for i, job := range created {
			line := describe(job)
			if i > 0 {
				line = "; " + line
			}
			if more := fmt.Sprintf("; and %d more", len(created)-i); len(note)+len(line)+len(more) > maxEventNote {
				note += more
				break
			}
			note += line
		}
		r.Recorder.Eventf(ev, nil, corev1.EventTypeNormal, "JobsCreated", "CreateJob", "%s", note)
	}
}

// observeJob records where a run's Job is: attempts so far, and once it
// ended, its outcome and exit code.
func (r *ProblemEventReconciler) observeJob(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, a *problemhookv1alpha1.ActionStatus) error {
	key := types.NamespacedName{Namespace: ev.Namespace, Name: a.Job}
	var job batchv1.Job
	err := r.Get(ctx, key, &job)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen a Job created a moment ago.
		err = r.APIReader.Get(ctx, key, &job)
	}
	if apierrors.IsNotFound(err) {
		settle(a, problemhookv1alpha1.ActionFailed, "Job "+a.Job+" was deleted before it ended")
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Job %s: %w", key, err)
	}
	a.Attempts = jobAttempts(&job)
	done, succeeded, reason, msg := jobOutcome(&job)
	if !done {
		return nil
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(job.Namespace), client.MatchingLabels{jobControllerUIDLabel: string(job.UID)}); err != nil {
		return fmt.Errorf("listing the Pods of Job %s: %w", key, err)
	}
	if code, ok := exitCode(pods.Items); ok {
		a.ExitCode = &code
	}
	state, what := problemhookv1alpha1.ActionSucceeded, "succeeded"
	if !succeeded {
		state, what = problemhookv1alpha1.ActionFailed, "failed"
	}
	line := "Job " + job.Name + " " + what
	if a.ExitCode != nil {
		line += fmt.Sprintf(" with exit code %d", *a.ExitCode)
	}
	if !succeeded && reason != "" {
		line += ": " + reason
		if msg != "" {
			line += ": " + msg
		}
	}
	settle(a, state, line)
	if t := job.Status.CompletionTime; t != nil {
		a.CompletionTime = t
	}
	eventType := corev1.EventTypeNormal
	if !succeeded {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(ev, &job, eventType, "Job"+strings.ToUpper(what[:1])+what[1:], "RunJob", "%s", a.Message)
	return nil
}

// resolvedBy returns the name of the RESOLVED event of an OPEN event's
// problem, once it has arrived, and "" otherwise.
func (r *ProblemEventReconciler) resolvedBy(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent) (string, error) {
	if ev.Spec.State != problemhookv1alpha1.StateOpen {
		return "", nil
	}
	name := problemhookv1alpha1.EventName(ev.Spec.Target, ev.Spec.ProblemID, problemhookv1alpha1.StateResolved)
	var resolved problemhookv1alpha1.ProblemEvent
	err := r.Get(ctx, types.NamespacedName{Namespace: ev.Namespace, Name: name}, &resolved)
	switch {
	case apierrors.IsNotFound(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("looking for the RESOLVED event %s: %w", name, err)
	}
	return name, nil
}

// stop ends a run because its problem resolved: a running Job is deleted
// with its Pods, a pending one never starts.
func (r *ProblemEventReconciler) stop(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, a *problemhookv1alpha1.ActionStatus, resolvedBy string) error {
	if a.State != problemhookv1alpha1.ActionRunning || a.Job == "" {
		settle(a, problemhookv1alpha1.ActionStopped, "Not started: the problem resolved (ProblemEvent "+resolvedBy+")")
		return nil
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ev.Namespace, Name: a.Job}}
	if err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("stopping Job %s: %w", a.Job, err)
	}
	settle(a, problemhookv1alpha1.ActionStopped, "Stopped: the problem resolved (ProblemEvent "+resolvedBy+"); Job "+a.Job+" deleted")
	ctrl.LoggerFrom(ctx).Info("Stopped Job: the problem resolved", "Job", klog.KObj(job), "resolvedBy", resolvedBy)
	r.Recorder.Eventf(ev, job, corev1.EventTypeNormal, "JobStopped", "StopJob", "%s", a.Message)
	return nil
}

func stopsOnResolve(a *problemhookv1alpha1.ActionStatus, action *problemhookv1alpha1.Action) bool {
	if a.Type != problemhookv1alpha1.ActionTypeJob {
		return false
	}
	// A route or action that is gone cannot say; the default holds.
	return action == nil || action.Job == nil || action.Job.StopOnResolve == nil || *action.Job.StopOnResolve
}

// comment posts the outcome of the event's actions to the Dynatrace
// problem, once. Before posting it looks for a comment of its own on the
// problem, which a restart between posting and recording would have left.
func (r *ProblemEventReconciler) comment(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, target *problemhookv1alpha1.NotificationTarget) error {
	if ev.Status.Comment != nil || target == nil || target.Spec.Dynatrace == nil ||
		!ptrOr(target.Spec.Dynatrace.Comments, true) || ev.Spec.Source != problemhookv1alpha1.FormatDynatrace || ev.Spec.Test {
		return nil
	}
	commenting, err := r.commentingRoutes(ctx, ev)
	if err != nil || len(commenting) == 0 {
		return err
	}
	text := commentText(ev, commenting)
	c, err := r.dynatrace.For(ctx, r.Client, target)
	if err != nil {
		var refErr *secretref.Error
		if errors.As(err, &refErr) {
			r.commentFailed(ev, err)
			return nil
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, dynatraceCallTimeout)
	defer cancel()
	existing, err := c.Comments(ctx, ev.Spec.ProblemID)
	if err == nil {
		marker := commentMarker(ev)
		for _, cm := range existing {
			if cm.Context == CommentContext && strings.Contains(cm.Content, marker) {
				ev.Status.Comment = &problemhookv1alpha1.CommentStatus{Posted: true, Time: new(metav1.NewTime(time.UnixMilli(cm.CreatedAtTimestamp))), Message: truncate(cm.Content, 4096)}
				return nil
			}
		}
		err = c.PostComment(ctx, ev.Spec.ProblemID, dynatrace.CommentRequest{Message: text, Context: CommentContext})
	}
	if err != nil {
		if dynatrace.IsRetryable(err) {
			r.Recorder.Eventf(ev, target, corev1.EventTypeWarning, "CommentFailed", "Comment", "Posting the comment to Dynatrace, will retry: %v", err)
			return fmt.Errorf("commenting on problem %s: %w", ev.Spec.ProblemID, err)
		}
		r.commentFailed(ev, err)
		return nil
	}
	now := metav1.Now()
	ev.Status.Comment = &problemhookv1alpha1.CommentStatus{Posted: true, Time: &now, Message: truncate(text, 4096)}
	ctrl.LoggerFrom(ctx).Info("Posted comment to Dynatrace problem", "problemID", ev.Spec.ProblemID)
	r.Recorder.Eventf(ev, target, corev1.EventTypeNormal, "CommentPosted", "Comment", "Posted the outcome to Dynatrace problem %s", ev.Spec.ProblemID)
	return nil
}

// commentFailed records a comment that cannot be posted until the user
// fixes something (token, scope, problem id): it is not retried.
func (r *ProblemEventReconciler) commentFailed(ev *problemhookv1alpha1.ProblemEvent, err error) {
	msg := truncate("Not posted: "+err.Error(), 4096)
	ev.Status.Comment = &problemhookv1alpha1.CommentStatus{Message: msg}
	r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "CommentFailed", "Comment", "%s", msg)
}

// commentingRoutes names the routes of the event's actions that want their
// results commented back. A route deleted since keeps the default: yes.
func (r *ProblemEventReconciler) commentingRoutes(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent) (map[string]bool, error) {
	out := map[string]bool{}
	for _, group := range groupActions(ev.Status.Actions) {
		ir, err := r.integrationRoute(ctx, ev.Namespace, group.route)
		if err != nil {
			return nil, err
		}
		if ir == nil || ir.Spec.Comment == nil || ptrOr(ir.Spec.Comment.Enabled, true) {
			out[group.route] = true
		}
	}
	return out, nil
}

// integrationRoute returns the named route, or nil when it is gone.
func (r *ProblemEventReconciler) integrationRoute(ctx context.Context, namespace, name string) (*problemhookv1alpha1.IntegrationRoute, error) {
	var ir problemhookv1alpha1.IntegrationRoute
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &ir); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading IntegrationRoute %s: %w", name, err)
	}
	return &ir, nil
}

// summarise sets the event's phase and Ready condition from its actions,
// and reports whether every action has settled.
func summarise(ev *problemhookv1alpha1.ProblemEvent) bool {
	n := countStates(ev.Status.Actions)
	pending, running, succeeded, failed, stopped := n[problemhookv1alpha1.ActionPending], n[problemhookv1alpha1.ActionRunning],
		n[problemhookv1alpha1.ActionSucceeded], n[problemhookv1alpha1.ActionFailed], n[problemhookv1alpha1.ActionStopped]
	counts := fmt.Sprintf("%d actions: %d succeeded, %d failed, %d stopped, %d running, %d pending", len(ev.Status.Actions), succeeded, failed, stopped, running, pending)
	status, reason := metav1.ConditionFalse, problemhookv1alpha1.ReasonProgressing
	switch {
	case running > 0:
		ev.Status.Phase = problemhookv1alpha1.PhaseRunning
	case pending > 0:
		ev.Status.Phase = problemhookv1alpha1.PhasePending
	case failed > 0:
		ev.Status.Phase, status, reason = problemhookv1alpha1.PhaseFailed, metav1.ConditionTrue, problemhookv1alpha1.ReasonFailed
	default:
		ev.Status.Phase, status, reason = problemhookv1alpha1.PhaseSucceeded, metav1.ConditionTrue, problemhookv1alpha1.ReasonSucceeded
	}
	setReady(&ev.Status.Conditions, ev.Generation, status, reason, counts)
	return status == metav1.ConditionTrue
}

// countStates counts runs by state.
func countStates(runs []problemhookv1alpha1.ActionStatus) map[problemhookv1alpha1.ActionState]int {
	n := map[problemhookv1alpha1.ActionState]int{}
	for _, a := range runs {
		n[a.State]++
	}
	return n
}

// actionGroup is the runs of one route, by action, in the route's order.
type actionGroup struct {
	route   string
	actions [][]int
}

// groupActions groups the indices of runs by route and action, keeping the
// order in which they were recorded.
func groupActions(runs []problemhookv1alpha1.ActionStatus) []actionGroup {
	var groups []actionGroup
	for i, a := range runs {
		g := slices.IndexFunc(groups, func(g actionGroup) bool { return g.route == a.Route })
		if g < 0 {
			groups = append(groups, actionGroup{route: a.Route})
			g = len(groups) - 1
		}
		acts := &groups[g].actions
		if n := len(*acts); n > 0 && runs[(*acts)[n-1][0]].Action == a.Action {
			(*acts)[n-1] = append((*acts)[n-1], i)
		} else {
			*acts = append(*acts, []int{i})
		}
	}
	return groups
}

func findAction(ir *problemhookv1alpha1.IntegrationRoute, name string) *problemhookv1alpha1.Action {
	if ir == nil {
		return nil
	}
	for i := range ir.Spec.Actions {
		if ir.Spec.Actions[i].Name == name {
			return &ir.Spec.Actions[i]
		}
	}
	return nil
}

func allSettled(runs []problemhookv1alpha1.ActionStatus, idx []int) bool {
	for _, i := range idx {
		if !runs[i].State.Settled() {
			return false
		}
	}
	return true
}

// settle ends a run in state with a message.
func settle(a *problemhookv1alpha1.ActionStatus, state problemhookv1alpha1.ActionState, msg string) {
	now := metav1.Now()
	a.State, a.Message, a.CompletionTime = state, truncate(msg, 1024), &now
}

// openEventOf maps a RESOLVED event to the OPEN event of the same problem.
func openEventOf(_ context.Context, o client.Object) []reconcile.Request {
	ev, ok := o.(*problemhookv1alpha1.ProblemEvent)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{
		Namespace: ev.Namespace,
		Name:      problemhookv1alpha1.EventName(ev.Spec.Target, ev.Spec.ProblemID, problemhookv1alpha1.StateOpen),
	}}}
}

// routeCache holds compiled routes by UID and generation, so that CEL and
// templates compile once per route change, not once per event.
type routeCache struct {
	mu     sync.Mutex
	routes map[types.UID]compiledRoute
}

type compiledRoute struct {
	generation int64
	route      *routing.Route
	err        error
}

func (c *routeCache) get(ir *problemhookv1alpha1.IntegrationRoute) (*routing.Route, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cr, ok := c.routes[ir.UID]; ok && cr.generation == ir.Generation {
		return cr.route, cr.err
	}
	route, err := routing.Compile(&ir.Spec)
	if c.routes == nil {
		c.routes = map[types.UID]compiledRoute{}
	}
	c.routes[ir.UID] = compiledRoute{generation: ir.Generation, route: route, err: err}
	return route, err
}

// forget drops a deleted route, given as the informer hands it over.
func (c *routeCache) forget(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	ir, ok := obj.(*problemhookv1alpha1.IntegrationRoute)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.routes, ir.UID)
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
