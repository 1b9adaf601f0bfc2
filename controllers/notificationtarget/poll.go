package notificationtarget

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/internal/statuspatch"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/payload"
)

// CompletenessDelay is how long Dynatrace needs before a time frame's
// problems are all listed; a poll stops this long before now.
const CompletenessDelay = 2 * time.Minute

// pollRetry bounds the wait before a failed poll is tried again, and
// between the polls of a poller that is behind.
const pollRetry = time.Minute

// Bounds of one poll: one target's Dynatrace, slow or vast, must not hold
// the poller, the manager's memory or the API server.
const (
	// DefaultMaxEventsPerPoll bounds the ProblemEvents one poll creates;
	// the rest wait for the next poll, a minute later.
	DefaultMaxEventsPerPoll = 500
	// DefaultPollTimeout bounds one poll, listing and creating.
	DefaultPollTimeout = 2 * time.Minute
	// pollMaxPages and pollMaxResponseBytes bound what one listing reads:
	// 20 pages, of 8 MiB together at most.
	pollMaxPages         = 20
	pollMaxResponseBytes = dynatrace.MaxResponseBytes
)

// PollReconciler catches up on notifications that never arrived: for each
// Ready NotificationTarget with spec.dynatrace.poll it lists the problems
// of the time frame since its last poll and records each problem state that
// has no ProblemEvent yet, under the name the receiver would have given it.
// A notification that arrives later is then a duplicate, and one that
// arrived earlier makes the poller's create a no-op.
type PollReconciler struct {
	controllers.Deps
	// PageSize is the number of problems asked for per page; 500, the
	// API's largest, when zero.
	PageSize int
	// MaxEventsPerPoll bounds the events one poll creates;
	// DefaultMaxEventsPerPoll when zero.
	MaxEventsPerPoll int
	// PollTimeout bounds one poll; DefaultPollTimeout when zero.
	PollTimeout time.Duration
}

// SetupWithManager registers the poller for the targets that poll.
func (r *PollReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Deps = r.Defaulted()
	polls := func(o client.Object) bool {
		t, ok := o.(*problemhookv1alpha1.NotificationTarget)
		return ok && pollSpec(t) != nil
	}
	polling := predicate.NewPredicateFuncs(polls)
	// A target that stops polling comes here once more, to drop its
	// series of the last successful poll.
	polling.UpdateFunc = func(e event.UpdateEvent) bool { return polls(e.ObjectOld) || polls(e.ObjectNew) }
	return ctrl.NewControllerManagedBy(mgr).
		Named("poller").
		For(&problemhookv1alpha1.NotificationTarget{}, builder.WithPredicates(polling)).
		Complete(r)
}

// +kubebuilder:rbac:groups=problemhook.io,resources=notificationtargets,verbs=list;watch
// +kubebuilder:rbac:groups=problemhook.io,resources=notificationtargets/status,verbs=patch
// +kubebuilder:rbac:groups=problemhook.io,resources=problemevents,verbs=create

// Reconcile polls a target when its next poll is due, and says when that is.
func (r *PollReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	var target problemhookv1alpha1.NotificationTarget
	if err := r.Get(ctx, req.NamespacedName, &target); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetPoll(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	spec := pollSpec(&target)
	if spec == nil || target.Spec.Suspend {
		// It no longer polls, on purpose: its age would only be noise.
		metrics.ForgetPoll(target.Namespace, target.Name)
		return ctrl.Result{}, nil
	}
	// A target that is not Ready polls once it is: its status change
	// brings it back here. Its age keeps growing meanwhile, and says so.
	if !meta.IsStatusConditionTrue(target.Status.Conditions, problemhookv1alpha1.ConditionReady) {
		return ctrl.Result{}, nil
	}
	base := target.DeepCopy()
	defer func() {
		retErr = statuspatch.Merge(ctx, r.Client, base, &target, func(t *problemhookv1alpha1.NotificationTarget) any { return t.Status.Poll })
	}()
	now := r.Now()
	st := target.Status.Poll
	if st == nil {
		st = &problemhookv1alpha1.PollStatus{}
		target.Status.Poll = st
	}
	interval := spec.Interval.Duration
	if st.LastPollTime != nil {
		wait := interval
		// After a failure, or a poll that stopped at its bound of events,
		// the next comes sooner.
		behind := st.CoveredUntil != nil && now.Sub(st.CoveredUntil.Time) > interval+CompletenessDelay
		if st.LastError != "" || behind {
			wait = min(interval, pollRetry)
		}
		if next := st.LastPollTime.Add(wait); now.Before(next) {
			return ctrl.Result{RequeueAfter: next.Sub(now)}, nil
		}
	}
	// Status keeps whole seconds: the frame ends on one, so that the next
	// frame starts exactly where this one ended.
	to := now.Add(-CompletenessDelay).Truncate(time.Second)
	from := to.Add(-spec.Window.Duration)
	if st.CoveredUntil != nil && st.CoveredUntil.After(from) {
		from = st.CoveredUntil.Time
	}
	st.LastPollTime = &metav1.Time{Time: now.Truncate(time.Second)}
	pollCtx, cancel := context.WithTimeout(ctx, cmp.Or(r.PollTimeout, DefaultPollTimeout))
	defer cancel()
	listed, recorded, covered, err := r.poll(pollCtx, &target, from, to, now)
	if err != nil {
		metrics.Polls.WithLabelValues(metrics.PollFailed).Inc()
		st.LastError = controllers.Truncate(err.Error(), 1024)
		r.Recorder.Eventf(&target, nil, corev1.EventTypeWarning, problemhookv1alpha1.ReasonPollFailed, "Poll", "Polling Dynatrace for missed problems: %s", st.LastError)
		// The frame stays uncovered; the next poll covers it.
		return ctrl.Result{RequeueAfter: min(interval, pollRetry)}, nil
	}
	metrics.Polls.WithLabelValues(metrics.PollSucceeded).Inc()
	metrics.SetPollSuccess(target.Namespace, target.Name, now)
	st.LastError = ""
	st.Listed, st.Recorded = listed, recorded
	if covered.After(from) || (st.CoveredUntil == nil && to.After(from)) {
		st.CoveredUntil = &metav1.Time{Time: covered}
	}
	if recorded > 0 {
		states := "problem states whose notifications"
		if recorded == 1 {
			states = "problem state whose notification"
		}
		r.Recorder.Eventf(&target, nil, corev1.EventTypeNormal, problemhookv1alpha1.ReasonPolled, "Poll",
			"Recorded %d %s had not arrived, from %s to %s", recorded, states, from.UTC().Format(time.RFC3339), covered.UTC().Format(time.RFC3339))
	}
	if covered.Before(to) {
		// Stopped at its bound: the rest of the frame is next, soon.
		return ctrl.Result{RequeueAfter: min(interval, pollRetry)}, nil
	}
	return ctrl.Result{RequeueAfter: interval}, nil
}

// poll records the problem states that changed between from and to and
// have no ProblemEvent yet, oldest first and at most MaxEventsPerPoll of
// them. It returns how many problems the frame listed, how many events it
// created, and how far the frame is covered: to, or the second of the
// first state it left for the next poll.
func (r *PollReconciler) poll(ctx context.Context, target *problemhookv1alpha1.NotificationTarget, from, to, now time.Time) (listed, recorded int32, covered time.Time, err error) {
	if !to.After(from) {
		return 0, 0, from, nil
	}
	dc, err := r.Dynatrace.For(ctx, r.Client, target)
	if err != nil {
		return 0, 0, from, err
	}
	problems, err := dc.ListProblems(ctx, dynatrace.ListOptions{
		From:             fmt.Sprint(from.UnixMilli()),
		To:               fmt.Sprint(to.UnixMilli()),
		PageSize:         cmp.Or(r.PageSize, dynatrace.MaxPageSize),
		MaxPages:         pollMaxPages,
		MaxResponseBytes: pollMaxResponseBytes,
	})
	if err != nil {
		return 0, 0, from, err
	}
	changes := stateChanges(problems, from, to)
	log := ctrl.LoggerFrom(ctx)
	for i, c := range changes {
		if int(recorded) == cmp.Or(r.MaxEventsPerPoll, DefaultMaxEventsPerPoll) {
			// Status keeps whole seconds: the next poll lists this second
			// again, and finds what it recorded of it already there.
			return int32(len(problems)), recorded, changes[i].at.Truncate(time.Second), nil
		}
		spec, err := polledSpec(target, c.problem, c.state, now)
		if err != nil {
			// Not something a retry fixes: say so, and go on with the others.
			log.Error(err, "Skipping a polled problem", "problemID", c.problem.ProblemID)
			continue
		}
		ev := problemhookv1alpha1.NewProblemEvent(target, spec)
		switch err := r.Create(ctx, ev); {
		case apierrors.IsAlreadyExists(err):
			// Its notification arrived, or an earlier poll found it.
		case err != nil:
			return int32(len(problems)), recorded, from, fmt.Errorf("recording problem %s %s: %w", c.problem.DisplayID, c.state, err)
		default:
			recorded++
			metrics.PollRecordedEvents.Inc()
			metrics.CountEvent(target.Namespace, target.Name, string(c.state), metrics.OriginPoll)
			log.Info("Recorded a problem state whose notification had not arrived", "ProblemEvent", klog.KObj(ev), "problem", c.problem.DisplayID, "state", c.state)
		}
	}
	return int32(len(problems)), recorded, to, nil
}

// stateChange is a problem entering a state at a time.
type stateChange struct {
	at      time.Time
	problem dynatrace.Problem
	state   problemhookv1alpha1.ProblemState
}

// stateChanges lists the states the problems entered between from and to,
// oldest first (OPEN before RESOLVED at the same time).
func stateChanges(problems []dynatrace.Problem, from, to time.Time) []stateChange {
	var out []stateChange
	for _, p := range problems {
		for _, state := range changedStates(p, from, to) {
			at := time.UnixMilli(p.StartTime)
			if state == problemhookv1alpha1.StateResolved {
				at = time.UnixMilli(p.EndTime)
			}
			out = append(out, stateChange{at: at, problem: p, state: state})
		}
	}
	slices.SortStableFunc(out, func(a, b stateChange) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(string(a.state), string(b.state))
	})
	return out
}

// changedStates are the states problem p entered between from and to: OPEN
// when it started then, RESOLVED when it ended then. A state entered
// earlier belongs to an earlier frame.
func changedStates(p dynatrace.Problem, from, to time.Time) []problemhookv1alpha1.ProblemState {
	in := func(ms int64) bool {
		t := time.UnixMilli(ms)
		return !t.Before(from) && !t.After(to)
	}
	var states []problemhookv1alpha1.ProblemState
	if in(p.StartTime) {
		states = append(states, problemhookv1alpha1.StateOpen)
	}
	if p.Status == "CLOSED" && p.EndTime > 0 && in(p.EndTime) {
		states = append(states, problemhookv1alpha1.StateResolved)
	}
	return states
}

// polledSpec is the ProblemEventSpec of problem p in state: what a
// notification with the {ProblemDetailsJSONv2} placeholder would have
// carried, parsed by the receiver's own parser so that a polled event is
// routed exactly like a notified one.
func polledSpec(target *problemhookv1alpha1.NotificationTarget, p dynatrace.Problem, state problemhookv1alpha1.ProblemState, now time.Time) (*problemhookv1alpha1.ProblemEventSpec, error) {
	body, err := json.Marshal(map[string]any{
		"State":                state,
		"PID":                  p.ProblemID,
		"ProblemID":            strings.TrimPrefix(p.DisplayID, "P-"),
		"ProblemURL":           dtconn.ProblemURL(target, p.ProblemID),
		"ProblemDetailsJSONv2": p,
	})
	if err != nil {
		return nil, err
	}
	spec, err := payload.Parse(problemhookv1alpha1.FormatDynatrace, body)
	if err != nil {
		return nil, fmt.Errorf("problem %q as listed by the API: %w", p.ProblemID, err)
	}
	// The client kept the first items of a list that held more: the event
	// lacks the rest, as a cut notification does.
	spec.Truncated = spec.Truncated || p.Truncated
	spec.ReceivedAt = metav1.NewTime(now)
	spec.Origin = problemhookv1alpha1.OriginPoll
	return spec, nil
}

func pollSpec(t *problemhookv1alpha1.NotificationTarget) *problemhookv1alpha1.PollSpec {
	if t.Spec.Dynatrace == nil {
		return nil
	}
	return t.Spec.Dynatrace.Poll
}
