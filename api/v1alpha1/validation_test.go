package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// These tests hold the API server to the CRDs' validation: bad resources
// are refused before any controller sees them.

var (
	k8s     client.Client
	testEnv *controlplane.TestEnv
)

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, func(_ context.Context, env *controlplane.TestEnv) (ctrl.Manager, error) {
		k8s, testEnv = env.Client, env
		return nil, nil
	}))
}

func newNamespace(t *testing.T) string {
	t.Helper()
	return controlplane.NewNamespace(t, k8s, "api")
}

// expectRefused creates obj and expects the API server to refuse it as
// invalid with a message containing want; an empty want expects success.
func expectRefused(t *testing.T, obj client.Object, want string) {
	t.Helper()
	g := NewWithT(t)
	err := k8s.Create(context.Background(), obj)
	if want == "" {
		g.Expect(err).NotTo(HaveOccurred())
		return
	}
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
	g.Expect(err.Error()).To(ContainSubstring(want))
}

// polling is a Dynatrace connection that polls every interval over window.
func polling(interval, window string) *problemhookv1alpha1.DynatraceConnection {
	parse := func(s string) metav1.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			panic(err)
		}
		return metav1.Duration{Duration: d}
	}
	return &problemhookv1alpha1.DynatraceConnection{
		URL: "https://abc12345.live.dynatrace.com", TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "dt"},
		Poll: &problemhookv1alpha1.PollSpec{Interval: parse(interval), Window: parse(window)},
	}
}

func TestNotificationTargetValidation(t *testing.T) {
	ns := newNamespace(t)
	basic := &problemhookv1alpha1.BasicAuth{SecretRef: problemhookv1alpha1.LocalObjectReference{Name: "auth"}}
	bearer := &problemhookv1alpha1.BearerAuth{SecretRef: problemhookv1alpha1.SecretKeyReference{Name: "auth"}}
	cases := []struct {
		name   string
		mutate func(*problemhookv1alpha1.NotificationTarget)
		want   string
	}{
		{"basic auth", func(*problemhookv1alpha1.NotificationTarget) {}, ""},
		{"two auth modes", func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Auth.Bearer = bearer }, "exactly one of basic, bearer or none must be set"},
		{"no auth mode", func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Auth.Basic = nil }, "exactly one of basic, bearer or none must be set"},
		{"unknown format", func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Format = "Splunk" }, `spec.format: Unsupported value: "Splunk"`},
		{"unknown test policy", func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.TestNotifications = "Maybe" }, `spec.testNotifications: Unsupported value: "Maybe"`},
		{"name longer than a label value", func(nt *problemhookv1alpha1.NotificationTarget) { nt.Name = strings.Repeat("a", 64) }, "metadata.name must be at most 63 characters"},
		{"Dynatrace URL without scheme", func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{URL: "abc12345.live.dynatrace.com", TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "dt"}}
		}, "spec.dynatrace.url"},
		{"secret key with a slash", func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{Bearer: &problemhookv1alpha1.BearerAuth{SecretRef: problemhookv1alpha1.SecretKeyReference{Name: "auth", Key: "../token"}}}
		}, "spec.auth.bearer.secretRef.key"},
		{"maxEvents zero", func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Retention = &problemhookv1alpha1.Retention{MaxEvents: new(int32)}
		}, "spec.retention.maxEvents"},
		{"Dynatrace connection with neither a token nor an OAuth client", func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{URL: "https://abc12345.apps.dynatrace.com"}
		}, "exactly one of tokenSecretRef or oauth must be set"},
		{"Dynatrace connection with both", func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{URL: "https://abc12345.apps.dynatrace.com", TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "dt"},
				OAuth: &problemhookv1alpha1.DynatraceOAuth{ClientSecretRef: problemhookv1alpha1.LocalObjectReference{Name: "oauth"}, AccountURN: "urn:dtaccount:0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"}}
		}, "exactly one of tokenSecretRef or oauth must be set"},
		{"OAuth client", func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{URL: "https://abc12345.apps.dynatrace.com",
				OAuth: &problemhookv1alpha1.DynatraceOAuth{ClientSecretRef: problemhookv1alpha1.LocalObjectReference{Name: "oauth"}, AccountURN: "urn:dtaccount:0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"}}
		}, ""},
		{"OAuth client of no account", func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{URL: "https://abc12345.apps.dynatrace.com",
				OAuth: &problemhookv1alpha1.DynatraceOAuth{ClientSecretRef: problemhookv1alpha1.LocalObjectReference{Name: "oauth"}, AccountURN: "my-account"}}
		}, "spec.dynatrace.oauth.accountURN"},
		{"poll every minute over two hours", func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = polling("1m", "2h") }, ""},
		{"poll more often than every 30s", func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = polling("10s", "2h") }, "interval must be at least 30s"},
		{"poll window shorter than its interval", func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Dynatrace = polling("10m", "5m") }, "window must be at least interval"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nt := &problemhookv1alpha1.NotificationTarget{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("target-%d", i)},
				Spec:       problemhookv1alpha1.NotificationTargetSpec{Format: problemhookv1alpha1.FormatDynatrace, Auth: problemhookv1alpha1.WebhookAuth{Basic: basic}},
			}
			tc.mutate(nt)
			expectRefused(t, nt, tc.want)
		})
	}

	// Defaults.
	g := NewWithT(t)
	var got problemhookv1alpha1.NotificationTarget
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "target-0"}, &got)).To(Succeed())
	g.Expect(got.Spec.TestNotifications).To(Equal(problemhookv1alpha1.TestNotificationsRecord))
}

func TestIntegrationRouteValidation(t *testing.T) {
	ns := newNamespace(t)
	template := batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers:    []corev1.Container{{Name: "legacy", Image: "registry.example/legacy:1", Args: []string{"--problem", "$(PROBLEM_DISPLAY_ID)"}}},
	}}}}
	raw, err := json.Marshal(template)
	if err != nil {
		t.Fatal(err)
	}
	job := &problemhookv1alpha1.JobAction{Template: runtime.RawExtension{Raw: raw}}
	twilio := &problemhookv1alpha1.TwilioAction{CredentialsSecretRef: problemhookv1alpha1.LocalObjectReference{Name: "twilio"}, From: "+18652699000", To: []string{"+4917000000"}, Body: "{{.Title}}"}
	cases := []struct {
		name   string
		mutate func(*problemhookv1alpha1.IntegrationRoute)
		want   string
	}{
		{"a job action", func(*problemhookv1alpha1.IntegrationRoute) {}, ""},
		{"no actions", func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.Actions = nil }, "spec.actions: Required value"},
		{"an action of two kinds", func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.Actions[0].Twilio = twilio }, "exactly one of job, twilio, dingtalk or http must be set"},
		{"an action of no kind", func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.Actions[0].Job = nil }, "exactly one of job, twilio, dingtalk or http must be set"},
		{"an action name that is no DNS label", func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.Actions[0].Name = "Legacy_Tool" }, "spec.actions[0].name"},
		{"two actions of one name", func(ir *problemhookv1alpha1.IntegrationRoute) {
			ir.Spec.Actions = append(ir.Spec.Actions, ir.Spec.Actions[0])
		}, "Duplicate value"},
		{"an SMS to a number that is not E.164", func(ir *problemhookv1alpha1.IntegrationRoute) {
			tw := *twilio
			tw.To = []string{"0170 000000"}
			ir.Spec.Actions = []problemhookv1alpha1.Action{{Name: "sms", Twilio: &tw}}
		}, "spec.actions[0].twilio.to[0]"},
		{"an SMS from a number and a messaging service", func(ir *problemhookv1alpha1.IntegrationRoute) {
			tw := *twilio
			tw.MessagingServiceSID = "MG" + strings.Repeat("0", 32)
			ir.Spec.Actions = []problemhookv1alpha1.Action{{Name: "sms", Twilio: &tw}}
		}, "exactly one of from or messagingServiceSID must be set"},
		{"an HTTP call with a URL and a URL Secret", func(ir *problemhookv1alpha1.IntegrationRoute) {
			ir.Spec.Actions = []problemhookv1alpha1.Action{{Name: "itsm", HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://itsm.example/api", URLSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "itsm"}}}}
		}, "exactly one of url or urlSecretRef must be set"},
		{"an unknown state", func(ir *problemhookv1alpha1.IntegrationRoute) {
			ir.Spec.Match.States = []problemhookv1alpha1.ProblemState{"CLOSED"}
		}, `Unsupported value: "CLOSED"`},
		{"parallelism zero", func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.Actions[0].Job.Parallelism = new(int32) }, "spec.actions[0].job.parallelism"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ir := &problemhookv1alpha1.IntegrationRoute{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("route-%d", i)},
				Spec:       problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{{Name: "incident", Job: job.DeepCopy()}}},
			}
			tc.mutate(ir)
			expectRefused(t, ir, tc.want)
		})
	}

	// The Job template survives the round trip whole, although the CRD
	// does not spell out its schema.
	g := NewWithT(t)
	var got problemhookv1alpha1.IntegrationRoute
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "route-0"}, &got)).To(Succeed())
	var gotTemplate batchv1.JobTemplateSpec
	g.Expect(json.Unmarshal(got.Spec.Actions[0].Job.Template.Raw, &gotTemplate)).To(Succeed())
	g.Expect(gotTemplate).To(Equal(template))
	g.Expect(*got.Spec.Actions[0].Job.StopOnResolve).To(BeTrue())
	g.Expect(*got.Spec.Actions[0].Job.Parallelism).To(Equal(int32(5)))
}

func TestProblemEventSpecIsImmutable(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	ev := &problemhookv1alpha1.ProblemEvent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dynatrace-0123456789abcdef-open"},
		Spec: problemhookv1alpha1.ProblemEventSpec{Target: "dynatrace", Source: problemhookv1alpha1.FormatDynatrace, ProblemID: "P1", State: problemhookv1alpha1.StateOpen,
			ReceivedAt: metav1.Now()},
	}
	g.Expect(k8s.Create(ctx, ev)).To(Succeed())
	ev.Spec.Title = "rewritten"
	err := k8s.Update(ctx, ev)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("spec is immutable"))

	bad := &problemhookv1alpha1.ProblemEvent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad"},
		Spec:       problemhookv1alpha1.ProblemEventSpec{Target: "dynatrace", Source: problemhookv1alpha1.FormatDynatrace, ProblemID: "P1", State: "CLOSED", ReceivedAt: metav1.Now()},
	}
	expectRefused(t, bad, `spec.state: Unsupported value: "CLOSED"`)
}
