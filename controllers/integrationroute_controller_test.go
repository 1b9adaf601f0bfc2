package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// routeReady waits for the route's Ready condition to have status and
// reason, and returns its message.
func routeReady(t *testing.T, ir *problemhookv1alpha1.IntegrationRoute, status metav1.ConditionStatus, reason string) string {
	t.Helper()
	var msg string
	NewWithT(t).Eventually(func(g Gomega) {
		var got problemhookv1alpha1.IntegrationRoute
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(ir), &got)).To(Succeed())
		c := meta.FindStatusCondition(got.Status.Conditions, problemhookv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(c.Status).To(Equal(status))
		g.Expect(c.Reason).To(Equal(reason))
		msg = c.Message
	}).WithTimeout(10 * time.Second).Should(Succeed())
	return msg
}

func TestIntegrationRouteReady(t *testing.T) {
	ns := newNamespace(t)
	sms := func(secret string) problemhookv1alpha1.Action {
		return problemhookv1alpha1.Action{Name: "sms", Twilio: &problemhookv1alpha1.TwilioAction{
			CredentialsSecretRef: problemhookv1alpha1.LocalObjectReference{Name: secret}, From: "+18652699000", To: []string{"+4917000000"}, Body: "{{.Title}}",
		}}
	}
	type testCase struct {
		name    string
		match   problemhookv1alpha1.RouteMatch
		actions []problemhookv1alpha1.Action
		reason  string
		message string
	}
	cases := []testCase{
		{"a valid route", problemhookv1alpha1.RouteMatch{Expression: `problem.impactedEntities.exists(e, e.type == "HOST")`},
			[]problemhookv1alpha1.Action{jobAction(t, "incident", true, 5)}, problemhookv1alpha1.ReasonReady, "Routes matching events to 1 actions"},
		{"an expression over a field the problem does not have", problemhookv1alpha1.RouteMatch{Expression: `problem.titel == "x"`},
			[]problemhookv1alpha1.Action{jobAction(t, "incident", false, 1)}, problemhookv1alpha1.ReasonInvalidExpression, "spec.match.expression: "},
		{"an expression that is not a condition", problemhookv1alpha1.RouteMatch{Expression: `problem.title`},
			[]problemhookv1alpha1.Action{jobAction(t, "incident", false, 1)}, problemhookv1alpha1.ReasonInvalidExpression, "spec.match.expression: "},
		{"a template that does not parse", problemhookv1alpha1.RouteMatch{},
			[]problemhookv1alpha1.Action{jobAction(t, "incident", false, 1), func() problemhookv1alpha1.Action {
				a := sms("twilio")
				a.Twilio.Body = "{{.Title"
				return a
			}()}, problemhookv1alpha1.ReasonInvalidTemplate, "spec.actions[1].twilio.body: "},
		{"a template bomb", problemhookv1alpha1.RouteMatch{},
			[]problemhookv1alpha1.Action{func() problemhookv1alpha1.Action {
				a := sms("twilio")
				a.Twilio.Body = "{{range 9223372036854775807}}{{end}}"
				return a
			}()}, problemhookv1alpha1.ReasonInvalidTemplate,
			"spec.actions[0].twilio.body: rendering it for a sample problem: the template loops or calls templates more than 10000 times"},
		{"a Job template with a field batch/v1 does not have", problemhookv1alpha1.RouteMatch{},
			[]problemhookv1alpha1.Action{{Name: "incident", Job: &problemhookv1alpha1.JobAction{Template: runtime.RawExtension{
				Raw: []byte(`{"spec":{"template":{"spec":{"restartPolicy":"Never","initContainer":[{"name":"x","image":"y"}]}}}}`),
			}}}}, problemhookv1alpha1.ReasonInvalidJobTemplate, `spec.actions[0].job.template: `},
		{"a Job template the API server refuses", problemhookv1alpha1.RouteMatch{},
			[]problemhookv1alpha1.Action{{Name: "incident", Job: &problemhookv1alpha1.JobAction{Template: jobTemplate(t, func(j *batchv1.JobTemplateSpec) {
				j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
			})}}}, problemhookv1alpha1.ReasonInvalidJobTemplate, `spec.actions[0].job.template: spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"`},
		{"a Secret that does not exist", problemhookv1alpha1.RouteMatch{},
			[]problemhookv1alpha1.Action{sms("twilio-missing")}, problemhookv1alpha1.ReasonSecretNotFound,
			"spec.actions[0].twilio.credentialsSecretRef: Secret " + ns + "/twilio-missing not found"},
		{"a Twilio Secret whose account SID is not one", problemhookv1alpha1.RouteMatch{},
			[]problemhookv1alpha1.Action{sms("twilio-bad-sid")}, problemhookv1alpha1.ReasonInvalidSpec,
			"spec.actions[0].twilio.credentialsSecretRef: key accountSID is not AC followed by 32 hexadecimal digits (Secret twilio-bad-sid)"},
		{"a headers Secret with a value no HTTP header can carry", problemhookv1alpha1.RouteMatch{},
			[]problemhookv1alpha1.Action{{Name: "ticket", HTTP: &problemhookv1alpha1.HTTPAction{
				URL: "https://itsm.example.com/api", HeadersSecretRef: &problemhookv1alpha1.LocalObjectReference{Name: "bad-headers"},
			}}}, problemhookv1alpha1.ReasonInvalidSpec,
			`spec.actions[0].http.headersSecretRef: the value of key "X-Token" is not a valid HTTP header value (Secret bad-headers)`},
	}
	g := NewWithT(t)
	g.Expect(k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "twilio"},
		Data: map[string][]byte{"accountSID": []byte("AC0123456789abcdef0123456789abcdef"), "authToken": []byte("t")}})).To(Succeed())
	g.Expect(k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "twilio-bad-sid"},
		Data: map[string][]byte{"accountSID": []byte("SK0123456789abcdef0123456789abcdef"), "authToken": []byte("t")}})).To(Succeed())
	g.Expect(k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-headers"},
		Data: map[string][]byte{"X-Token": []byte("two\nlines")}})).To(Succeed())
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ir := &problemhookv1alpha1.IntegrationRoute{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("route-%d", i)},
				Spec:       problemhookv1alpha1.IntegrationRouteSpec{Match: tc.match, Actions: tc.actions},
			}
			NewWithT(t).Expect(k8s.Create(context.Background(), ir)).To(Succeed())
			status := metav1.ConditionFalse
			if tc.reason == problemhookv1alpha1.ReasonReady {
				status = metav1.ConditionTrue
			}
			msg := routeReady(t, ir, status, tc.reason)
			NewWithT(t).Expect(msg).To(HavePrefix(tc.message))
		})
	}

	// The missing Secret arrives: the route becomes Ready without an edit.
	missing := slices.IndexFunc(cases, func(c testCase) bool { return c.reason == problemhookv1alpha1.ReasonSecretNotFound })
	g.Expect(k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "twilio-missing"},
		Data: map[string][]byte{"accountSID": []byte("AC0123456789abcdef0123456789abcdef"), "authToken": []byte("t")}})).To(Succeed())
	routeReady(t, &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("route-%d", missing)}},
		metav1.ConditionTrue, problemhookv1alpha1.ReasonReady)
}
