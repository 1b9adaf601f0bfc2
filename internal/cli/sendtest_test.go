package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/cli"
	"github.com/problemhook/problemhook/internal/payload"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// parseDynatrace parses a Dynatrace body as the receiver does.
func parseDynatrace(g Gomega, body []byte) *problemhookv1alpha1.ProblemEventSpec {
	spec, err := payload.ParseDynatrace(body)
	g.Expect(err).NotTo(HaveOccurred())
	return spec
}

func TestSendTest(t *testing.T) {
	dynatraceTest, err := os.ReadFile("../payload/testdata/dynatrace-test.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		format problemhookv1alpha1.PayloadFormat
		mutate []func(*problemhookv1alpha1.NotificationTarget)
		// viaFlag posts to --receiver-url instead of status.webhookURL.
		viaFlag bool
		status  string
		result  string
		check   func(g Gomega, nt *problemhookv1alpha1.NotificationTarget, events []problemhookv1alpha1.ProblemEvent)
	}{{
		name: "Dynatrace, basic auth: stored as a test", format: problemhookv1alpha1.FormatDynatrace,
		mutate: []func(*problemhookv1alpha1.NotificationTarget){basicAuth},
		status: "202 Accepted", result: "created",
		check: func(g Gomega, nt *problemhookv1alpha1.NotificationTarget, events []problemhookv1alpha1.ProblemEvent) {
			g.Expect(events).To(HaveLen(1))
			ev := events[0]
			g.Expect(ev.Name).To(Equal(problemhookv1alpha1.EventName(nt.Name, "99999", problemhookv1alpha1.StateOpen)))
			g.Expect(ev.Spec.Test).To(BeTrue())
			g.Expect(ev.Spec.DisplayID).To(Equal("999"))
			g.Expect(ev.Spec.Title).To(Equal("Dynatrace problem notification test run"))
			g.Expect(ev.Spec.URL).To(Equal("https://example.com"))
			g.Expect(ev.Spec.Tags).To(Equal([]string{"testtag1", "testtag2"}))
			g.Expect(ev.Spec.ImpactedEntities).To(Equal([]problemhookv1alpha1.ImpactedEntity{
				{ID: "HOST-XXXXXXXXXXXXX", Name: "MyHost1", Type: "HOST"},
				{ID: "SERVICE-XXXXXXXXXXXXX", Name: "MyService1", Type: "SERVICE"},
			}))
			g.Expect(ev.Spec.Severity).NotTo(BeEmpty())
			g.Expect(ev.Spec.Impact).NotTo(BeEmpty())
			// Dynatrace's own test, plus a severity and an impact.
			sent := parseDynatrace(g, []byte(ev.Spec.Payload))
			sent.Severity, sent.Impact = "", ""
			g.Expect(sent).To(Equal(parseDynatrace(g, dynatraceTest)))
		},
	}, {
		name: "Dynatrace, bearer token, testNotifications Ignore: acknowledged, not stored", format: problemhookv1alpha1.FormatDynatrace,
		mutate: []func(*problemhookv1alpha1.NotificationTarget){bearerAuth, func(nt *problemhookv1alpha1.NotificationTarget) {
			nt.Spec.TestNotifications = problemhookv1alpha1.TestNotificationsIgnore
		}},
		viaFlag: true, status: "200 OK", result: "ignored",
		check: func(g Gomega, _ *problemhookv1alpha1.NotificationTarget, events []problemhookv1alpha1.ProblemEvent) {
			g.Expect(events).To(BeEmpty())
		},
	}, {
		name: "Guance, bearer token: stored as a test event", format: problemhookv1alpha1.FormatGuance,
		mutate: []func(*problemhookv1alpha1.NotificationTarget){bearerAuth},
		status: "202 Accepted", result: "created",
		check: func(g Gomega, nt *problemhookv1alpha1.NotificationTarget, events []problemhookv1alpha1.ProblemEvent) {
			g.Expect(events).To(HaveLen(1))
			ev := events[0]
			g.Expect(ev.Name).To(Equal(problemhookv1alpha1.EventName(nt.Name, payload.GuanceTestEventID, problemhookv1alpha1.StateOpen)))
			g.Expect(ev.Spec.Test).To(BeTrue(), "the receiver knows problemhook's own test event")
			g.Expect(ev.Spec.Source).To(Equal(problemhookv1alpha1.FormatGuance))
			g.Expect(ev.Spec.Title).To(Equal("problemhook test notification"))
			g.Expect(ev.Spec.Severity).To(Equal("INFO"))
			g.Expect(ev.Spec.Tags).To(Equal([]string{"source:problemhook-send-test"}))
		},
	}, {
		name: "Guance, no auth", format: problemhookv1alpha1.FormatGuance,
		viaFlag: true, status: "202 Accepted", result: "created",
		check: func(g Gomega, _ *problemhookv1alpha1.NotificationTarget, events []problemhookv1alpha1.ProblemEvent) {
			g.Expect(events).To(HaveLen(1))
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			ns := controlplane.NewNamespace(t, k8s, "cli-send-test")
			nt := newTarget(t, ns, "sender", tc.format, tc.mutate...)
			eventuallyReady(t, nt)
			opts := cli.SendTestOptions{Target: keyOf(nt)}
			if tc.viaFlag {
				opts.ReceiverURL = server.URL + "/"
			}

			var out bytes.Buffer
			g.Expect(cli.SendTest(ctx, k8s, opts, &out)).To(Succeed(), out.String())
			lines := strings.SplitN(out.String(), "\n", 2)
			g.Expect(lines[0]).To(HavePrefix("POST " + server.URL + "/hooks/" + ns + "/sender ("))
			g.Expect(lines[0]).NotTo(ContainSubstring(password))
			g.Expect(out.String()).NotTo(ContainSubstring(bearerToken))
			g.Expect(out.String()).To(ContainSubstring("\n" + tc.status + "\n"))
			answer := out.String()[strings.Index(out.String(), "\n{")+1:]
			var body struct {
				Result       string `json:"result"`
				ProblemEvent string `json:"problemEvent"`
			}
			g.Expect(json.Unmarshal([]byte(answer), &body)).To(Succeed(), out.String())
			g.Expect(body.Result).To(Equal(tc.result))

			var list problemhookv1alpha1.ProblemEventList
			g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			tc.check(g, nt, list.Items)
			if len(list.Items) == 1 {
				g.Expect(body.ProblemEvent).To(Equal(ns + "/" + list.Items[0].Name))
				// The same test again is a duplicate the receiver acknowledges.
				out.Reset()
				g.Expect(cli.SendTest(ctx, k8s, opts, &out)).To(Succeed(), out.String())
				g.Expect(out.String()).To(ContainSubstring("\n200 OK\n"))
				g.Expect(out.String()).To(ContainSubstring(`"result": "duplicate"`))
			}
		})
	}
}

func TestSendTestErrors(t *testing.T) {
	ctx := context.Background()
	ns := controlplane.NewNamespace(t, k8s, "cli-send-test-errors")
	noSecret := newTarget(t, ns, "no-secret", problemhookv1alpha1.FormatDynatrace, func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{Basic: &problemhookv1alpha1.BasicAuth{
			SecretRef: problemhookv1alpha1.LocalObjectReference{Name: "missing"}}}
	})
	noKey := newTarget(t, ns, "no-key", problemhookv1alpha1.FormatGuance, func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{Bearer: &problemhookv1alpha1.BearerAuth{
			SecretRef: problemhookv1alpha1.SecretKeyReference{Name: "auth", Key: "guance-token"}}}
	})
	unmanaged := newTarget(t, ns, "unmanaged", problemhookv1alpha1.FormatDynatrace, func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Labels = map[string]string{unmanagedLabel: "true"}
	})
	cases := []struct {
		name string
		opts cli.SendTestOptions
		want string
	}{{
		name: "auth Secret missing",
		opts: cli.SendTestOptions{Target: keyOf(noSecret), ReceiverURL: server.URL},
		want: fmt.Sprintf("reading the credentials of NotificationTarget %s/no-secret: spec.auth.basic.secretRef: Secret %s/missing not found", ns, ns),
	}, {
		name: "bearer key missing",
		opts: cli.SendTestOptions{Target: keyOf(noKey), ReceiverURL: server.URL},
		want: fmt.Sprintf(`reading the credentials of NotificationTarget %s/no-key: spec.auth.bearer.secretRef: Secret %s/auth has no key "guance-token", or its value is empty`, ns, ns),
	}, {
		name: "no --receiver-url and no status.webhookURL",
		opts: cli.SendTestOptions{Target: keyOf(unmanaged)},
		want: fmt.Sprintf("NotificationTarget %s/unmanaged has no status.webhookURL (is the operator running?); pass --receiver-url, "+
			"e.g. --receiver-url http://localhost:9292 after `kubectl -n problemhook-system port-forward svc/problemhook-receiver 9292`", ns),
	}, {
		name: "unknown target",
		opts: cli.SendTestOptions{Target: types.NamespacedName{Namespace: ns, Name: "nope"}, ReceiverURL: server.URL},
		want: fmt.Sprintf("NotificationTarget %s/nope not found", ns),
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var out bytes.Buffer
			g.Expect(cli.SendTest(ctx, k8s, tc.opts, &out)).To(MatchError(tc.want))
			g.Expect(out.String()).To(BeEmpty(), "nothing was posted")
		})
	}
	var list problemhookv1alpha1.ProblemEventList
	NewWithT(t).Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	NewWithT(t).Expect(list.Items).To(BeEmpty())
}

func TestMainSendTestRefused(t *testing.T) {
	g := NewWithT(t)
	ns := controlplane.NewNamespace(t, k8s, "cli-send-test-main")
	nt := newTarget(t, ns, "suspended", problemhookv1alpha1.FormatDynatrace, basicAuth, func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Spec.Suspend = true
	})
	// The receiver refuses a suspended target once it sees it.
	g.Eventually(func(g Gomega) {
		var got problemhookv1alpha1.NotificationTarget
		g.Expect(recv.Cache.Get(context.Background(), keyOf(nt), &got)).To(Succeed())
		g.Expect(got.Status.WebhookURL).NotTo(BeEmpty())
	}).Should(Succeed())
	t.Setenv("KUBECONFIG", kubeconfig(t))

	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"send-test", "--target", ns + "/suspended"}, &stdout, &stderr)
	g.Expect(code).To(Equal(1), "a non-2xx answer fails the command")
	g.Expect(stdout.String()).To(ContainSubstring("\n503 Service Unavailable\n"))
	g.Expect(stdout.String()).To(ContainSubstring(fmt.Sprintf(`"message": "NotificationTarget %s/suspended is suspended"`, ns)))
	g.Expect(stderr.String()).To(Equal("error: the receiver answered 503 Service Unavailable\n"))
}
