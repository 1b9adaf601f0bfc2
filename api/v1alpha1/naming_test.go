package v1alpha1_test

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// Event names: every delivery of one notification gets the same name; an
// OPEN and a RESOLVED of one occurrence of a problem pair by it; a reopened
// problem is a new occurrence.
func TestEventNames(t *testing.T) {
	target := &problemhookv1alpha1.NotificationTarget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dynatrace", UID: "uid-1"}}
	name := func(problemID, reopenedAt string, state problemhookv1alpha1.ProblemState) string {
		return problemhookv1alpha1.NewProblemEvent(target, &problemhookv1alpha1.ProblemEventSpec{ProblemID: problemID, ReopenedAt: reopenedAt, State: state}).Name
	}
	g := NewWithT(t)
	open := name("P1", "", problemhookv1alpha1.StateOpen)
	g.Expect(open).To(MatchRegexp(`^dynatrace-[0-9a-f]{16}-open$`))
	g.Expect(name("P1", "", problemhookv1alpha1.StateOpen)).To(Equal(open), "a repeated delivery")
	g.Expect(name("P1", "", problemhookv1alpha1.StateResolved)).To(Equal(open[:len(open)-len("open")] + "resolved"))
	g.Expect(name("P2", "", problemhookv1alpha1.StateOpen)).NotTo(Equal(open))

	reopened := name("P1", "2025-04-23T11:00:00Z", problemhookv1alpha1.StateOpen)
	g.Expect(reopened).NotTo(Equal(open), "a reopened problem is recorded anew")
	g.Expect(name("P1", "2025-04-23T11:00:00Z", problemhookv1alpha1.StateResolved)).To(Equal(reopened[:len(reopened)-len("open")] + "resolved"))
	g.Expect(name("P1", "2025-04-23T12:00:00Z", problemhookv1alpha1.StateOpen)).NotTo(Equal(reopened))

	ev := problemhookv1alpha1.NewProblemEvent(target, &problemhookv1alpha1.ProblemEventSpec{ProblemID: "P1", ReopenedAt: "2025-04-23T11:00:00Z", State: problemhookv1alpha1.StateOpen})
	g.Expect(ev.Labels).To(HaveKeyWithValue(problemhookv1alpha1.LabelProblemID, problemhookv1alpha1.ProblemIDHash("P1")), "every occurrence shares the problem's label")
	g.Expect(ev.OwnerReferences).To(ConsistOf(HaveField("UID", target.UID)))
	g.Expect(target.GetWebhookPath()).To(Equal("/hooks/shop/dynatrace"))
}
