// Package problemevent reconciles ProblemEvents: it enriches an event from
// its target's Dynatrace connection, routes it to the IntegrationRoutes that
// match it, runs their actions (Jobs, and messages sent beside the
// reconcile), stops what a RESOLVED stops, and comments the outcome back on
// the Dynatrace problem. One file per concern: enrichment.go, matching.go,
// jobs.go, messages.go, output.go, resolve.go, comment.go, with the runs'
// bookkeeping in actions.go, the outside calls in internal/outcall and the status
// writes in status.go.
package problemevent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/actionkind"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/fairqueue"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/outcall"
	"github.com/problemhook/problemhook/internal/pacing"
	"github.com/problemhook/problemhook/internal/routing"
)

// Reconciler runs the integrations of a ProblemEvent: it reads
// the problem's details from Dynatrace, selects the matching routes once,
// runs and follows their actions, and comments the outcome back. All it
// knows is in the event's status, so a restart resumes where it stopped.
type Reconciler struct {
	controllers.Deps
	// PodLogs reads the end of a finished Job's log for its run's output;
	// no output is kept when nil.
	PodLogs PodLogs
	// DingTalkRate is what one DingTalk robot takes; actionkind.DingTalkRate
	// when zero.
	DingTalkRate pacing.Rate
	// MaxConcurrentReconciles bounds how many events are worked on at once.
	MaxConcurrentReconciles int
	// MatchNoteInterval bounds how often a route's lastMatch status is
	// written; DefaultMatchNoteInterval when zero.
	MatchNoteInterval time.Duration
	// PodStartTimeout bounds how long a Job's Pod may wait for a reason
	// that will not clear by itself (an image that cannot be pulled, a
	// Secret missing, no node) before its run fails and the Job is
	// deleted; DefaultPodStartTimeout when zero.
	PodStartTimeout time.Duration

	routes  routeCache
	pacer   pacing.Pacer
	calls   *outcall.Set
	matches *matchNotes
}

// SetupWithManager registers the reconciler. It follows the Jobs it owns,
// and the arrival of a RESOLVED event brings its OPEN event back, to stop
// what still runs for the problem.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Deps = r.Defaulted()
	r.calls = outcall.New()
	if err := mgr.Add(r.calls); err != nil {
		return fmt.Errorf("adding the outside calls: %w", err)
	}
	r.matches = &matchNotes{client: r.Client, interval: cmp.Or(r.MatchNoteInterval, DefaultMatchNoteInterval), now: r.Now}
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
		// A rerun is asked for with an annotation, which changes no generation.
		For(&problemhookv1alpha1.ProblemEvent{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&batchv1.Job{}).
		Watches(&problemhookv1alpha1.ProblemEvent{}, handler.EnqueueRequestsFromMapFunc(openEventOf), builder.WithPredicates(resolvedCreated)).
		WatchesRawSource(source.Channel(r.calls.Wake(), &handler.TypedEnqueueRequestForObject[client.Object]{})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1),
			NewQueue:                fairQueue(mgr.GetLogger()),
		}).
		Complete(r)
}

// fairQueue makes the controller's queue: controller-runtime's priority
// queue, whose items of each priority take turns between namespaces. Many
// tenants share the workers; one tenant's backlog (a storm stored in a
// burst, or a leader's start over ten thousand events) must not hold
// another's next event behind all of it.
func fairQueue(log logr.Logger) func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return func(name string, limiter workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		q := priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) {
			o.Log = log.WithValues("controller", name)
			o.RateLimiter = limiter
		})
		return fairqueue.New(q, func(req reconcile.Request) string { return req.Namespace })
	}
}

// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents,verbs=get;list;watch
// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents/status,verbs=patch
// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents/finalizers,verbs=update
// +kubebuilder:rbac:groups=problemhook.io,resources=integrationroutes,verbs=list;watch
// +kubebuilder:rbac:groups=problemhook.io,resources=integrationroutes/status,verbs=patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=list

// Reconcile advances a ProblemEvent's integrations as far as they can go now.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
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
	if _, asked := ev.Annotations[problemhookv1alpha1.AnnotationRerun]; asked {
		if err := r.rerun(ctx, w, &ev); err != nil {
			return ctrl.Result{}, err
		}
	}
	if ev.Status.Phase == "" {
		switch err := r.route(ctx, &ev, target); {
		case errors.Is(err, errCallsPending):
			return ctrl.Result{RequeueAfter: callsPendingRecheck}, nil
		case err != nil:
			return ctrl.Result{}, err
		}
	}
	if ev.Status.Phase == problemhookv1alpha1.PhaseSkipped {
		return ctrl.Result{}, nil
	}
	if decisionAsked(&ev) {
		if err := r.decide(ctx, w, &ev); err != nil {
			return ctrl.Result{}, err
		}
	}
	created, err := r.drive(ctx, w, &ev, target)
	r.recordJobsCreated(&ev, created)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !summarise(&ev) {
		after := r.nextAttempt(&ev)
		if messagesInFlight(&ev) && (after == 0 || after > sendRecheck) {
			// Its answer wakes the event; should that be lost, this does.
			after = sendRecheck
		}
		if recheck := min(podStartRecheck, r.podStartTimeout()); startingPods(&ev) && (after == 0 || after > recheck) {
			after = recheck
		}
		return ctrl.Result{RequeueAfter: after}, nil
	}
	if err := r.comment(ctx, &ev, target); errors.Is(err, errCallsPending) {
		return ctrl.Result{RequeueAfter: callsPendingRecheck}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// sendRecheck brings back an event with messages in flight, past the
// longest a send may take.
const sendRecheck = notify.DefaultTimeout + 5*time.Second

// messagesInFlight reports whether a message run of ev is being sent.
func messagesInFlight(ev *problemhookv1alpha1.ProblemEvent) bool {
	for _, a := range ev.Status.Actions {
		if actionkind.IsMessage(a.Type) && a.State == problemhookv1alpha1.ActionRunning {
			return true
		}
	}
	return false
}

// callsPendingRecheck brings an event that waits for an outside call back
// should the call's end not wake it.
const callsPendingRecheck = dtconn.CallTimeout + 5*time.Second

// target returns the event's NotificationTarget, or nil when it is gone.
func (r *Reconciler) target(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent) (*problemhookv1alpha1.NotificationTarget, error) {
	var target problemhookv1alpha1.NotificationTarget
	if err := r.Get(ctx, types.NamespacedName{Namespace: ev.Namespace, Name: ev.Spec.Target}, &target); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading NotificationTarget %s: %w", ev.Spec.Target, err)
	}
	return &target, nil
}

// drive starts, follows and stops the event's actions. Within a route the
// actions run in order, each once the one before it has settled (and its
// gate, if it has one, cleared it); routes run side by side. It returns
// the Jobs it created, also when it fails.
func (r *Reconciler) drive(ctx context.Context, w *statusWriter, ev *problemhookv1alpha1.ProblemEvent, target *problemhookv1alpha1.NotificationTarget) (created []*batchv1.Job, err error) {
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
		at := step{after: ev.CreationTimestamp.Time, first: true}
		for _, runs := range group.actions {
			action := findAction(ir, ev.Status.Actions[runs[0]].Action)
			for _, i := range runs {
				a := &ev.Status.Actions[i]
				switch {
				case a.State != problemhookv1alpha1.ActionRunning:
				case actionkind.IsMessage(a.Type) && outcall.Running(r.calls, sendKey(ev, i, a)):
					// In flight beside a reconcile: its answer, if it came.
					if value, err, done := outcall.Result(ctx, r.calls, sendKey(ev, i, a), time.Now()); done {
						r.settleSend(ctx, ev, ir, a, value, err)
					}
				case actionkind.IsMessage(a.Type):
					// Claimed by a manager that stopped before it recorded
					// the outcome.
					r.settle(a, problemhookv1alpha1.ActionFailed, outcomeUnknown)
					r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "MessageOutcomeUnknown", "Send", "IntegrationRoute %s action %s: %s", a.Route, a.Action, outcomeUnknown)
				case a.Job != "":
					if err := r.observeJob(ctx, ev, ir, a); err != nil {
						return created, err
					}
				}
				// A message in flight is let finish: whether it left is
				// known only from its answer.
				inFlight := actionkind.IsMessage(a.Type) && a.State == problemhookv1alpha1.ActionRunning
				if resolvedBy != "" && !a.State.Settled() && !inFlight && stopsOnResolve(action) {
					if err := r.stop(ctx, ev, ir, a, resolvedBy); err != nil {
						return created, err
					}
				}
			}
			if previousSettled {
				jobs, err := r.start(ctx, w, ev, p, target, ir, action, runs, at, resolvedBy)
				created = append(created, jobs...)
				if err != nil {
					return created, err
				}
			}
			previousSettled = allSettled(ev.Status.Actions, runs)
			at = step{after: lastSettled(ev.Status.Actions, runs)}
		}
	}
	return created, nil
}

// start starts the pending runs of an action: its messages, or its Jobs
// within its parallelism. It returns the Jobs it created.
func (r *Reconciler) start(ctx context.Context, w *statusWriter, ev *problemhookv1alpha1.ProblemEvent, p *routing.Problem, target *problemhookv1alpha1.NotificationTarget, ir *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, runs []int, at step, resolvedBy string) ([]*batchv1.Job, error) {
	var gone string
	switch {
	case ir == nil:
		gone = "was deleted before the action started"
	case action == nil:
		gone = "no longer has an action " + ev.Status.Actions[runs[0]].Action
	case actionkind.Of(action).Type != ev.Status.Actions[runs[0]].Type:
		// A route edited since the event was routed may have turned the
		// action into another kind: its runs cannot be made as recorded.
		gone = "action " + action.Name + " is no longer a " + ev.Status.Actions[runs[0]].Type + " action"
	default:
		if cleared, err := r.gate(ctx, ev, target, ir, action, runs, at, resolvedBy); !cleared || err != nil {
			return nil, err
		}
		if action.Job == nil {
			return nil, r.sendMessages(ctx, w, ev, p, ir, action, runs)
		}
		return r.startJobs(ctx, ev, p, ir, action, runs)
	}
	for _, i := range runs {
		if a := &ev.Status.Actions[i]; a.State == problemhookv1alpha1.ActionPending || a.State == problemhookv1alpha1.ActionAwaitingApproval {
			a.NextAttemptTime = nil
			r.settle(a, problemhookv1alpha1.ActionFailed, "IntegrationRoute "+a.Route+" "+gone)
		}
	}
	return nil, nil
}

// integrationRoute returns the named route, or nil when it is gone.
func (r *Reconciler) integrationRoute(ctx context.Context, namespace, name string) (*problemhookv1alpha1.IntegrationRoute, error) {
	var ir problemhookv1alpha1.IntegrationRoute
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &ir); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading IntegrationRoute %s: %w", name, err)
	}
	return &ir, nil
}

// openEventOf maps a RESOLVED event to the OPEN event of the same problem.
func openEventOf(_ context.Context, o client.Object) []reconcile.Request {
	ev, ok := o.(*problemhookv1alpha1.ProblemEvent)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{
		Namespace: ev.Namespace,
		Name:      problemhookv1alpha1.EventName(ev.Spec.Target, ev.Spec.ProblemKey(), problemhookv1alpha1.StateOpen),
	}}}
}
