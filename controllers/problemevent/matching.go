package problemevent

// Routing: which routes an event runs, decided once per event, and the
// compiled routes it is decided with.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/actionkind"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/routing"
)

// errCallsPending ends a reconcile that waits for an outside call: the
// call's end brings the event back.
var errCallsPending = errors.New("waiting for an outside call")

// route enriches the event and records one pending action status per
// action (and entity) of every matching route. It runs once per event:
// a route that changes or appears later does not change what the event runs.
func (r *Reconciler) route(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, target *problemhookv1alpha1.NotificationTarget) error {
	if ev.Spec.Test && (target == nil || target.Spec.TestNotifications != problemhookv1alpha1.TestNotificationsRun) {
		skip(ev, fmt.Sprintf("Test notification recorded only: NotificationTarget %s runs routes for tests when spec.testNotifications is Run", ev.Spec.Target))
		return nil
	}
	if !r.enrich(ctx, ev, target) {
		return errCallsPending
	}

	var routes problemhookv1alpha1.IntegrationRouteList
	if err := r.List(ctx, &routes, client.InNamespace(ev.Namespace)); err != nil {
		return fmt.Errorf("listing IntegrationRoutes: %w", err)
	}
	slices.SortFunc(routes.Items, func(a, b problemhookv1alpha1.IntegrationRoute) int { return strings.Compare(a.Name, b.Name) })
	p := routing.NewProblem(ev)
	plan := runPlan{budget: MaxRunBytes}
	for i := range routes.Items {
		ir := &routes.Items[i]
		if ev.Spec.Test && !ir.Spec.IncludeTestNotifications || ir.Spec.Suspend {
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
		now := metav1.NewTime(r.Now())
		runs := routeActions(ir, compiled, p, now)
		if muted, i := compiled.Muted(now.Time); muted {
			mute(runs, i, compiled.MutedUntil(now.Time), now)
		}
		plan.add(ev, ir, compiled, runs)
		r.matches.note(ir, ev)
	}
	for _, o := range plan.omitted {
		r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "RunsOmitted", "Route", "IntegrationRoute %s action %s: %d of %d runs omitted: %s",
			o.Route, o.Action, o.Omitted, o.Asked, o.Reason)
	}
	if len(plan.runs) == 0 && len(plan.omitted) == 0 {
		skip(ev, "No IntegrationRoute matched")
		return nil
	}
	ev.Status.Actions, ev.Status.Omitted = plan.runs, plan.omitted
	ev.Status.Phase = problemhookv1alpha1.PhasePending
	return nil
}

// Bounds of the runs an event holds, so that it stays well under what
// etcd stores (1.5 MiB) whatever the number of impacted entities.
const (
	// MaxEntityRuns bounds the runs of one per-entity action: as many as
	// the impacted entities a ProblemEvent holds.
	MaxEntityRuns = problemhookv1alpha1.MaxEntityCount
	// MaxRunBytes bounds what an event's runs take, each counted at its
	// largest (runOverhead beside its names).
	MaxRunBytes = 512 << 10
	// runOverhead is what a run can take beside its route, action, entity
	// and recipient: its Job name, its message (cut to fanOutMessage in an
	// event of more than fanOutRuns runs), its times and state.
	runOverhead = 640
	// fanOutRuns and fanOutMessage: in an event of more runs than
	// fanOutRuns, a run's message is cut to fanOutMessage bytes.
	fanOutRuns, fanOutMessage = 64, 256
)

// runPlan allocates the runs of the matching routes, action by action,
// within the bounds, and counts what does not fit.
type runPlan struct {
	runs    []problemhookv1alpha1.ActionStatus
	omitted []problemhookv1alpha1.OmittedRuns
	budget  int
}

// add takes the runs of one matching route, in order.
func (pl *runPlan) add(ev *problemhookv1alpha1.ProblemEvent, ir *problemhookv1alpha1.IntegrationRoute, compiled *routing.Route, runs []problemhookv1alpha1.ActionStatus) {
	for len(runs) > 0 {
		n := 1
		for n < len(runs) && runs[n].Action == runs[0].Action {
			n++
		}
		pl.action(ev, ir, compiled, runs[:n])
		runs = runs[n:]
	}
}

// action takes the runs of one action.
func (pl *runPlan) action(ev *problemhookv1alpha1.ProblemEvent, ir *problemhookv1alpha1.IntegrationRoute, compiled *routing.Route, runs []problemhookv1alpha1.ActionStatus) {
	asked, reason := len(runs), ""
	if first := runs[0]; first.Entity != "" {
		// The entities the notification named past what the event holds
		// are runs asked for too, for a route that takes every entity.
		if count := int(ev.Spec.ImpactedEntityCount); count > len(ev.Spec.ImpactedEntities) && !compiled.FiltersEntities() && count > asked {
			asked = count
			reason = fmt.Sprintf("the notification named %d impacted entities; a ProblemEvent holds %d", count, problemhookv1alpha1.MaxEntityCount)
		}
		if len(runs) > MaxEntityRuns {
			runs = runs[:MaxEntityRuns]
			reason = fmt.Sprintf("an action runs for at most %d impacted entities per event", MaxEntityRuns)
		}
	}
	kept := 0
	for _, run := range runs {
		size := len(run.Route) + len(run.Action) + len(run.Entity) + len(run.Recipient) + runOverhead
		if len(pl.runs) >= problemhookv1alpha1.MaxActionStatuses || size > pl.budget {
			reason = fmt.Sprintf("an event holds at most %d runs, in %d KiB", problemhookv1alpha1.MaxActionStatuses, MaxRunBytes>>10)
			break
		}
		pl.budget -= size
		pl.runs = append(pl.runs, run)
		kept++
	}
	if kept < asked && len(pl.omitted) < 256 {
		pl.omitted = append(pl.omitted, problemhookv1alpha1.OmittedRuns{
			Route: ir.Name, Action: runs[0].Action, Asked: int32(asked), Omitted: int32(asked - kept), Reason: reason,
		})
	}
}

// routeActions lists the action runs a matching route asks for, in its order.
func routeActions(ir *problemhookv1alpha1.IntegrationRoute, compiled *routing.Route, p *routing.Problem, now metav1.Time) []problemhookv1alpha1.ActionStatus {
	var out []problemhookv1alpha1.ActionStatus
	for _, r := range compiled.Runs(ir.Spec.Actions, p) {
		run := problemhookv1alpha1.ActionStatus{Route: ir.Name, Action: r.Action.Name, Type: actionkind.Of(r.Action).Type, State: problemhookv1alpha1.ActionPending}
		switch {
		case r.Recipient != "":
			run.Recipient = notify.MaskPhone(r.Recipient)
		case r.Entity != nil:
			run.Entity = entityKey(*r.Entity)
		case r.NoEntities:
			run.State, run.CompletionTime = problemhookv1alpha1.ActionFailed, &now
			run.Message = "No impacted entities to run a Job for: the notification named none, and Dynatrace gave none"
		}
		out = append(out, run)
	}
	return out
}

// mute settles the runs of a route that matched during its mute time
// interval i, which lasts until (zero: more than a week): nothing of
// theirs is created or sent.
func mute(runs []problemhookv1alpha1.ActionStatus, i int, until time.Time, now metav1.Time) {
	when := "for more than a week"
	if !until.IsZero() {
		when = "until " + until.UTC().Format(time.RFC3339)
	}
	msg := fmt.Sprintf("Muted %s by the route's spec.muteTimeIntervals[%d]: nothing was created or sent", when, i)
	for i := range runs {
		runs[i].State, runs[i].Message, runs[i].CompletionTime = problemhookv1alpha1.ActionMuted, msg, &now
	}
}

func skip(ev *problemhookv1alpha1.ProblemEvent, msg string) {
	ev.Status.Phase = problemhookv1alpha1.PhaseSkipped
	problemhookv1alpha1.SetReady(&ev.Status.Conditions, ev.Generation, metav1.ConditionTrue, problemhookv1alpha1.ReasonSkipped, msg)
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
