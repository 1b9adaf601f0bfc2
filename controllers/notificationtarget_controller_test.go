package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// ready returns the target's Ready condition as the API server has it.
func ready(g Gomega, key client.ObjectKey) *metav1.Condition {
	var nt problemhookv1alpha1.NotificationTarget
	g.Expect(k8s.Get(context.Background(), key, &nt)).To(Succeed())
	c := meta.FindStatusCondition(nt.Status.Conditions, problemhookv1alpha1.ConditionReady)
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.ObservedGeneration).To(Equal(nt.Generation))
	g.Expect(nt.Status.ObservedGeneration).To(Equal(nt.Generation))
	return c
}

func expectReady(t *testing.T, key client.ObjectKey, status metav1.ConditionStatus, reason, message string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		c := ready(g, key)
		g.Expect(c.Status).To(Equal(status))
		g.Expect(c.Reason).To(Equal(reason))
		g.Expect(c.Message).To(Equal(message))
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

func basicTarget(ns string) *problemhookv1alpha1.NotificationTarget {
	return &problemhookv1alpha1.NotificationTarget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dynatrace"},
		Spec: problemhookv1alpha1.NotificationTargetSpec{
			Format: problemhookv1alpha1.FormatDynatrace,
			Auth: problemhookv1alpha1.WebhookAuth{Basic: &problemhookv1alpha1.BasicAuth{
				SecretRef: problemhookv1alpha1.LocalObjectReference{Name: "webhook-auth"},
			}},
		},
	}
}

func TestNotificationTargetReadyFollowsItsSecret(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	nt := basicTarget(ns)
	g.Expect(k8s.Create(ctx, nt)).To(Succeed())
	key := client.ObjectKeyFromObject(nt)

	expectReady(t, key, metav1.ConditionFalse, problemhookv1alpha1.ReasonSecretNotFound,
		"spec.auth.basic.secretRef: Secret "+ns+"/webhook-auth not found")
	var got problemhookv1alpha1.NotificationTarget
	g.Expect(k8s.Get(ctx, key, &got)).To(Succeed())
	g.Expect(got.Status.WebhookPath).To(Equal("/hooks/" + ns + "/dynatrace"))
	g.Expect(got.Status.WebhookURL).To(Equal(receiverURL + "/hooks/" + ns + "/dynatrace"))
	g.Eventually(func(g Gomega) {
		var evs eventsv1.EventList
		g.Expect(k8s.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
		g.Expect(evs.Items).To(ContainElement(And(
			HaveField("Type", corev1.EventTypeWarning),
			HaveField("Reason", problemhookv1alpha1.ReasonSecretNotFound),
			HaveField("Regarding.Name", "dynatrace"),
		)))
	}).Should(Succeed())

	// The Secret arrives without the password.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "webhook-auth"},
		Data: map[string][]byte{"username": []byte("dynatrace")}}
	g.Expect(k8s.Create(ctx, secret)).To(Succeed())
	expectReady(t, key, metav1.ConditionFalse, problemhookv1alpha1.ReasonSecretKeyMissing,
		`spec.auth.basic.secretRef: Secret `+ns+`/webhook-auth has no key "password", or its value is empty`)

	// Fixed, without touching the target.
	secret.Data["password"] = []byte("s3cret")
	g.Expect(k8s.Update(ctx, secret)).To(Succeed())
	expectReady(t, key, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady, "Receiving notifications at /hooks/"+ns+"/dynatrace")

	// Broken again by a rotation that drops a key.
	delete(secret.Data, "username")
	g.Expect(k8s.Update(ctx, secret)).To(Succeed())
	expectReady(t, key, metav1.ConditionFalse, problemhookv1alpha1.ReasonSecretKeyMissing,
		`spec.auth.basic.secretRef: Secret `+ns+`/webhook-auth has no key "username", or its value is empty`)
}

func TestNotificationTargetReadyReasons(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*problemhookv1alpha1.NotificationTarget)
		secrets map[string]map[string]string
		status  metav1.ConditionStatus
		reason  string
		message string // {ns} stands for the namespace
	}{{
		name: "bearer token under the default key",
		mutate: func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{Bearer: &problemhookv1alpha1.BearerAuth{SecretRef: problemhookv1alpha1.SecretKeyReference{Name: "tok"}}}
		},
		secrets: map[string]map[string]string{"tok": {"token": "t"}},
		status:  metav1.ConditionTrue, reason: problemhookv1alpha1.ReasonReady, message: "Receiving notifications at /hooks/{ns}/dynatrace",
	}, {
		name: "bearer token under a missing custom key",
		mutate: func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{Bearer: &problemhookv1alpha1.BearerAuth{SecretRef: problemhookv1alpha1.SecretKeyReference{Name: "tok", Key: "guance"}}}
		},
		secrets: map[string]map[string]string{"tok": {"token": "t"}},
		status:  metav1.ConditionFalse, reason: problemhookv1alpha1.ReasonSecretKeyMissing,
		message: `spec.auth.bearer.secretRef: Secret {ns}/tok has no key "guance", or its value is empty`,
	}, {
		name: "no auth",
		mutate: func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{None: &problemhookv1alpha1.NoAuth{}}
		},
		status: metav1.ConditionTrue, reason: problemhookv1alpha1.ReasonReady, message: "Receiving notifications at /hooks/{ns}/dynatrace",
	}, {
		name: "Dynatrace token Secret missing",
		mutate: func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{URL: "https://abc12345.live.dynatrace.com",
				TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "dt-api"}}
		},
		secrets: map[string]map[string]string{"webhook-auth": {"username": "u", "password": "p"}},
		status:  metav1.ConditionFalse, reason: problemhookv1alpha1.ReasonSecretNotFound,
		message: "spec.dynatrace.tokenSecretRef: Secret {ns}/dt-api not found",
	}, {
		name: "CA bundle that holds no certificate",
		mutate: func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{URL: "https://activegate:9999/e/abc12345",
				TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "dt-api"}, CABundle: []byte("not a certificate")}
		},
		secrets: map[string]map[string]string{"webhook-auth": {"username": "u", "password": "p"}, "dt-api": {"token": "dt0c01.x"}},
		status:  metav1.ConditionFalse, reason: problemhookv1alpha1.ReasonInvalidCABundle,
		message: "spec.dynatrace.caBundle holds no PEM certificate",
	}, {
		name:   "suspended",
		mutate: func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Suspend = true },
		status: metav1.ConditionFalse, reason: problemhookv1alpha1.ReasonSuspended,
		message: "Suspended: senders get 503 until spec.suspend is false",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			ns := newNamespace(t)
			for name, data := range tc.secrets {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
				g.Expect(k8s.Create(ctx, s)).To(Succeed())
			}
			nt := basicTarget(ns)
			tc.mutate(nt)
			g.Expect(k8s.Create(ctx, nt)).To(Succeed())
			expectReady(t, client.ObjectKeyFromObject(nt), tc.status, tc.reason, strings.ReplaceAll(tc.message, "{ns}", ns))
		})
	}
}

func TestSuspendAndResume(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	nt := basicTarget(ns)
	nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{None: &problemhookv1alpha1.NoAuth{}}
	g.Expect(k8s.Create(ctx, nt)).To(Succeed())
	key := client.ObjectKeyFromObject(nt)
	expectReady(t, key, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady, "Receiving notifications at /hooks/"+ns+"/dynatrace")

	patch := client.MergeFrom(nt.DeepCopy())
	nt.Spec.Suspend = true
	g.Expect(k8s.Patch(ctx, nt, patch)).To(Succeed())
	expectReady(t, key, metav1.ConditionFalse, problemhookv1alpha1.ReasonSuspended, "Suspended: senders get 503 until spec.suspend is false")

	patch = client.MergeFrom(nt.DeepCopy())
	nt.Spec.Suspend = false
	g.Expect(k8s.Patch(ctx, nt, patch)).To(Succeed())
	expectReady(t, key, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady, "Receiving notifications at /hooks/"+ns+"/dynatrace")
}
