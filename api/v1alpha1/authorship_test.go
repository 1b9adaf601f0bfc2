package v1alpha1_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/scheme"
)

// The admission policies of config/admission: the API server refuses a
// route or target that would let problemhook do for its author what the
// author may not do alone, and says which permission is missing.
func TestAuthorNeedsWhatTheObjectUses(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	const user = "alice"
	alice := as(t, user)
	// alice may write routes and targets in ns, and nothing else.
	grant(t, ns, "alice", "problemhook-author", rbacv1.PolicyRule{
		APIGroups: []string{"problemhook.io"}, Resources: []string{"integrationroutes", "notificationtargets"},
		Verbs: []string{"create", "update", "patch", "get"},
	})
	for _, name := range []string{"headers", "auth", "twilio"} {
		g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})).To(Succeed())
	}

	jobRoute := &problemhookv1alpha1.IntegrationRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "job"},
		Spec: problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{{Name: "run", Job: &problemhookv1alpha1.JobAction{
			Template: runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}`)},
		}}}},
	}
	// The policy takes effect a moment after it is created: wait for its
	// first refusal, asked with a dry run that stores nothing.
	g.Eventually(func() error {
		return alice.Create(ctx, jobRoute.DeepCopy(), client.DryRunAll)
	}).Should(HaveOccurred())

	for _, tc := range []struct {
		name string
		obj  client.Object
		want string
	}{{
		name: "a route that references nothing needs nothing more",
		obj: &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"}, Spec: problemhookv1alpha1.IntegrationRouteSpec{
			Actions: []problemhookv1alpha1.Action{{Name: "hook", HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://hooks.example.com/x"}}},
		}},
	}, {
		name: "a Job action needs the right to create Jobs",
		obj:  jobRoute.DeepCopy(),
		want: `ValidatingAdmissionPolicy 'problemhook-integrationroute-author' with binding 'problemhook-integrationroute-author' denied request: ` +
			`alice may not create Jobs in namespace ` + ns + `, so they may not write an IntegrationRoute with a job action there: problemhook would create its Jobs for them`,
	}, {
		name: "each Secret a route references needs the right to get it, the first unreadable one named",
		obj: &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secrets"}, Spec: problemhookv1alpha1.IntegrationRouteSpec{
			Actions: []problemhookv1alpha1.Action{
				{Name: "hook", HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://hooks.example.com/x", HeadersSecretRef: &problemhookv1alpha1.LocalObjectReference{Name: "headers"}}},
				{Name: "sms", Twilio: &problemhookv1alpha1.TwilioAction{CredentialsSecretRef: problemhookv1alpha1.LocalObjectReference{Name: "twilio"}, From: "+15005550006", To: []string{"+15005550001"}, Body: "{{ .Title }}"}},
			},
		}},
		want: `alice may not get Secret twilio in namespace ` + ns + `, so they may not write an IntegrationRoute that references it: problemhook would send its contents for them`,
	}, {
		name: "a target's auth Secret needs the right to get it",
		obj: &problemhookv1alpha1.NotificationTarget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dynatrace"}, Spec: problemhookv1alpha1.NotificationTargetSpec{
			Format: problemhookv1alpha1.FormatDynatrace,
			Auth:   problemhookv1alpha1.WebhookAuth{Basic: &problemhookv1alpha1.BasicAuth{SecretRef: problemhookv1alpha1.LocalObjectReference{Name: "auth"}}},
		}},
		want: `ValidatingAdmissionPolicy 'problemhook-notificationtarget-author' with binding 'problemhook-notificationtarget-author' denied request: ` +
			`alice may not get Secret auth in namespace ` + ns + `, so they may not write a NotificationTarget that references it: problemhook would use its contents for them`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := alice.Create(ctx, tc.obj.DeepCopyObject().(client.Object), client.DryRunAll)
			if tc.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want 403 Forbidden, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}

	// alice may get one of the route's two Secrets: the other is named.
	grant(t, ns, "alice", "read-twilio", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"twilio"}, Verbs: []string{"get"}})
	secrets := &problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secrets"}, Spec: problemhookv1alpha1.IntegrationRouteSpec{
		Actions: []problemhookv1alpha1.Action{
			{Name: "hook", HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://hooks.example.com/x", HeadersSecretRef: &problemhookv1alpha1.LocalObjectReference{Name: "headers"}}},
			{Name: "sms", Twilio: &problemhookv1alpha1.TwilioAction{CredentialsSecretRef: problemhookv1alpha1.LocalObjectReference{Name: "twilio"}, From: "+15005550006", To: []string{"+15005550001"}, Body: "{{ .Title }}"}},
		},
	}}
	g.Eventually(func() error { return alice.Create(ctx, secrets.DeepCopy(), client.DryRunAll) }).
		Should(MatchError(ContainSubstring("alice may not get Secret headers in namespace " + ns)))

	// Granted what they use, alice's objects are accepted.
	grant(t, ns, "alice", "run-and-read", rbacv1.PolicyRule{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"headers", "auth"}, Verbs: []string{"get"}})
	g.Eventually(func() error { return alice.Create(ctx, jobRoute.DeepCopy()) }).Should(Succeed())
	g.Expect(alice.Create(ctx, secrets)).To(Succeed())
	target := &problemhookv1alpha1.NotificationTarget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dynatrace"}, Spec: problemhookv1alpha1.NotificationTargetSpec{
		Format: problemhookv1alpha1.FormatDynatrace,
		Auth:   problemhookv1alpha1.WebhookAuth{Basic: &problemhookv1alpha1.BasicAuth{SecretRef: problemhookv1alpha1.LocalObjectReference{Name: "auth"}}},
	}}
	g.Expect(alice.Create(ctx, target)).To(Succeed())

	// bob may edit routes but read no Secret: he may label alice's route,
	// which leaves its spec as it is, but not change what it does.
	bob := as(t, "bob")
	grant(t, ns, "bob", "problemhook-editor", rbacv1.PolicyRule{
		APIGroups: []string{"problemhook.io"}, Resources: []string{"integrationroutes"}, Verbs: []string{"get", "update", "patch"},
	})
	g.Expect(bob.Get(ctx, client.ObjectKeyFromObject(secrets), secrets)).To(Succeed())
	secrets.Labels = map[string]string{"team": "payments"}
	g.Expect(bob.Update(ctx, secrets)).To(Succeed())
	secrets.Spec.Actions[0].HTTP.URL = "https://elsewhere.example.com/"
	err := bob.Update(ctx, secrets)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want 403 Forbidden, got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("bob may not get Secret twilio in namespace " + ns))
}

// as returns a client that acts as user, as the API server authenticates
// impersonated users: in system:authenticated.
func as(t *testing.T, user string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(testEnv.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// grant gives user the rules in ns, through a Role named name.
func grant(t *testing.T, ns, user, name string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	g.Expect(k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules})).To(Succeed())
	g.Expect(k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	})).To(Succeed())
}
