package problemevent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A Job's outcome is read from its conditions; it is not done while
// neither Complete nor Failed is true.
func TestJobOutcome(t *testing.T) {
	cond := func(typ batchv1.JobConditionType, status corev1.ConditionStatus, reason string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: status, Reason: reason, Message: reason + " message"}
	}
	for _, tc := range []struct {
		name            string
		conditions      []batchv1.JobCondition
		done, succeeded bool
		reason          string
	}{
		{"running", nil, false, false, ""},
		{"suspended", []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionTrue, "Suspended")}, false, false, ""},
		{"complete", []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, "Met"), cond(batchv1.JobComplete, corev1.ConditionTrue, "")}, true, true, ""},
		{"failed", []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue, "BackoffLimitExceeded"), cond(batchv1.JobFailed, corev1.ConditionTrue, "BackoffLimitExceeded")}, true, false, "BackoffLimitExceeded"},
		{"failed condition not true", []batchv1.JobCondition{cond(batchv1.JobFailed, corev1.ConditionFalse, "DeadlineExceeded")}, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			done, succeeded, reason, msg := jobOutcome(&batchv1.Job{Status: batchv1.JobStatus{Conditions: tc.conditions}})
			g.Expect([]any{done, succeeded, reason}).To(Equal([]any{tc.done, tc.succeeded, tc.reason}))
			if tc.reason != "" {
				g.Expect(msg).To(Equal(tc.reason + " message"))
			}
		})
	}
}

// Attempts are the Pods a Job has run; a Job without Pods yet is on its first.
func TestJobAttempts(t *testing.T) {
	for _, tc := range []struct {
		status batchv1.JobStatus
		want   int32
	}{
		{batchv1.JobStatus{}, 1},
		{batchv1.JobStatus{Active: 1}, 1},
		{batchv1.JobStatus{Failed: 2, Active: 1}, 3},
		{batchv1.JobStatus{Failed: 5, Succeeded: 1}, 6},
	} {
		NewWithT(t).Expect(jobAttempts(&batchv1.Job{Status: tc.status})).To(Equal(tc.want), "%+v", tc.status)
	}
}

// The exit code is the last terminated container's, and its log is the one
// kept; at the same time a failure wins over a success; no terminated
// container, no exit code.
func TestLastTerminated(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	pods := func(states ...[]corev1.ContainerState) []corev1.Pod {
		var ps []corev1.Pod
		for i, ss := range states {
			p := corev1.Pod{}
			p.Name = fmt.Sprintf("p%d", i)
			for j, s := range ss {
				p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: fmt.Sprintf("c%d", j), State: s})
			}
			ps = append(ps, p)
		}
		return ps
	}
	cs := func(s ...corev1.ContainerState) []corev1.ContainerState { return s }
	ended := func(code int32, at time.Duration) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(t0.Add(at))}}
	}
	runningState := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	for _, tc := range []struct {
		name  string
		pods  []corev1.Pod
		where string
		code  int32
		found bool
	}{
		{"no Pods", nil, "/", 0, false},
		{"still running", pods(cs(runningState)), "/", 0, false},
		{"one success", pods(cs(ended(0, 0))), "p0/c0", 0, true},
		{"retried: the last Pod counts", pods(cs(ended(3, 0)), cs(ended(0, time.Minute))), "p1/c0", 0, true},
		{"retried and failed again", pods(cs(ended(0, 0)), cs(ended(7, time.Minute))), "p1/c0", 7, true},
		{"a sidecar's success does not hide a failure at the same time", pods(cs(ended(0, 0), ended(2, 0))), "p0/c1", 2, true},
		{"the first failure at the same time stays", pods(cs(ended(2, 0), ended(0, 0), ended(9, 0))), "p0/c0", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod, container, code, found := lastTerminated(tc.pods)
			NewWithT(t).Expect([]any{pod + "/" + container, code, found}).To(Equal([]any{tc.where, tc.code, tc.found}))
		})
	}
}

// A run keeps the end of its log: whole lines within the bound, valid
// UTF-8, a cut marked; Secret values masked, the longest first.
func TestOutputTailAndMask(t *testing.T) {
	g := NewWithT(t)
	var log strings.Builder
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&log, "line %02d\n", i)
	}
	g.Expect(tail([]byte(log.String()), 2048)).To(Equal(strings.TrimSuffix(log.String(), "\n")))
	kept := tail([]byte(log.String()), 40)
	g.Expect(kept).To(Equal("…\nline 37\nline 38\nline 39\nline 40"))
	g.Expect(len(kept)).To(BeNumerically("<=", 40))
	g.Expect(tail([]byte("ab\n\xff\xfe€€€€"), 10)).To(Equal("…\n€€"), "cut inside a rune, the rune goes")
	g.Expect(mask("token=s3cr3t-and-more user=s3cr3t pin=12", []string{"s3cr3t-and-more", "s3cr3t", "12"})).
		To(Equal("token=[masked] user=[masked] pin=[masked]"))
}
