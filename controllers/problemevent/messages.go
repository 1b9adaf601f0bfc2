package problemevent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/actionkind"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/outcall"
	"github.com/problemhook/problemhook/internal/routing"
	"github.com/problemhook/problemhook/internal/secretref"
)

// Delivery of message actions (Twilio, DingTalk, HTTP).
//
// Each run (one per Twilio recipient, one for a DingTalk or HTTP action)
// is sent at most once per attempt, and attempted again only after a
// retryable failure:
//
//  1. The due runs of an action are recorded as Running, with their
//     attempt counted, in a status write that carries the resourceVersion
//     it was computed from. Only once that write is stored does a request
//     leave. A reconcile working from a stale copy of the event has its
//     write refused and sends nothing.
//  2. The outcome is recorded: Succeeded, Failed, or Pending with a
//     nextAttemptTime after a retryable failure (429, 5xx, timeouts),
//     following the route's retry policy and the service's Retry-After.
//  3. A run found Running when a reconcile begins was claimed by a manager
//     that stopped before it recorded the outcome. Whether its message left
//     cannot be known, so it is not sent again: it fails, saying so.
//
// So a crash can lose a message, never repeat one that was recorded as
// sent or as in flight. A manager that is stopped (a rollout, a drained
// node) finishes the sends under way and records them before it exits.

// statusWriteTimeout bounds the status write that records outcomes
// when the reconcile's context has ended.
const statusWriteTimeout = 30 * time.Second

// outcomeUnknown is the message of a run found in flight after a restart.
const outcomeUnknown = "Outcome unknown: problemhook stopped while this message was being sent, before it recorded the answer; it is not sent again, so that nobody gets it twice"

// send is one prepared message: everything read and rendered, ready to go.
type send struct {
	run int
	actionkind.Message
}

// sendMessages sends the runs of a message action that are due, records
// them as Running before anything is sent, and records each outcome.
func (r *Reconciler) sendMessages(ctx context.Context, w *statusWriter, ev *problemhookv1alpha1.ProblemEvent, p *routing.Problem, ir *problemhookv1alpha1.IntegrationRoute, action *problemhookv1alpha1.Action, runs []int) error {
	now := r.Now()
	var due []int
	for _, i := range runs {
		a := &ev.Status.Actions[i]
		if a.State == problemhookv1alpha1.ActionPending && (a.NextAttemptTime == nil || !a.NextAttemptTime.After(now)) {
			due = append(due, i)
		}
	}
	if len(due) == 0 {
		return nil
	}
	compiled, err := r.routes.get(ir)
	if err != nil {
		for _, i := range due {
			r.settle(&ev.Status.Actions[i], problemhookv1alpha1.ActionFailed, fmt.Sprintf("IntegrationRoute %s is invalid: %v", ir.Name, err))
		}
		return nil
	}
	var sends []send
	for _, i := range due {
		a := &ev.Status.Actions[i]
		prep, err := r.prepare(ctx, ev, p, ir, compiled, action, a)
		var refErr *secretref.Error
		var prepErr *actionkind.PrepareError
		switch {
		case errors.As(err, &refErr) || errors.As(err, &prepErr):
			r.settle(a, problemhookv1alpha1.ActionFailed, fmt.Sprintf("IntegrationRoute %s action %s: %v", ir.Name, action.Name, err))
		case err != nil:
			return err
		case prep.Pace != "":
			// Its turn, or a wait for it that is no attempt.
			turn := r.pacer.Turn(prep.Pace, fmt.Sprintf("%s/%d", ev.UID, i), prep.Rate, now)
			if turn.After(now) {
				next := metav1.NewTime(ceilSecond(turn))
				a.NextAttemptTime = &next
				a.Message = fmt.Sprintf("Waiting its turn: %s; sending at %s", prep.Why, next.UTC().Format(time.RFC3339))
				continue
			}
			fallthrough
		default:
			sends = append(sends, send{run: i, Message: prep})
		}
	}
	if len(sends) == 0 {
		return nil
	}

	start := metav1.NewTime(now)
	for _, s := range sends {
		a := &ev.Status.Actions[s.run]
		a.State, a.NextAttemptTime = problemhookv1alpha1.ActionRunning, nil
		a.Attempts++
		a.Message = fmt.Sprintf("Sending, attempt %d", a.Attempts)
		if a.StartTime == nil {
			a.StartTime = &start
		}
	}
	if err := w.write(ctx, ev); err != nil {
		return fmt.Errorf("recording the sends of IntegrationRoute %s action %s before making them: %w", ir.Name, action.Name, err)
	}

	// The sends are recorded as in flight: they go on beside the reconcile,
	// which waits for them at most outcall.AwaitWindow; an answer that comes later
	// wakes the event, and one that comes while the manager stops is
	// recorded by the calls before the manager exits.
	until := time.Now().Add(outcall.AwaitWindow)
	for _, s := range sends {
		a := &ev.Status.Actions[s.run]
		outcall.Begin(ctx, r.calls, sendKey(ev, s.run, a), client.ObjectKeyFromObject(ev), func(ctx context.Context) (sent, error) {
			ctx, cancel := context.WithTimeout(ctx, notify.DefaultTimeout)
			defer cancel()
			res, err := s.Send(ctx, r.Notifier)
			return sent{res: res, pace: s.Pace, masked: secretMask(s.Secrets)}, err
		}, r.lateOutcome(ev, ir, s.run, a.Attempts))
	}
	for _, s := range sends {
		a := &ev.Status.Actions[s.run]
		if value, err, done := outcall.Result(ctx, r.calls, sendKey(ev, s.run, a), until); done {
			r.settleSend(ctx, ev, ir, a, value, err)
		}
	}
	return nil
}

// sent is a send's answer, with the destination whose turns it took.
type sent struct {
	res  notify.Result
	pace string
	// masked are the values of the Secrets the send read: an answer
	// that echoes one is recorded with it masked.
	masked []string
}

// secretMask is what a message that read secrets masks in what it records.
func secretMask(secrets map[string]map[string][]byte) []string {
	data := make([]map[string][]byte, 0, len(secrets))
	for _, d := range secrets {
		data = append(data, d)
	}
	return maskValues(data...)
}

// sendKey names the call of one attempt of one run.
func sendKey(ev *problemhookv1alpha1.ProblemEvent, run int, a *problemhookv1alpha1.ActionStatus) outcall.Key[sent] {
	return outcall.NewKey[sent](ev.UID, fmt.Sprintf("send/%d/%d/%d", run, a.Reruns, a.Attempts))
}

// settleSend records the answer of a send in its run.
func (r *Reconciler) settleSend(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, ir *problemhookv1alpha1.IntegrationRoute, a *problemhookv1alpha1.ActionStatus, s sent, err error) {
	// A service that asked for time gets it from every event's runs.
	if wait := askedFor(err); wait > 0 && s.pace != "" {
		now := r.Now()
		r.pacer.Block(s.pace, now.Add(wait), now)
	}
	r.recordOutcome(ctx, ev, ir, a, s, err)
}

// lateOutcome records, straight into the stored event, the answer of a
// send that came while the manager was stopping, so that the next leader
// finds the message sent, or failed, rather than in flight.
func (r *Reconciler) lateOutcome(ev *problemhookv1alpha1.ProblemEvent, ir *problemhookv1alpha1.IntegrationRoute, run int, attempt int32) func(context.Context, sent, error) {
	key := client.ObjectKeyFromObject(ev)
	return func(ctx context.Context, value sent, sendErr error) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var cur problemhookv1alpha1.ProblemEvent
			if err := r.APIReader.Get(ctx, key, &cur); err != nil {
				return client.IgnoreNotFound(err)
			}
			if run >= len(cur.Status.Actions) || cur.Status.Actions[run].State != problemhookv1alpha1.ActionRunning || cur.Status.Actions[run].Attempts != attempt {
				return nil
			}
			w := newStatusWriter(r.Client, &cur)
			r.settleSend(ctx, &cur, ir, &cur.Status.Actions[run], value, sendErr)
			summarise(&cur)
			return w.write(ctx, &cur)
		})
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Recording a message's outcome while stopping", "ProblemEvent", key)
		}
	}
}

// askedFor is how long a service asked to be left alone: its Retry-After,
// or for a 429 without one a second (Twilio sends one message a second
// from a long code).
func askedFor(err error) time.Duration {
	var e *notify.Error
	switch {
	case !errors.As(err, &e) || !e.Retryable:
		return 0
	case e.RetryAfter > 0:
		return e.RetryAfter
	case e.StatusCode == http.StatusTooManyRequests:
		return time.Second
	}
	return 0
}

// prepare reads the Secrets and renders the templates of one run, as the
// action's kind says. An error that the user must fix is a
// *secretref.Error or an *actionkind.PrepareError.
func (r *Reconciler) prepare(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, p *routing.Problem, ir *problemhookv1alpha1.IntegrationRoute, compiled *routing.Route, action *problemhookv1alpha1.Action, a *problemhookv1alpha1.ActionStatus) (actionkind.Message, error) {
	kind := actionkind.Of(action)
	in := actionkind.Input{
		Reader: r.Client, Namespace: ev.Namespace, Action: action,
		IdempotencyKey: fmt.Sprintf("%s/%s/%s", ev.UID, ir.Name, action.Name),
		RenderWithSecrets: func(field string, values map[string][]byte) (string, error) {
			s, err := compiled.RenderWithSecrets(action.Name, field, p, values)
			if err != nil {
				return "", &actionkind.PrepareError{Msg: err.Error()}
			}
			return s, nil
		},
		Rate: r.DingTalkRate,
	}
	in.Render = func(field string) (string, error) { return in.RenderWithSecrets(field, nil) }
	if to := kind.Recipients(action); to != nil {
		var err error
		if in.Recipient, err = recipient(to, ev.Status.Actions, a); err != nil {
			return actionkind.Message{}, err
		}
	}
	return kind.Prepare(ctx, in)
}

// recipient finds the recipient (a Twilio number) a run is for. Status
// holds only the masked number: the run is the k-th of its action with
// that mask, and its number the k-th of the action's recipients with it.
func recipient(to []string, runs []problemhookv1alpha1.ActionStatus, a *problemhookv1alpha1.ActionStatus) (string, error) {
	k := 0
	for i := range runs {
		if &runs[i] == a {
			break
		}
		if runs[i].Route == a.Route && runs[i].Action == a.Action && runs[i].Recipient == a.Recipient {
			k++
		}
	}
	for _, number := range to {
		if notify.MaskPhone(number) != a.Recipient {
			continue
		}
		if k == 0 {
			return number, nil
		}
		k--
	}
	return "", &actionkind.PrepareError{Msg: fmt.Sprintf("recipient %s is no longer in the action's recipients", a.Recipient)}
}

// recordOutcome records the answer to one send, and when a retryable
// failure leaves attempts, when to try again.
func (r *Reconciler) recordOutcome(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, ir *problemhookv1alpha1.IntegrationRoute, a *problemhookv1alpha1.ActionStatus, s sent, err error) {
	log := ctrl.LoggerFrom(ctx).WithValues("route", a.Route, "action", a.Action, "type", a.Type, "attempt", a.Attempts)
	if a.Recipient != "" {
		log = log.WithValues("recipient", a.Recipient)
	}
	if err == nil {
		metrics.MessageAttempts.WithLabelValues(a.Type, metrics.MessageSent).Inc()
		r.settle(a, problemhookv1alpha1.ActionSucceeded, mask(sentLine(a, s.res), s.masked))
		log.Info("Sent message")
		r.Recorder.Eventf(ev, nil, corev1.EventTypeNormal, "MessageSent", "Send", "IntegrationRoute %s action %s: %s", a.Route, a.Action, a.Message)
		return
	}
	// A service's answer may echo what it was sent, a key included.
	what := mask(err.Error(), s.masked)
	if a.Recipient != "" {
		what = a.Recipient + ": " + what
	}
	retryable, after := notify.IsRetryable(err)
	limit, backoff := ir.RetryPolicy()
	if retryable && a.Attempts <= limit {
		metrics.MessageAttempts.WithLabelValues(a.Type, metrics.MessageRetryable).Inc()
		wait := min(max(backoffAfter(backoff, a.Attempts), after), maxRetryWait)
		next := metav1.NewTime(ceilSecond(r.Now().Add(wait)))
		a.State, a.NextAttemptTime = problemhookv1alpha1.ActionPending, &next
		a.Message = controllers.Truncate(fmt.Sprintf("Attempt %d of %d failed: %s; next attempt at %s", a.Attempts, limit+1, what, next.UTC().Format(time.RFC3339)), 1024)
		log.Info("Sending message failed; will retry", "error", mask(err.Error(), s.masked), "retryAt", next.Time)
		r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "MessageRetrying", "Send", "IntegrationRoute %s action %s: %s", a.Route, a.Action, a.Message)
		return
	}
	metrics.MessageAttempts.WithLabelValues(a.Type, metrics.MessageFailed).Inc()
	msg := "Failed: " + what
	if retryable {
		msg = fmt.Sprintf("Failed after %d attempts: %s", a.Attempts, what)
	}
	r.settle(a, problemhookv1alpha1.ActionFailed, msg)
	log.Info("Sending message failed", "error", mask(err.Error(), s.masked))
	r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "MessageFailed", "Send", "IntegrationRoute %s action %s: %s", a.Route, a.Action, a.Message)
}

// sentLine says in status what a successful send did, in its kind's words.
func sentLine(a *problemhookv1alpha1.ActionStatus, res notify.Result) string {
	if k := actionkind.ByType(a.Type); k != nil {
		return k.SentLine(a.Recipient, res)
	}
	return res.Detail
}
