package controllers_test

import (
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/notify/notifytest"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/manifests"
)

// The paging samples, as shipped but for their services' addresses: a
// problem's OPEN opens a PagerDuty incident and an Opsgenie alert and
// posts to Slack and Teams; its RESOLVED resolves and closes exactly what
// the OPEN opened, and posts again.
func TestPagingSamplesResolveWhatTheyOpen(t *testing.T) {
	f := newFixture(t)
	f.dt.AddProblem(richProblem())
	const routingKey, genieKey = "R0UT1NGKEY0123456789abcdef012345", "genie-key-never-shown"
	pd := notifytest.NewPagerDuty(routingKey)
	t.Cleanup(pd.Close)
	og := notifytest.NewOpsgenie(genieKey)
	t.Cleanup(og.Close)
	slack := notifytest.NewSlack()
	t.Cleanup(slack.Close)
	teams := notifytest.NewTeams()
	t.Cleanup(teams.Close)
	for name, data := range map[string]map[string]string{
		"pagerduty": {"routing_key": routingKey},
		"opsgenie":  {"Authorization": "GenieKey " + genieKey},
		"slack":     {"url": slack.WebhookURL()},
		"teams":     {"url": teams.WebhookURL()},
	} {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Data: map[string][]byte{}}
		for k, v := range data {
			secret.Data[k] = []byte(v)
		}
		f.create(secret)
	}
	objs, err := manifests.ReadDir(filepath.Join(controlplane.RepoRoot(), "config", "samples", "paging"))
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(objs).To(HaveLen(4))
	for _, o := range objs {
		var ir problemhookv1alpha1.IntegrationRoute
		f.g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &ir, true)).To(Succeed())
		ir.Namespace = f.ns
		if h := ir.Spec.Actions[0].HTTP; h.URL != "" {
			h.URL = map[string]string{"https://events.pagerduty.com/v2/enqueue": pd.URL + "/v2/enqueue", "https://api.opsgenie.com": og.URL}[h.URL]
			f.g.Expect(h.URL).NotTo(BeEmpty())
		}
		f.create(&ir)
		routeReady(t, &ir, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady)
	}

	settled := func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveLen(4))
		for _, a := range ev.Status.Actions {
			g.Expect(a.State).To(Equal(problemhookv1alpha1.ActionSucceeded), "%s/%s: %s", a.Route, a.Action, a.Message)
		}
	}
	spec := problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "P-1234", Title: "CPU saturation", Severity: "AVAILABILITY",
		URL: "https://abc12345.live.dynatrace.com/#problems/problemdetails;pid=" + pid}
	spec.State = problemhookv1alpha1.StateOpen
	f.eventually(f.event(spec), settled)
	f.g.Expect(pd.Incidents()).To(HaveExactElements(And(HaveField("Key", pid), HaveField("Open", true),
		HaveField("Severity", "critical"), HaveField("Summary", "P-1234 CPU saturation"))))
	f.g.Expect(og.Incidents()).To(HaveExactElements(And(HaveField("Key", pid), HaveField("Open", true), HaveField("Severity", "P1"))))

	spec.State = problemhookv1alpha1.StateResolved
	f.eventually(f.event(spec), settled)
	f.g.Expect(pd.Incidents()).To(HaveExactElements(And(HaveField("Key", pid), HaveField("Open", false), HaveField("Events", 2))),
		"the RESOLVED resolved the incident the OPEN triggered")
	f.g.Expect(og.Incidents()).To(HaveExactElements(And(HaveField("Key", pid), HaveField("Open", false), HaveField("Events", 2))),
		"the RESOLVED closed the alert the OPEN created")
	f.g.Expect(slack.Messages()).To(HaveExactElements(
		HaveField("Text", HavePrefix(":rotating_light: OPEN P-1234: CPU saturation <https://")),
		HaveField("Text", HavePrefix(":white_check_mark: RESOLVED P-1234: CPU saturation <https://"))))
	f.g.Expect(teams.Messages()).To(HaveExactElements(
		HaveField("Text", "OPEN P-1234: CPU saturation\nSeverity AVAILABILITY, impact INFRASTRUCTURE"),
		HaveField("Text", "RESOLVED P-1234: CPU saturation\nSeverity AVAILABILITY, impact INFRASTRUCTURE")))
	// The keys went to the services and nowhere a user reads.
	for _, ev := range []string{problemhookv1alpha1.EventName("dynatrace", pid, problemhookv1alpha1.StateOpen), problemhookv1alpha1.EventName("dynatrace", pid, problemhookv1alpha1.StateResolved)} {
		got := f.get(&problemhookv1alpha1.ProblemEvent{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: ev}})
		for _, a := range got.Status.Actions {
			f.g.Expect(strings.Contains(a.Message, routingKey) || strings.Contains(a.Message, genieKey)).To(BeFalse(), a.Message)
		}
	}
}
