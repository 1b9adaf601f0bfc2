package v1alpha1_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// Editing an event is not rerunning it: asking for a rerun needs the
// verb rerun on problemevents, and whoever asks names themselves as the
// API server authenticated them.
func TestRerunNeedsItsOwnVerb(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	edit := rbacv1.PolicyRule{APIGroups: []string{"problemhook.io"}, Resources: []string{"problemevents"}, Verbs: []string{"get", "update", "patch"}}
	grant(t, ns, "bob", "problemevent-editor", edit)
	grant(t, ns, "carol", "on-call", edit, rbacv1.PolicyRule{APIGroups: []string{"problemhook.io"}, Resources: []string{"problemevents"}, Verbs: []string{"rerun"}})

	ev := newEvent(t, ns)
	ask := func(c client.Client, by string) error {
		return annotateDryRun(c, ev, problemhookv1alpha1.AnnotationRerun, "run", problemhookv1alpha1.AnnotationRerunBy, by)
	}
	bob, carol := as(t, "bob"), as(t, "carol")
	// The policy takes effect a moment after it is created.
	g.Eventually(func() error { return ask(bob, "bob") }).Should(MatchError(
		`problemevents.problemhook.io "ev" is forbidden: ValidatingAdmissionPolicy 'problemhook-problemevent-rerun' with binding 'problemhook-problemevent-rerun' denied request: ` +
			`bob may not rerun problemevents in namespace ` + ns + `: setting problemhook.io/rerun needs the verb rerun on problemevents.problemhook.io there`))
	g.Expect(ask(carol, "carol")).To(Succeed())
	g.Expect(ask(carol, "dave")).To(MatchError(ContainSubstring(
		"problemhook.io/rerun-by must name who asks, as the API server authenticated them: carol")))

	// An edit that leaves a request as it was is not asking again.
	var cur problemhookv1alpha1.ProblemEvent
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ev), &cur)).To(Succeed())
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, problemhookv1alpha1.AnnotationRerun, "run")
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, problemhookv1alpha1.AnnotationRerunBy, "carol")
	g.Expect(carol.Update(ctx, &cur)).To(Succeed())
	g.Expect(bob.Get(ctx, client.ObjectKeyFromObject(ev), &cur)).To(Succeed())
	metav1.SetMetaDataLabel(&cur.ObjectMeta, "team", "shop")
	g.Expect(bob.Update(ctx, &cur)).To(Succeed())
}

// newEvent stores a ProblemEvent in ns for a person to annotate.
func newEvent(t *testing.T, ns string) *problemhookv1alpha1.ProblemEvent {
	t.Helper()
	ev := &problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ev"}, Spec: problemhookv1alpha1.ProblemEventSpec{
		Source: problemhookv1alpha1.FormatDynatrace, ProblemID: "-1_1V2", State: problemhookv1alpha1.StateOpen, Target: "dynatrace",
		ReceivedAt: metav1.Now(),
	}}
	if err := k8s.Create(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// annotateDryRun sets annotations (key, value, key, value, ...; an empty
// value is left out) on ev as c, in a server-side dry run: what admission
// says, and nothing stored.
func annotateDryRun(c client.Client, ev *problemhookv1alpha1.ProblemEvent, kv ...string) error {
	ctx := context.Background()
	var cur problemhookv1alpha1.ProblemEvent
	if err := c.Get(ctx, client.ObjectKeyFromObject(ev), &cur); err != nil {
		return err
	}
	patch := client.MergeFrom(cur.DeepCopy())
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			metav1.SetMetaDataAnnotation(&cur.ObjectMeta, kv[i], kv[i+1])
		}
	}
	return c.Patch(ctx, &cur, patch, client.DryRunAll)
}
