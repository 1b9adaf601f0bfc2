package controllers_test

import (
	"encoding/base64"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers/notificationtarget"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

// registered waits for the target's Registered condition and returns its message.
func registered(t *testing.T, key client.ObjectKey, status metav1.ConditionStatus, reason string) string {
	t.Helper()
	var msg string
	NewWithT(t).Eventually(func(g Gomega) {
		var nt problemhookv1alpha1.NotificationTarget
		g.Expect(k8s.Get(t.Context(), key, &nt)).To(Succeed())
		var c *metav1.Condition
		for i := range nt.Status.Conditions {
			if nt.Status.Conditions[i].Type == problemhookv1alpha1.ConditionRegistered {
				c = &nt.Status.Conditions[i]
			}
		}
		g.Expect(c).NotTo(BeNil(), "%+v %v", nt.Status.Conditions, nt.Finalizers)
		g.Expect(c.ObservedGeneration).To(Equal(nt.Generation))
		g.Expect(c.Status).To(Equal(status), c.Message)
		g.Expect(c.Reason).To(Equal(reason))
		msg = c.Message
	}).Should(Succeed())
	return msg
}

// A target with spec.dynatrace.registration keeps exactly one problem
// notification in Dynatrace in step with it: created by its externalId
// with the receiver's credentials as a secret header, written again (its
// secret resent) when they change, refused with the missing scope or the
// unknown alerting profile named, and deleted with the target.
func TestTargetRegistersItself(t *testing.T) {
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{})
	t.Cleanup(dt.Close)
	dt.AddToken(dtToken, dynatracetest.ScopeRead, dynatracetest.ScopeWrite, dynatracetest.ScopeSettingsRead)
	const hookURL = "https://activegate.problemhook-system.svc:9999/hooks"
	f := newTargetFixture(t, dt, func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Spec.Dynatrace.Registration = &problemhookv1alpha1.Registration{WebhookURL: hookURL, AlertingProfile: "Ops"}
	})
	key := client.ObjectKeyFromObject(f.target)
	update := func(mutate func(*problemhookv1alpha1.NotificationTarget)) {
		var nt problemhookv1alpha1.NotificationTarget
		f.g.Expect(k8s.Get(f.ctx, key, &nt)).To(Succeed())
		mutate(&nt)
		f.g.Expect(k8s.Update(f.ctx, &nt)).To(Succeed())
	}

	f.g.Expect(registered(t, key, metav1.ConditionFalse, problemhookv1alpha1.ReasonRegistrationFailed)).To(Equal(
		`spec.dynatrace.registration.alertingProfile: Dynatrace has no alerting profile named "Ops"`))
	update(func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace.Registration.AlertingProfile = "" })
	f.g.Expect(registered(t, key, metav1.ConditionFalse, problemhookv1alpha1.ReasonRegistrationFailed)).To(
		ContainSubstring("Token is missing required scope settings.write"))

	dt.AddToken(dtToken, dynatracetest.ScopeRead, dynatracetest.ScopeWrite, dynatracetest.ScopeSettingsRead, dynatracetest.ScopeSettingsWrite)
	update(func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Spec.Dynatrace.Registration.AcceptAnyCertificate = true // any change checks it again
	})
	f.g.Expect(registered(t, key, metav1.ConditionTrue, problemhookv1alpha1.ReasonRegistered)).To(
		MatchRegexp(`^Dynatrace posts problems of alerting profile Default to ` + hookURL + ` \(settings object .+\)$`))

	var nt problemhookv1alpha1.NotificationTarget
	f.g.Expect(k8s.Get(f.ctx, key, &nt)).To(Succeed())
	f.g.Expect(nt.Finalizers).To(ContainElement(notificationtarget.RegistrationFinalizer))
	f.g.Expect(nt.Status.Registration.ObjectID).NotTo(BeEmpty())
	externalID := "problemhook-" + string(nt.UID)
	hook := func(g Gomega) map[string]any {
		v, ok := dt.ProblemNotification(externalID)
		g.Expect(ok).To(BeTrue())
		return v["webHookNotification"].(map[string]any)
	}
	basic := func(password string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte("dynatrace:"+password))
	}
	got := hook(f.g)
	f.g.Expect(got).To(And(HaveKeyWithValue("url", hookURL), HaveKeyWithValue("payload", notificationtarget.RegistrationPayload),
		HaveKeyWithValue("notifyClosedProblems", true), HaveKeyWithValue("acceptAnyCertificate", true)))
	f.g.Expect(got["headers"]).To(HaveExactElements(map[string]any{"name": "Authorization", "secret": true, "secretValue": basic("secret")}))

	// A rotated password goes to Dynatrace, in the same object.
	var secret corev1.Secret
	f.g.Expect(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "webhook-auth"}, &secret)).To(Succeed())
	secret.Data["password"] = []byte("rotated")
	f.g.Expect(k8s.Update(f.ctx, &secret)).To(Succeed())
	f.g.Eventually(func(g Gomega) {
		g.Expect(hook(g)["headers"]).To(HaveExactElements(HaveKeyWithValue("secretValue", basic("rotated"))))
	}).Should(Succeed())
	f.g.Expect(dt.ProblemNotifications()).To(Equal(1))

	// Deleting the target deletes its notification first.
	f.g.Expect(k8s.Delete(f.ctx, &nt)).To(Succeed())
	f.g.Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(f.ctx, key, &nt)) }).Should(BeTrue())
	f.g.Expect(dt.ProblemNotifications()).To(BeZero())
}
