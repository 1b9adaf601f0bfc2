package controllers_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

// A target connected as an OAuth client: a scope the client was not
// granted makes it Ready=False naming the scope; granted what it asks
// for, its events are enriched and commented through the platform with
// the client's tokens.
func TestOAuthTarget(t *testing.T) {
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{})
	t.Cleanup(dt.Close)
	dt.AddProblem(richProblem())
	const urn = "urn:dtaccount:0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
	sso := dynatracetest.NewSSO(dt, "dt0s02.CLIENT", "client-secret", urn, 5*time.Minute, dynatracetest.PlatformScopeRead, dynatracetest.PlatformScopeWrite)
	t.Cleanup(sso.Close)
	f := newTargetFixture(t, dt, func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{
			URL: dt.URL() + dynatracetest.PlatformPath,
			OAuth: &problemhookv1alpha1.DynatraceOAuth{
				ClientSecretRef: problemhookv1alpha1.LocalObjectReference{Name: "dynatrace-oauth"},
				AccountURN:      urn, TokenURL: sso.TokenURL(),
				Scopes: []string{dynatracetest.PlatformScopeRead, dynatracetest.PlatformScopeWrite, "settings:objects:write"},
			},
		}
	})
	f.stop, f.receiver = startEventManager(t, f.ns)
	key := client.ObjectKeyFromObject(f.target)
	expectReady(t, key, metav1.ConditionFalse, problemhookv1alpha1.ReasonSecretNotFound,
		"spec.dynatrace.oauth.clientSecretRef: Secret "+f.ns+"/dynatrace-oauth not found")
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "dynatrace-oauth"},
		Data: map[string][]byte{"clientID": []byte("dt0s02.CLIENT"), "clientSecret": []byte("client-secret")}})
	expectReady(t, key, metav1.ConditionFalse, problemhookv1alpha1.ReasonCredentialRefused,
		"spec.dynatrace.oauth: dynatrace: the OAuth client was not granted scope settings:objects:write (granted: environment-api:problems:read environment-api:problems:write)")

	var nt problemhookv1alpha1.NotificationTarget
	f.g.Expect(k8s.Get(f.ctx, key, &nt)).To(Succeed())
	nt.Spec.Dynatrace.OAuth.Scopes = nil // the defaults: problems read and write
	f.g.Expect(k8s.Update(f.ctx, &nt)).To(Succeed())
	expectReady(t, key, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady, "Receiving notifications at /hooks/"+f.ns+"/dynatrace")

	f.route("legacy", problemhookv1alpha1.RouteMatch{}, jobAction(t, "incident", false, 1))
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen})
	job := f.waitJobs(1)[0]
	f.finishJob(&job, 0)
	got := f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Details).NotTo(BeNil(), "enriched through the platform")
		g.Expect(ev.Status.Comment).NotTo(BeNil())
		g.Expect(ev.Status.Comment.Posted).To(BeTrue(), ev.Status.Comment.Message)
	})
	f.g.Expect(got.Status.Details.DisplayID).To(Equal("P-1234"))
	f.g.Expect(dt.Comments(pid)).To(HaveLen(1))
	for _, r := range dt.Requests() {
		f.g.Expect(r.Path).To(HavePrefix(dynatracetest.PlatformPath+"/v2/"), "every call through the platform")
	}
}

// A target whose API token the environment refuses, or that lacks
// problems.read, is not Ready, in Dynatrace's words, which name the scope;
// given the scope, it is.
func TestTokenTargetMissingScope(t *testing.T) {
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{})
	t.Cleanup(dt.Close)
	dt.AddToken(dtToken, dynatracetest.ScopeWrite)
	f := newTargetFixture(t, dt)
	key := client.ObjectKeyFromObject(f.target)
	expectReady(t, key, metav1.ConditionFalse, problemhookv1alpha1.ReasonCredentialRefused,
		"spec.dynatrace.tokenSecretRef: dynatrace: the API token was refused: 403 Token is missing required scope problems.read")

	dt.AddToken(dtToken, dynatracetest.ScopeRead, dynatracetest.ScopeWrite)
	var nt problemhookv1alpha1.NotificationTarget
	f.g.Expect(k8s.Get(f.ctx, key, &nt)).To(Succeed())
	nt.Spec.TestNotifications = problemhookv1alpha1.TestNotificationsIgnore // any change checks it again
	f.g.Expect(k8s.Update(f.ctx, &nt)).To(Succeed())
	expectReady(t, key, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady, "Receiving notifications at /hooks/"+f.ns+"/dynatrace")
}
