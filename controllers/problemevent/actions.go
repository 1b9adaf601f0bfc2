package problemevent

// The action runs of an event's status: how they group by route and
// action, settle, add up to the event's phase, and retry.

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/routing"
)

// entityKey identifies an impacted entity in status: its id, or its name
// when the sender gave no id.
func entityKey(e routing.Entity) string {
	return routing.EntityKey(e)
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

// lastSettled is when the last of the runs settled: what the next action
// of their route waits after.
func lastSettled(runs []problemhookv1alpha1.ActionStatus, idx []int) time.Time {
	var last time.Time
	for _, i := range idx {
		if t := runs[i].CompletionTime; t != nil && t.After(last) {
			last = t.Time
		}
	}
	return last
}

func allSettled(runs []problemhookv1alpha1.ActionStatus, idx []int) bool {
	for _, i := range idx {
		if !runs[i].State.Settled() {
			return false
		}
	}
	return true
}

// settle ends a run in state with a message, now.
func (r *Reconciler) settle(a *problemhookv1alpha1.ActionStatus, state problemhookv1alpha1.ActionState, msg string) {
	now := metav1.NewTime(r.Now())
	a.State, a.Message, a.CompletionTime, a.NextAttemptTime = state, controllers.Truncate(msg, 1024), &now, nil
}

// summarise sets the event's phase and Ready condition from its actions,
// and reports whether every action has settled.
func summarise(ev *problemhookv1alpha1.ProblemEvent) bool {
	n := countStates(ev.Status.Actions)
	pending, running, succeeded, failed, stopped := n[problemhookv1alpha1.ActionPending], n[problemhookv1alpha1.ActionRunning],
		n[problemhookv1alpha1.ActionSucceeded], n[problemhookv1alpha1.ActionFailed], n[problemhookv1alpha1.ActionStopped]
	muted, skipped, awaiting := n[problemhookv1alpha1.ActionMuted], n[problemhookv1alpha1.ActionSkipped], n[problemhookv1alpha1.ActionAwaitingApproval]
	// Of the pending runs, those that wait for a time: a delay, a retry,
	// their turn.
	waiting, until := 0, time.Time{}
	for _, a := range ev.Status.Actions {
		if a.State == problemhookv1alpha1.ActionPending && a.NextAttemptTime != nil {
			waiting++
			if until.IsZero() || a.NextAttemptTime.Before(&metav1.Time{Time: until}) {
				until = a.NextAttemptTime.Time
			}
		}
	}
	// Of the pending runs, those due to start: of the first action of
	// their route that has not settled, and waiting for no time. The
	// actions after it wait their turn.
	due := 0
	for _, g := range groupActions(ev.Status.Actions) {
		for _, runs := range g.actions {
			if allSettled(ev.Status.Actions, runs) {
				continue
			}
			for _, i := range runs {
				if a := ev.Status.Actions[i]; a.State == problemhookv1alpha1.ActionPending && a.NextAttemptTime == nil {
					due++
				}
			}
			break
		}
	}
	counts := fmt.Sprintf("%d actions: %d succeeded, %d failed, %d stopped, %d running, %d pending", len(ev.Status.Actions), succeeded, failed, stopped, running, pending)
	for _, c := range []struct {
		n    int
		what string
	}{{waiting, "waiting"}, {awaiting, "awaiting approval"}, {skipped, "skipped"}, {muted, "muted"}} {
		if c.n > 0 {
			counts += fmt.Sprintf(", %d %s", c.n, c.what)
		}
	}
	omitted := 0
	for _, o := range ev.Status.Omitted {
		omitted += int(o.Omitted)
	}
	waitingUntil := ""
	if waiting > 0 {
		waitingUntil = "waiting until " + until.UTC().Format(time.TimeOnly)
	}
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{succeeded, "succeeded"}, {failed, "failed"}, {stopped, "stopped"}, {skipped, "skipped"}, {muted, "muted"}, {running, "running"},
		{awaiting, "awaiting approval"}, {waiting, waitingUntil}, {pending - waiting, "pending"}, {omitted, "omitted"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	ev.Status.Summary = strings.Join(parts, ", ")
	if omitted > 0 {
		counts += fmt.Sprintf("; %d omitted (status.omitted says why)", omitted)
	}
	status, reason := metav1.ConditionFalse, problemhookv1alpha1.ReasonProgressing
	switch {
	case running > 0:
		ev.Status.Phase = problemhookv1alpha1.PhaseRunning
	case awaiting > 0:
		ev.Status.Phase = problemhookv1alpha1.PhaseAwaitingApproval
	case due == 0 && waiting > 0:
		ev.Status.Phase = problemhookv1alpha1.PhaseWaiting
	case pending > 0:
		ev.Status.Phase = problemhookv1alpha1.PhasePending
	case failed > 0:
		ev.Status.Phase, status, reason = problemhookv1alpha1.PhaseFailed, metav1.ConditionTrue, problemhookv1alpha1.ReasonFailed
	case muted == len(ev.Status.Actions):
		// Every route that matched was muted: nothing ran.
		ev.Status.Phase, status, reason = problemhookv1alpha1.PhaseSkipped, metav1.ConditionTrue, problemhookv1alpha1.ReasonSkipped
	default:
		ev.Status.Phase, status, reason = problemhookv1alpha1.PhaseSucceeded, metav1.ConditionTrue, problemhookv1alpha1.ReasonSucceeded
	}
	problemhookv1alpha1.SetReady(&ev.Status.Conditions, ev.Generation, status, reason, counts)
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

// The retry policy of a route: how often a failed Job is run again (its
// backoffLimit), and how often and when a failed message is sent again.
const (
	// maxRetryWait bounds the wait before an attempt, whatever the
	// backoff or a Retry-After asks.
	maxRetryWait = time.Hour
)

// backoffAfter is the wait after the given attempt failed: the first
// backoff, doubled for each attempt after the first, at most maxRetryWait.
func backoffAfter(first time.Duration, attempt int32) time.Duration {
	wait := first
	for i := int32(1); i < attempt && wait < maxRetryWait; i++ {
		wait *= 2
	}
	return min(wait, maxRetryWait)
}

// ceilSecond rounds t up to a whole second: status keeps times to the
// second, and a retry must not come earlier than its wait.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// nextAttempt is how long until the earliest of the event's waiting runs
// is due (a delay's end, a retry, an approval's timeout), or 0 when none
// waits.
func (r *Reconciler) nextAttempt(ev *problemhookv1alpha1.ProblemEvent) time.Duration {
	var next time.Duration
	for _, a := range ev.Status.Actions {
		if (a.State != problemhookv1alpha1.ActionPending && a.State != problemhookv1alpha1.ActionAwaitingApproval) || a.NextAttemptTime == nil {
			continue
		}
		d := max(a.NextAttemptTime.Sub(r.Now()), time.Millisecond)
		if next == 0 || d < next {
			next = d
		}
	}
	return next
}
