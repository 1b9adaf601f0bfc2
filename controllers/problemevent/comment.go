package problemevent

// The comment: once every action of an event has settled, one comment on
// the Dynatrace problem that says what ran and how it ended.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/actionkind"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/outcall"
	"github.com/problemhook/problemhook/internal/secretref"
)

// CommentContext is the context of every comment problemhook posts; with
// the event's name in the text it finds its own comments again.
const CommentContext = "problemhook"

// comment posts the outcome of the event's actions to the Dynatrace
// problem, once. Before posting it looks for a comment of its own on the
// problem, which a restart between posting and recording would have left.
func (r *Reconciler) comment(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, target *problemhookv1alpha1.NotificationTarget) error {
	if ev.Status.Comment != nil || target == nil || target.Spec.Dynatrace == nil ||
		!ptr.Deref(target.Spec.Dynatrace.Comments, true) || !ev.Spec.Source.IsDynatrace() || ev.Spec.Test {
		return nil
	}
	commenting, err := r.commentingRoutes(ctx, ev)
	if err != nil || len(commenting) == 0 {
		return err
	}
	text := commentText(ev, commenting)
	c, err := r.Dynatrace.For(ctx, r.Client, target)
	if err != nil {
		var refErr *secretref.Error
		if errors.As(err, &refErr) {
			r.commentFailed(ev, err)
			return nil
		}
		return err
	}
	marker, problemID := commentMarker(ev), ev.Spec.ProblemID
	cm, err, done := outcall.Await(ctx, r.calls, outcall.NewKey[*dynatrace.Comment](ev.UID, "comment"), client.ObjectKeyFromObject(ev), func(ctx context.Context) (*dynatrace.Comment, error) {
		ctx, cancel := context.WithTimeout(ctx, dtconn.CallTimeout)
		defer cancel()
		// Paging stops at the first comment of its own.
		found, err := c.FindComment(ctx, problemID, func(cm *dynatrace.Comment) bool {
			return cm.Context == CommentContext && strings.Contains(cm.Content, marker)
		})
		if err != nil || found != nil {
			return found, err
		}
		return nil, c.PostComment(ctx, problemID, dynatrace.CommentRequest{Message: text, Context: CommentContext})
	})
	if !done {
		return errCallsPending
	}
	if cm != nil && err == nil {
		ev.Status.Comment = &problemhookv1alpha1.CommentStatus{Posted: true, Time: new(metav1.NewTime(time.UnixMilli(cm.CreatedAtTimestamp))), Message: controllers.Truncate(cm.Content, 4096)}
		return nil
	}
	if err != nil {
		if dynatrace.IsRetryable(err) {
			r.Recorder.Eventf(ev, target, corev1.EventTypeWarning, "CommentFailed", "Comment", "Posting the comment to Dynatrace, will retry: %v", err)
			return fmt.Errorf("commenting on problem %s: %w", ev.Spec.ProblemID, err)
		}
		r.commentFailed(ev, err)
		return nil
	}
	now := metav1.NewTime(r.Now())
	ev.Status.Comment = &problemhookv1alpha1.CommentStatus{Posted: true, Time: &now, Message: controllers.Truncate(text, 4096)}
	ctrl.LoggerFrom(ctx).Info("Posted comment to Dynatrace problem", "problemID", ev.Spec.ProblemID)
	r.Recorder.Eventf(ev, target, corev1.EventTypeNormal, "CommentPosted", "Comment", "Posted the outcome to Dynatrace problem %s", ev.Spec.ProblemID)
	return nil
}

// commentFailed records a comment that cannot be posted until the user
// fixes something (token, scope, problem id): it is not retried.
func (r *Reconciler) commentFailed(ev *problemhookv1alpha1.ProblemEvent, err error) {
	msg := controllers.Truncate("Not posted: "+err.Error(), 4096)
	ev.Status.Comment = &problemhookv1alpha1.CommentStatus{Message: msg}
	r.Recorder.Eventf(ev, nil, corev1.EventTypeWarning, "CommentFailed", "Comment", "%s", msg)
}

// commentingRoutes names the routes of the event's actions that want their
// results commented back. A route deleted since keeps the default: yes.
func (r *Reconciler) commentingRoutes(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent) (map[string]bool, error) {
	out := map[string]bool{}
	for _, group := range groupActions(ev.Status.Actions) {
		ir, err := r.integrationRoute(ctx, ev.Namespace, group.route)
		if err != nil {
			return nil, err
		}
		if ir == nil || ir.Spec.Comment == nil || ptr.Deref(ir.Spec.Comment.Enabled, true) {
			out[group.route] = true
		}
	}
	return out, nil
}

// commentMarker ends every comment problemhook posts for an event, so that
// a restart between posting and recording finds the comment instead of
// posting it again.
func commentMarker(ev *problemhookv1alpha1.ProblemEvent) string {
	return "ProblemEvent " + ev.Namespace + "/" + ev.Name
}

// commentText says, per action of the commenting routes, what ran and how
// it ended, e.g. "problemhook ran Job legacy-incident/incident for 2
// impacted entities: 2 succeeded".
func commentText(ev *problemhookv1alpha1.ProblemEvent, commenting map[string]bool) string {
	type key struct{ route, action string }
	var (
		order  []key
		groups = map[key][]problemhookv1alpha1.ActionStatus{}
	)
	for _, a := range ev.Status.Actions {
		if !commenting[a.Route] {
			continue
		}
		k := key{a.Route, a.Action}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], a)
	}
	// Each line is checked against the bound as it is written: one message
	// action can have twenty recipients, each a line.
	var lines []string
	quoted := map[int]bool{} // indexes of lines that quote a Job's output
	for _, k := range order {
		runs := groups[k]
		if !actionkind.IsMessage(runs[0].Type) {
			lines = append(lines, jobLine(k.route, k.action, runs, omittedRuns(ev, k.route, k.action)))
			// What each Job said, under the action's line.
			for _, a := range runs {
				if a.Output == "" {
					continue
				}
				quoted[len(lines)] = true
				lines = append(lines, quote(a))
			}
			continue
		}
		// A message is reported per recipient, as the old webhook did:
		// "Mobile number has been notified: +49*****1234".
		for _, a := range runs {
			lines = append(lines, fmt.Sprintf("problemhook %s %s/%s: %s%s\n", a.Type, k.route, k.action, controllers.Truncate(a.Message, 300), approvedBy([]problemhookv1alpha1.ActionStatus{a})))
		}
	}
	// An action none of whose runs the event holds still has its line.
	for _, o := range ev.Status.Omitted {
		if _, ok := groups[key{o.Route, o.Action}]; !ok && commenting[o.Route] {
			lines = append(lines, fmt.Sprintf("problemhook ran none of the %d runs of %s/%s: %s\n", o.Asked, o.Route, o.Action, o.Reason))
		}
	}
	// Output gives way to the lines that say how runs ended: each quote
	// gets what the lines after it leave.
	after := make([]int, len(lines)+1)
	for i := len(lines) - 1; i >= 0; i-- {
		after[i] = after[i+1]
		if !quoted[i] {
			after[i] += len(lines[i])
		}
	}
	var b strings.Builder
	for i, line := range lines {
		// Output that does not fit keeps its end, where a script says
		// how it ended.
		if left := maxCommentBytes - b.Len() - after[i+1]; quoted[i] && len(line) > left {
			if left < 200 {
				continue
			}
			line = tail([]byte(line), left-1) + "\n"
		}
		b.WriteString(line)
		if b.Len() > maxCommentBytes {
			b.WriteString("…\n")
			break
		}
	}
	b.WriteString(commentMarker(ev))
	return b.String()
}

// quote quotes a run's output, one "> " line for each of its lines, under
// the entity it ran for when there is one.
func quote(a problemhookv1alpha1.ActionStatus) string {
	var b strings.Builder
	if a.Entity != "" {
		b.WriteString("> " + a.Entity + ":\n")
	}
	for _, line := range strings.Split(a.Output, "\n") {
		b.WriteString("> " + line + "\n")
	}
	return b.String()
}

// jobLine says how the Jobs of one action ended, and how many it was
// asked for that the event does not hold.
func jobLine(route, action string, runs []problemhookv1alpha1.ActionStatus, omitted *problemhookv1alpha1.OmittedRuns) string {
	line := fmt.Sprintf("problemhook ran %s %s/%s", runs[0].Type, route, action)
	if runs[0].Entity != "" {
		noun := "entities"
		if len(runs) == 1 && omitted == nil {
			noun = "entity"
		}
		if omitted != nil {
			line += fmt.Sprintf(" for %d of %d impacted %s", len(runs), omitted.Asked, noun)
		} else {
			line += fmt.Sprintf(" for %d impacted %s", len(runs), noun)
		}
	}
	line += ": " + outcomeSummary(runs) + approvedBy(runs)
	if omitted != nil {
		line += fmt.Sprintf("; %d not run: %s", omitted.Omitted, omitted.Reason)
	}
	return line + "\n"
}

// omittedRuns finds what the event omitted of an action, or nil.
func omittedRuns(ev *problemhookv1alpha1.ProblemEvent, route, action string) *problemhookv1alpha1.OmittedRuns {
	for i := range ev.Status.Omitted {
		if o := &ev.Status.Omitted[i]; o.Route == route && o.Action == action {
			return o
		}
	}
	return nil
}

// maxCommentBytes bounds the comment, within what status.comment can hold.
const maxCommentBytes = 3500

// outcomeSummary says how the runs of one action ended: "succeeded" or
// "failed (exit code 3)" for a single run, counts with the failed runs'
// exit codes for a fan-out.
func outcomeSummary(runs []problemhookv1alpha1.ActionStatus) string {
	if len(runs) == 1 && runs[0].Entity == "" {
		a := runs[0]
		switch a.State {
		case problemhookv1alpha1.ActionSucceeded:
			return "succeeded"
		case problemhookv1alpha1.ActionStopped:
			return "stopped (problem resolved)"
		case problemhookv1alpha1.ActionMuted:
			return mutedWhy(a.Message)
		case problemhookv1alpha1.ActionSkipped:
			return "skipped (" + skippedWhy(a.Message) + ")"
		}
		if a.ExitCode != nil {
			return fmt.Sprintf("failed (exit code %d)", *a.ExitCode)
		}
		return "failed (" + controllers.Truncate(a.Message, 200) + ")"
	}
	n := countStates(runs)
	succeeded, failed, stopped := n[problemhookv1alpha1.ActionSucceeded], n[problemhookv1alpha1.ActionFailed], n[problemhookv1alpha1.ActionStopped]
	var codes, reasons []string
	for _, a := range runs {
		switch {
		case a.State != problemhookv1alpha1.ActionFailed:
		case a.ExitCode != nil:
			codes = append(codes, fmt.Sprint(*a.ExitCode))
		case a.Message != "":
			reasons = append(reasons, a.Message)
		}
	}
	var parts []string
	if succeeded > 0 {
		parts = append(parts, fmt.Sprintf("%d succeeded", succeeded))
	}
	if failed > 0 {
		f := fmt.Sprintf("%d failed", failed)
		switch {
		case len(codes) == 1:
			f += " (exit code " + codes[0] + ")"
		case len(codes) > 1:
			f += " (exit codes " + strings.Join(codes, ", ") + ")"
		case len(reasons) > 0:
			f += " (" + controllers.Truncate(reasons[0], 200) + ")"
		}
		parts = append(parts, f)
	}
	if stopped > 0 {
		parts = append(parts, fmt.Sprintf("%d stopped (problem resolved)", stopped))
	}
	if muted := n[problemhookv1alpha1.ActionMuted]; muted > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", muted, mutedWhy(runs[0].Message)))
	}
	if skipped := n[problemhookv1alpha1.ActionSkipped]; skipped > 0 {
		i := slices.IndexFunc(runs, func(a problemhookv1alpha1.ActionStatus) bool { return a.State == problemhookv1alpha1.ActionSkipped })
		parts = append(parts, fmt.Sprintf("%d skipped (%s)", skipped, skippedWhy(runs[i].Message)))
	}
	return strings.Join(parts, ", ")
}

// skippedWhy is what a skipped run's message says of why, for a comment:
// "rejected by alice", "approval timed out after 30m0s".
func skippedWhy(msg string) string {
	why := strings.TrimPrefix(msg, "Skipped: ")
	why, _, _ = strings.Cut(why, "; nothing was created or sent")
	why, _, _ = strings.Cut(why, "; nobody approved or rejected it")
	return why
}

// approvedBy says who approved the runs, for a comment: " (approved by
// alice)", or "" when none needed approval.
func approvedBy(runs []problemhookv1alpha1.ActionStatus) string {
	for _, a := range runs {
		if a.Approval != nil && a.Approval.Decision == problemhookv1alpha1.ApprovalApproved {
			return " (approved by " + a.Approval.By + ")"
		}
	}
	return ""
}

// mutedWhy is what a muted run's message says of its mute, for a comment:
// "muted until 2026-12-08T05:00:00Z by the route's spec.muteTimeIntervals[0]".
func mutedWhy(msg string) string {
	why, _, _ := strings.Cut(msg, ": nothing was created or sent")
	if why == "" {
		return "muted"
	}
	return strings.ToLower(why[:1]) + why[1:]
}
