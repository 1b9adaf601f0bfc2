package problemevent

import (
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// How the runs of one action read in the comment.
func TestOutcomeSummary(t *testing.T) {
	const mutedMsg = "Muted until 2026-12-08T05:00:00Z by the route's spec.muteTimeIntervals[0]: nothing was created or sent"
	code := func(c int32) *int32 { return &c }
	one := func(state problemhookv1alpha1.ActionState, exit *int32, msg string) problemhookv1alpha1.ActionStatus {
		a := run("r", "a", state)
		a.ExitCode, a.Message = exit, msg
		return a
	}
	entity := func(id string, state problemhookv1alpha1.ActionState, exit *int32, msg string) problemhookv1alpha1.ActionStatus {
		a := one(state, exit, msg)
		a.Entity = id
		return a
	}
	for _, tc := range []struct {
		name string
		runs []problemhookv1alpha1.ActionStatus
		want string
	}{
		{"succeeded", []problemhookv1alpha1.ActionStatus{one(succeeded, code(0), "Job x succeeded")}, "succeeded"},
		{"stopped", []problemhookv1alpha1.ActionStatus{one(stopped, nil, "Stopped")}, "stopped (problem resolved)"},
		{"failed with an exit code", []problemhookv1alpha1.ActionStatus{one(failed, code(3), "Job x failed")}, "failed (exit code 3)"},
		{"failed without one", []problemhookv1alpha1.ActionStatus{one(failed, nil, "the API server refused the Job")}, "failed (the API server refused the Job)"},
		{"fan-out, all succeeded", []problemhookv1alpha1.ActionStatus{entity("H-1", succeeded, code(0), ""), entity("H-2", succeeded, code(0), "")}, "2 succeeded"},
		{"fan-out with exit codes", []problemhookv1alpha1.ActionStatus{entity("H-1", succeeded, code(0), ""), entity("H-2", failed, code(3), ""), entity("H-3", failed, code(4), "")},
			"1 succeeded, 2 failed (exit codes 3, 4)"},
		{"fan-out, one code", []problemhookv1alpha1.ActionStatus{entity("H-1", failed, code(1), ""), entity("H-2", stopped, nil, "")}, "1 failed (exit code 1), 1 stopped (problem resolved)"},
		{"muted", []problemhookv1alpha1.ActionStatus{one(problemhookv1alpha1.ActionMuted, nil, mutedMsg)},
			"muted until 2026-12-08T05:00:00Z by the route's spec.muteTimeIntervals[0]"},
		{"fan-out, muted", []problemhookv1alpha1.ActionStatus{entity("H-1", problemhookv1alpha1.ActionMuted, nil, mutedMsg), entity("H-2", problemhookv1alpha1.ActionMuted, nil, mutedMsg)},
			"2 muted until 2026-12-08T05:00:00Z by the route's spec.muteTimeIntervals[0]"},
		{"skipped, closed", []problemhookv1alpha1.ActionStatus{one(problemhookv1alpha1.ActionSkipped, nil,
			"Skipped: the problem closed at 2026-12-06T12:04:10Z in Dynatrace before this step; nothing was created or sent")},
			"skipped (the problem closed at 2026-12-06T12:04:10Z in Dynatrace before this step)"},
		{"skipped, timed out", []problemhookv1alpha1.ActionStatus{one(problemhookv1alpha1.ActionSkipped, nil,
			"Skipped: approval timed out after 30m0s; nobody approved or rejected it, and nothing was created or sent")}, "skipped (approval timed out after 30m0s)"},
		{"fan-out, rejected", []problemhookv1alpha1.ActionStatus{entity("H-1", problemhookv1alpha1.ActionSkipped, nil, "Skipped: rejected by alice; nothing was created or sent"),
			entity("H-2", problemhookv1alpha1.ActionSkipped, nil, "Skipped: rejected by alice; nothing was created or sent")}, "2 skipped (rejected by alice)"},
		{"fan-out failed before running", []problemhookv1alpha1.ActionStatus{entity("H-1", failed, nil, "Job H-1 was deleted before it ended")}, "1 failed (Job H-1 was deleted before it ended)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(outcomeSummary(tc.runs)).To(Equal(tc.want))
		})
	}
}

// The comment has a line per Job action, a line per message recipient,
// only for the routes that comment, and ends with the event's marker.
func TestCommentText(t *testing.T) {
	g := NewWithT(t)
	ev := &problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dynatrace-1a2b-open"}}
	job := func(entity string, state problemhookv1alpha1.ActionState) problemhookv1alpha1.ActionStatus {
		a := run("legacy-incident", "incident", state)
		a.Entity = entity
		return a
	}
	sms := func(recipient string) problemhookv1alpha1.ActionStatus {
		a := run("legacy-incident", "oncall-sms", succeeded)
		a.Type, a.Recipient, a.Message = problemhookv1alpha1.ActionTypeTwilio, recipient, "Mobile number has been notified: "+recipient
		return a
	}
	quiet := run("quiet", "job", succeeded)
	ev.Status.Actions = []problemhookv1alpha1.ActionStatus{job("HOST-1", succeeded), job("HOST-2", succeeded), sms("+49*****0001"), sms("+49*****0002"), quiet}

	g.Expect(commentText(ev, map[string]bool{"legacy-incident": true})).To(Equal(
		"problemhook ran Job legacy-incident/incident for 2 impacted entities: 2 succeeded\n" +
			"problemhook Twilio legacy-incident/oncall-sms: Mobile number has been notified: +49*****0001\n" +
			"problemhook Twilio legacy-incident/oncall-sms: Mobile number has been notified: +49*****0002\n" +
			"ProblemEvent shop/dynatrace-1a2b-open"))

	// What a Job said is quoted under its action's line, per entity for a
	// fan-out; output too long for the comment keeps its end.
	failed := job("", problemhookv1alpha1.ActionFailed)
	failed.ExitCode, failed.Output = new(int32(3)), "checking disk\nno space left on /var"
	fanned := job("HOST-1", succeeded)
	fanned.Output = "restarted"
	ev.Status.Actions = []problemhookv1alpha1.ActionStatus{failed, fanned}
	ev.Status.Actions[1].Action = "restart"
	g.Expect(commentText(ev, map[string]bool{"legacy-incident": true})).To(Equal(
		"problemhook ran Job legacy-incident/incident: failed (exit code 3)\n" +
			"> checking disk\n> no space left on /var\n" +
			"problemhook ran Job legacy-incident/restart for 1 impacted entity: 1 succeeded\n" +
			"> HOST-1:\n> restarted\n" +
			"ProblemEvent shop/dynatrace-1a2b-open"))
	var long []string
	for i := range 400 {
		long = append(long, fmt.Sprintf("line %03d", i))
	}
	failed.Output = strings.Join(long, "\n")
	ev.Status.Actions = []problemhookv1alpha1.ActionStatus{failed, sms("+49*****0001")}
	text := commentText(ev, map[string]bool{"legacy-incident": true})
	g.Expect(len(text)).To(BeNumerically("<=", maxCommentBytes+200))
	g.Expect(text).To(ContainSubstring("problemhook ran Job legacy-incident/incident: failed (exit code 3)\n…\n> line "))
	g.Expect(text).To(HaveSuffix("> line 399\nproblemhook Twilio legacy-incident/oncall-sms: Mobile number has been notified: +49*****0001\nProblemEvent shop/dynatrace-1a2b-open"))

	// Past the bound, the comment is cut after the line that passed it, and still ends with its marker.
	ev.Status.Actions = nil
	for range 40 {
		a := sms("+49*****0001")
		a.Message = strings.Repeat("m", 300)
		ev.Status.Actions = append(ev.Status.Actions, a)
	}
	text = commentText(ev, map[string]bool{"legacy-incident": true})
	g.Expect(len(text)).To(BeNumerically("<=", maxCommentBytes+400), "past the bound by one line at most")
	g.Expect(text).To(HaveSuffix("…\nProblemEvent shop/dynatrace-1a2b-open"))
}
