package controllers

// Routing: which routes an event runs, decided once per event, and the
// compiled routes it is decided with.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/routing"
)

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

func skip(ev *problemhookv1alpha1.ProblemEvent, msg string) {
	ev.Status.Phase = problemhookv1alpha1.PhaseSkipped
	setReady(&ev.Status.Conditions, ev.Generation, metav1.ConditionTrue, problemhookv1alpha1.ReasonSkipped, msg)
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
