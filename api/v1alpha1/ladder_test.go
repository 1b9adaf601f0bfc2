package v1alpha1_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// A step's waits are durations the manager can read: a value the schema's
// duration format takes but Go's does not ("1d") would leave the manager
// unable to decode every route of the cluster, so it is refused, as are
// waits past their bounds.
func TestLadderDurationsAreBounded(t *testing.T) {
	ns := newNamespace(t)
	route := func(name string, action map[string]any, retry map[string]any) *unstructured.Unstructured {
		action["name"] = "scale-out"
		action["http"] = map[string]any{"url": "https://hooks.example.com/scale"}
		spec := map[string]any{"actions": []any{action}}
		if retry != nil {
			spec["retry"] = retry
		}
		u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		u.SetAPIVersion(problemhookv1alpha1.GroupVersion.String())
		u.SetKind("IntegrationRoute")
		u.SetNamespace(ns)
		u.SetName(name)
		return u
	}
	for _, tc := range []struct {
		name   string
		action map[string]any
		retry  map[string]any
		want   string
	}{
		{"a delay of minutes", map[string]any{"delay": "5m", "onlyWhileOpen": true}, nil, ""},
		{"a delay in days", map[string]any{"delay": "1d"}, nil, "spec.actions[0].delay"},
		{"a delay past a day", map[string]any{"delay": "25h"}, nil, "delay must be a duration from 0s to 24h, such as 5m"},
		{"a negative delay", map[string]any{"delay": "-5m"}, nil, "spec.actions[0].delay"},
		{"a delay of fractions", map[string]any{"delay": "1.5h"}, nil, ""},
		{"an approval", map[string]any{"approval": map[string]any{"required": true, "timeout": "2h"}}, nil, ""},
		{"an approval's timeout past a week", map[string]any{"approval": map[string]any{"required": true, "timeout": "169h"}}, nil,
			"timeout must be a duration from 1s to 168h, such as 30m"},
		{"a backoff in days", map[string]any{}, map[string]any{"backoff": "1d"}, "spec.retry.backoff"},
		{"a backoff past an hour", map[string]any{}, map[string]any{"backoff": "2h"}, "backoff must be a duration from 0s to 1h, such as 10s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectRefused(t, route(fmt.Sprintf("r%d", len(tc.name)), tc.action, tc.retry), tc.want)
		})
	}
}

// An approval defaults its timeout to 30 minutes.
func TestApprovalTimeoutDefault(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ir := &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ladder"},
		Spec: problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{{Name: "page",
			HTTP:     &problemhookv1alpha1.HTTPAction{URL: "https://hooks.example.com/page"},
			Approval: &problemhookv1alpha1.ApprovalPolicy{Required: true}}}}}
	g.Expect(k8s.Create(context.Background(), ir)).To(Succeed())
	g.Expect(ir.Spec.Actions[0].Approval.Timeout.Duration.String()).To(Equal("30m0s"))
}

// Only a user the API server authorizes for the verb approve on
// problemevents may approve or reject a step, and only in their own name;
// the right to edit events is not the right to approve them.
func TestApprovingNeedsItsOwnVerb(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	edit := rbacv1.PolicyRule{APIGroups: []string{"problemhook.io"}, Resources: []string{"problemevents"}, Verbs: []string{"get", "update", "patch"}}
	grant(t, ns, "bob", "problemevent-editor", edit)
	grant(t, ns, "carol", "on-call", edit, rbacv1.PolicyRule{APIGroups: []string{"problemhook.io"}, Resources: []string{"problemevents"}, Verbs: []string{"approve"}})

	ev := newEvent(t, ns)
	decide := func(c client.Client, key, byKey, by string) error {
		return annotateDryRun(c, ev, key, "scale-out", byKey, by)
	}
	approve := func(c client.Client, by string) error {
		return decide(c, problemhookv1alpha1.AnnotationApprove, problemhookv1alpha1.AnnotationApproveBy, by)
	}
	reject := func(c client.Client, by string) error {
		return decide(c, problemhookv1alpha1.AnnotationReject, problemhookv1alpha1.AnnotationRejectBy, by)
	}
	bob, carol := as(t, "bob"), as(t, "carol")
	// The policy takes effect a moment after it is created.
	g.Eventually(func() error { return approve(bob, "bob") }).Should(MatchError(
		`problemevents.problemhook.io "ev" is forbidden: ValidatingAdmissionPolicy 'problemhook-problemevent-approve' with binding 'problemhook-problemevent-approve' denied request: ` +
			`bob may not approve problemevents in namespace ` + ns + `: setting problemhook.io/approve needs the verb approve on problemevents.problemhook.io there`))
	g.Expect(reject(bob, "bob")).To(MatchError(ContainSubstring(
		"bob may not approve problemevents in namespace " + ns + ": setting problemhook.io/reject needs the verb approve")))
	g.Expect(approve(carol, "carol")).To(Succeed())
	g.Expect(reject(carol, "carol")).To(Succeed())
	g.Expect(approve(carol, "dave")).To(MatchError(ContainSubstring(
		"problemhook.io/approve-by must name who decides, as the API server authenticated them: carol")))
	g.Expect(reject(carol, "")).To(MatchError(ContainSubstring(
		"problemhook.io/reject-by must name who decides, as the API server authenticated them: carol")))

	// An edit that leaves a decision as it was is not deciding again.
	var cur problemhookv1alpha1.ProblemEvent
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ev), &cur)).To(Succeed())
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, problemhookv1alpha1.AnnotationApprove, "scale-out")
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, problemhookv1alpha1.AnnotationApproveBy, "carol")
	g.Expect(carol.Update(ctx, &cur)).To(Succeed())
	g.Expect(bob.Get(ctx, client.ObjectKeyFromObject(ev), &cur)).To(Succeed())
	metav1.SetMetaDataLabel(&cur.ObjectMeta, "team", "shop")
	g.Expect(bob.Update(ctx, &cur)).To(Succeed())
	// Removing it, as the manager does once it acted, needs no verb.
	delete(cur.Annotations, problemhookv1alpha1.AnnotationApprove)
	delete(cur.Annotations, problemhookv1alpha1.AnnotationApproveBy)
	g.Expect(bob.Update(ctx, &cur)).To(Succeed())
}
