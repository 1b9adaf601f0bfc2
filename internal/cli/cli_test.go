package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/cli"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/internal/feed"
	"github.com/problemhook/problemhook/internal/payload"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/internal/secretref"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/webhookserver/receiver"
)

// unmanagedLabel marks a NotificationTarget no controller of the suite
// sees: its status stays empty, as when the operator is not running.
const unmanagedLabel = "cli-test.problemhook.io/unmanaged"

const (
	user        = "dynatrace"
	password    = "s3cret"
	bearerToken = "bearer-token"
	apiToken    = "dt0c01.cli-test-token"
)

// The tests share one API server and one manager that runs the
// NotificationTarget controller and a receiver, as main.go wires them,
// behind one HTTP server: the receiver send-test posts to. The controller
// reports that server's URL in status.webhookURL. Each test works in a
// namespace of its own.
var (
	k8s    client.Client
	env    *controlplane.TestEnv
	recv   *receiver.Server
	server *httptest.Server
)

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, func(ctx context.Context, e *controlplane.TestEnv) (ctrl.Manager, error) {
		k8s, env = e.Client, e
		managed, err := labels.Parse("!" + unmanagedLabel)
		if err != nil {
			return nil, err
		}
		// env.NewManager's options, and a cache that leaves out the unmanaged targets.
		mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
			Scheme:  scheme.New(),
			Metrics: metricsserver.Options{BindAddress: "0"},
			Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
				&problemhookv1alpha1.NotificationTarget{}: {Label: managed},
			}},
		})
		if err != nil {
			return nil, err
		}
		recv = &receiver.Server{Addr: "127.0.0.1:0", Cache: mgr.GetCache(), Client: mgr.GetClient()}
		// The test server outlives the package's tests; the process ends with them.
		server = httptest.NewServer(recv.Handler())
		if err := (&controllers.NotificationTargetReconciler{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("problemhook"), ReceiverURL: server.URL,
		}).SetupWithManager(ctx, mgr); err != nil {
			return nil, err
		}
		return mgr, mgr.Add(recv)
	}))
}

// newTarget creates, in ns, a Secret "auth" with basic-auth and bearer
// credentials and a NotificationTarget named name of format with no auth,
// after mutate has had its say.
func newTarget(t *testing.T, ns, name string, format problemhookv1alpha1.PayloadFormat, mutate ...func(*problemhookv1alpha1.NotificationTarget)) *problemhookv1alpha1.NotificationTarget {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"},
		Data: map[string][]byte{"username": []byte(user), "password": []byte(password), "token": []byte(bearerToken)}}
	if err := k8s.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	nt := &problemhookv1alpha1.NotificationTarget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: problemhookv1alpha1.NotificationTargetSpec{
			Format: format,
			Auth:   problemhookv1alpha1.WebhookAuth{None: &problemhookv1alpha1.NoAuth{}},
		},
	}
	for _, m := range mutate {
		m(nt)
	}
	g.Expect(k8s.Create(ctx, nt)).To(Succeed())
	return nt
}

func basicAuth(nt *problemhookv1alpha1.NotificationTarget) {
	nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{Basic: &problemhookv1alpha1.BasicAuth{
		SecretRef: problemhookv1alpha1.LocalObjectReference{Name: "auth"}}}
}

func bearerAuth(nt *problemhookv1alpha1.NotificationTarget) {
	nt.Spec.Auth = problemhookv1alpha1.WebhookAuth{Bearer: &problemhookv1alpha1.BearerAuth{
		SecretRef: problemhookv1alpha1.SecretKeyReference{Name: "auth"}}}
}

// eventuallyReady waits until the receiver's cache sees nt as Ready.
func eventuallyReady(t *testing.T, nt *problemhookv1alpha1.NotificationTarget) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		var got problemhookv1alpha1.NotificationTarget
		g.Expect(recv.Cache.Get(context.Background(), client.ObjectKeyFromObject(nt), &got)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, problemhookv1alpha1.ConditionReady)).To(BeTrue())
	}).Should(Succeed())
}

func keyOf(nt *problemhookv1alpha1.NotificationTarget) types.NamespacedName {
	return client.ObjectKeyFromObject(nt)
}

// kubeconfig writes a kubeconfig for the test's API server and returns its path.
func kubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.WriteKubeconfig(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// pollFixture is a Dynatrace target whose environment holds problems of
// the last hour and one of three days ago, some of them recorded.
type pollFixture struct {
	target   *problemhookv1alpha1.NotificationTarget
	dt       *dynatracetest.Server
	problems map[string]dynatrace.Problem // by display id
	// events are the names of the target's ProblemEvents, by display id.
	events map[string][]string
}

func newPollFixture(t *testing.T) *pollFixture {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{})
	t.Cleanup(dt.Close)
	dt.AddToken(apiToken, dynatracetest.ScopeRead)
	ns := controlplane.NewNamespace(t, k8s, "cli-poll")
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dynatrace"},
		Data: map[string][]byte{"token": []byte(apiToken)}})).To(Succeed())
	withDynatrace := func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{
			URL: dt.URL(), TokenSecretRef: problemhookv1alpha1.SecretKeyReference{Name: "dynatrace"}}
	}
	f := &pollFixture{
		target:   newTarget(t, ns, "tenant", problemhookv1alpha1.FormatDynatrace, withDynatrace),
		dt:       dt,
		problems: map[string]dynatrace.Problem{},
		events:   map[string][]string{},
	}
	other := newTarget(t, ns, "other", problemhookv1alpha1.FormatDynatrace, withDynatrace)

	now := time.Now()
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	for i, p := range []dynatrace.Problem{
		{DisplayID: "P-1", Title: "Response time degraded on checkout", Status: "OPEN",
			SeverityLevel: "PERFORMANCE", ImpactLevel: "SERVICES", StartTime: ago(10 * time.Minute), EndTime: -1},
		{DisplayID: "P-2", Title: "Host web01\tunavailable", Status: "CLOSED",
			SeverityLevel: "AVAILABILITY", ImpactLevel: "INFRASTRUCTURE", StartTime: ago(50 * time.Minute), EndTime: ago(20 * time.Minute)},
		{DisplayID: "P-3", Title: "Failure rate increase", Status: "CLOSED",
			SeverityLevel: "ERROR", ImpactLevel: "SERVICES", StartTime: ago(40 * time.Minute), EndTime: ago(30 * time.Minute)},
		{DisplayID: "P-4", Title: "CPU saturation", Status: "OPEN",
			SeverityLevel: "RESOURCE_CONTENTION", ImpactLevel: "INFRASTRUCTURE", StartTime: ago(5 * time.Minute), EndTime: -1},
		{DisplayID: "P-5", Title: "Custom alert", Status: "CLOSED",
			SeverityLevel: "CUSTOM_ALERT", ImpactLevel: "ENVIRONMENT", StartTime: ago(30 * time.Minute), EndTime: ago(25 * time.Minute)},
		{DisplayID: "P-6", Title: "Old problem", Status: "CLOSED",
			SeverityLevel: "ERROR", ImpactLevel: "APPLICATION", StartTime: ago(72 * time.Hour), EndTime: ago(71 * time.Hour)},
	} {
		p.ProblemID = fmt.Sprintf("-61502034509264864%02d_1669823466223V2", i)
		dt.AddProblem(p)
		f.problems[p.DisplayID] = p
	}
	record := func(nt *problemhookv1alpha1.NotificationTarget, displayID string, state problemhookv1alpha1.ProblemState) {
		spec := problemhookv1alpha1.ProblemEventSpec{
			Source: problemhookv1alpha1.FormatDynatrace, ProblemID: f.problems[displayID].ProblemID,
			DisplayID: strings.TrimPrefix(displayID, "P-"), State: state, ReceivedAt: metav1.Now(),
		}
		ev := problemhookv1alpha1.NewProblemEvent(nt, &spec)
		g.Expect(k8s.Create(ctx, ev)).To(Succeed())
		if nt == f.target {
			f.events[displayID] = append(f.events[displayID], ev.Name)
		}
	}
	record(f.target, "P-1", problemhookv1alpha1.StateOpen)
	record(f.target, "P-2", problemhookv1alpha1.StateOpen)
	record(f.target, "P-2", problemhookv1alpha1.StateResolved)
	// Another target's event of P-3 is not this target's record of it.
	record(other, "P-3", problemhookv1alpha1.StateOpen)
	return f
}

// listRequests are the GET /problems requests the fake received.
func (f *pollFixture) listRequests() []dynatracetest.Request {
	var out []dynatracetest.Request
	for _, r := range f.dt.Requests() {
		if strings.HasSuffix(r.Path, "/api/v2/problems") {
			out = append(out, r)
		}
	}
	return out
}

func rfc3339(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

// parseTable reads a table Poll printed into rows of cells by column name,
// cutting each line where the header's columns start.
func parseTable(t *testing.T, out string) (columns []string, rows []map[string]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	header := lines[0]
	columns = strings.Fields(header)
	starts := make([]int, len(columns))
	for i, c := range columns {
		starts[i] = strings.Index(header, c)
	}
	for _, line := range lines[1:] {
		r := map[string]string{}
		for i, c := range columns {
			end := len(line)
			if i+1 < len(columns) {
				end = starts[i+1]
			}
			r[c] = strings.TrimSpace(line[starts[i]:end])
		}
		rows = append(rows, r)
	}
	return columns, rows
}

func TestPollTable(t *testing.T) {
	g := NewWithT(t)
	f := newPollFixture(t)

	var out bytes.Buffer
	// Two problems a page, so that the five of the last hour take three pages.
	g.Expect(cli.Poll(context.Background(), k8s, cli.PollOptions{Target: keyOf(f.target), PageSize: 2}, &out)).To(Succeed())

	columns, rows := parseTable(t, out.String())
	g.Expect(columns).To(Equal([]string{"PROBLEM", "STATUS", "SEVERITY", "IMPACT", "STARTED", "ENDED", "TITLE", "RECORDED"}))
	var order []string
	for _, r := range rows {
		order = append(order, r["PROBLEM"])
	}
	g.Expect(order).To(Equal([]string{"P-4", "P-1", "P-5", "P-3", "P-2"}), "the last hour's problems, newest first:\n%s", out.String())
	byID := map[string]map[string]string{}
	for _, r := range rows {
		byID[r["PROBLEM"]] = r
	}
	g.Expect(byID["P-1"]).To(Equal(map[string]string{
		"PROBLEM": "P-1", "STATUS": "OPEN", "SEVERITY": "PERFORMANCE", "IMPACT": "SERVICES",
		"STARTED": rfc3339(f.problems["P-1"].StartTime), "ENDED": "-",
		"TITLE": "Response time degraded on checkout", "RECORDED": "OPEN",
	}))
	g.Expect(byID["P-2"]).To(Equal(map[string]string{
		"PROBLEM": "P-2", "STATUS": "CLOSED", "SEVERITY": "AVAILABILITY", "IMPACT": "INFRASTRUCTURE",
		"STARTED": rfc3339(f.problems["P-2"].StartTime), "ENDED": rfc3339(f.problems["P-2"].EndTime),
		"TITLE": "Host web01 unavailable", "RECORDED": "OPEN,RESOLVED",
	}))
	g.Expect(byID["P-3"]["RECORDED"]).To(Equal("-"), "P-3 is recorded by another target only")
	g.Expect(byID["P-4"]["RECORDED"]).To(Equal("-"))

	requests := f.listRequests()
	g.Expect(requests).To(HaveLen(3))
	g.Expect(requests[0].Query.Get("from")).To(Equal("now-1h"))
	g.Expect(requests[0].Query.Get("pageSize")).To(Equal("2"))
	for _, r := range requests[1:] {
		g.Expect(r.Query.Get("nextPageKey")).NotTo(BeEmpty())
	}
}

func TestPollJSONWeek(t *testing.T) {
	g := NewWithT(t)
	f := newPollFixture(t)

	var out bytes.Buffer
	g.Expect(cli.Poll(context.Background(), k8s, cli.PollOptions{
		Target: keyOf(f.target), RelativeTime: "week", Output: cli.OutputJSON,
	}, &out)).To(Succeed())

	// The rows of the dashboard's /api/feed, as a user's script reads them.
	var got []feed.Row
	g.Expect(json.Unmarshal(out.Bytes(), &got)).To(Succeed(), out.String())
	g.Expect(got).To(HaveLen(6), "a week holds the problem of three days ago too")
	byID := map[string]feed.Row{}
	for _, p := range got {
		byID[p.DisplayID] = p
	}
	p2 := f.problems["P-2"]
	g.Expect(byID["P-2"]).To(And(
		HaveField("ProblemID", p2.ProblemID), HaveField("Status", "CLOSED"), HaveField("Severity", "AVAILABILITY"),
		HaveField("Impact", "INFRASTRUCTURE"), HaveField("Title", p2.Title),
		HaveField("URL", f.dt.URL()+"/#problems/problemdetails;pid="+p2.ProblemID),
		HaveField("Events", Equal([]feed.EventRef{
			{Name: problemhookv1alpha1.EventName("tenant", p2.ProblemID, problemhookv1alpha1.StateOpen), State: "OPEN"},
			{Name: problemhookv1alpha1.EventName("tenant", p2.ProblemID, problemhookv1alpha1.StateResolved), State: "RESOLVED"},
		})),
	))
	g.Expect(byID["P-2"].Start).To(BeTemporally("==", time.UnixMilli(p2.StartTime)))
	g.Expect(*byID["P-2"].End).To(BeTemporally("==", time.UnixMilli(p2.EndTime)))
	g.Expect(byID["P-1"].End).To(BeNil(), "an open problem has not ended")
	g.Expect(byID["P-1"].Events).To(ConsistOf(HaveField("Name", f.events["P-1"][0])))
	g.Expect(out.String()).To(ContainSubstring(`"events": []`), "nothing recorded is [], not null")
	g.Expect(byID["P-6"].Events).To(BeEmpty())
	g.Expect(byID["P-3"].Events).To(BeEmpty(), "P-3 is recorded by another target only")

	requests := f.listRequests()
	g.Expect(requests).To(HaveLen(1))
	g.Expect(requests[0].Query.Get("from")).To(Equal("now-1w"))
	g.Expect(requests[0].Query.Get("pageSize")).To(Equal("500"))
}

func TestPollRelativeTimes(t *testing.T) {
	g := NewWithT(t)
	f := newPollFixture(t)
	want := map[string]string{
		"": "now-1h", "hour": "now-1h", "2hours": "now-2h", "6hours": "now-6h",
		"day": "now-1d", "week": "now-1w", "month": "now-30d",
	}
	for relativeTime, from := range want {
		before := len(f.listRequests())
		g.Expect(cli.Poll(context.Background(), k8s, cli.PollOptions{Target: keyOf(f.target), RelativeTime: relativeTime}, &bytes.Buffer{})).To(Succeed())
		requests := f.listRequests()
		g.Expect(requests).To(HaveLen(before + 1))
		g.Expect(requests[before].Query.Get("from")).To(Equal(from), "relative time %q", relativeTime)
	}
}

func TestPollErrors(t *testing.T) {
	ctx := context.Background()
	ns := controlplane.NewNamespace(t, k8s, "cli-poll-errors")
	plain := newTarget(t, ns, "plain", problemhookv1alpha1.FormatDynatrace)
	tokenless := newTarget(t, ns, "tokenless", problemhookv1alpha1.FormatDynatrace, func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{
			URL: "https://abc12345.live.dynatrace.com", TokenSecretRef: problemhookv1alpha1.SecretKeyReference{Name: "missing"}}
	})
	cases := []struct {
		name  string
		opts  cli.PollOptions
		check func(g Gomega, err error)
	}{{
		name: "unknown target",
		opts: cli.PollOptions{Target: types.NamespacedName{Namespace: ns, Name: "nope"}},
		check: func(g Gomega, err error) {
			g.Expect(err).To(MatchError(fmt.Sprintf("NotificationTarget %s/nope not found", ns)))
		},
	}, {
		name: "target without spec.dynatrace",
		opts: cli.PollOptions{Target: keyOf(plain)},
		check: func(g Gomega, err error) {
			g.Expect(err).To(MatchError(dtconn.ErrNoConnection))
			g.Expect(err.Error()).To(ContainSubstring(ns + "/plain has no Dynatrace API connection (spec.dynatrace)"))
		},
	}, {
		name: "token Secret missing",
		opts: cli.PollOptions{Target: keyOf(tokenless)},
		check: func(g Gomega, err error) {
			var refErr *secretref.Error
			g.Expect(errors.As(err, &refErr)).To(BeTrue(), "%v", err)
			g.Expect(err.Error()).To(Equal(fmt.Sprintf("spec.dynatrace.tokenSecretRef: Secret %s/missing not found", ns)))
		},
	}, {
		name: "bad relative time",
		opts: cli.PollOptions{Target: keyOf(plain), RelativeTime: "fortnight"},
		check: func(g Gomega, err error) {
			g.Expect(err).To(MatchError(`relative time "fortnight" is not one of hour, 2hours, 6hours, day, week, month`))
		},
	}, {
		name: "bad output format",
		opts: cli.PollOptions{Target: keyOf(plain), Output: "yaml"},
		check: func(g Gomega, err error) {
			g.Expect(err).To(MatchError(`unknown output format "yaml": use table or json`))
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			var out bytes.Buffer
			err := cli.Poll(ctx, k8s, tc.opts, &out)
			g.Expect(err).To(HaveOccurred())
			tc.check(g, err)
			g.Expect(out.String()).To(BeEmpty())
		})
	}
}

func TestMainUsageErrors(t *testing.T) {
	g := NewWithT(t)
	g.Expect(cli.IsCommand("poll")).To(BeTrue())
	g.Expect(cli.IsCommand("send-test")).To(BeTrue())
	g.Expect(cli.IsCommand("--leader-elect")).To(BeFalse())

	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"poll", "--target", "tenant"}, 2, `--target must be <namespace>/<name>, got "tenant"`},
		{[]string{"poll", "--target", "ns/a/b"}, 2, `--target must be <namespace>/<name>, got "ns/a/b"`},
		{[]string{"poll", "--target", "Prod/tenant"}, 2, `namespace "Prod" is not valid`},
		{[]string{"poll"}, 2, "--target is required"},
		{[]string{"poll", "--target", "ns/tenant", "--relative-time", "fortnight"}, 2,
			`relative time "fortnight" is not one of hour, 2hours, 6hours, day, week, month`},
		{[]string{"poll", "--target", "ns/tenant", "-o", "yaml"}, 2, `unknown output format "yaml"`},
		{[]string{"poll", "--target", "ns/tenant", "hour"}, 2, `unexpected argument "hour"`},
		{[]string{"poll", "--since", "1h"}, 2, "flag provided but not defined: -since"},
		{[]string{"send-test", "--target", "ns/tenant", "--receiver-url", "localhost:9292"}, 2, "--receiver-url"},
		{[]string{"send-test", "--target", "ns/tenant", "--receiver-url", "http://u:p@localhost:9292"}, 2, "must not hold credentials"},
		{[]string{"serve"}, 2, `unknown command "serve"`},
		{nil, 2, "Commands:"},
		{[]string{"poll", "-h"}, 0, "-relative-time"},
		{[]string{"send-test", "--help"}, 0, "-receiver-url"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := cli.Main(context.Background(), tc.args, &stdout, &stderr)
		g.Expect(code).To(Equal(tc.code), "%q: %s", tc.args, stderr.String())
		g.Expect(stderr.String()).To(ContainSubstring(tc.stderr), "%q", tc.args)
		g.Expect(stdout.String()).To(BeEmpty(), "%q", tc.args)
	}
}

func TestMainPollWithKubeconfig(t *testing.T) {
	g := NewWithT(t)
	f := newPollFixture(t)
	path := kubeconfig(t)
	target := f.target.Namespace + "/" + f.target.Name

	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"poll", "--kubeconfig", path, "--target", target, "-o", "json"}, &stdout, &stderr)
	g.Expect(code).To(Equal(0), stderr.String())
	var got []feed.Row
	g.Expect(json.Unmarshal(stdout.Bytes(), &got)).To(Succeed(), stdout.String())
	g.Expect(got).To(HaveLen(5))

	stdout.Reset()
	stderr.Reset()
	code = cli.Main(context.Background(), []string{"poll", "--kubeconfig", path, "--target", f.target.Namespace + "/nope"}, &stdout, &stderr)
	g.Expect(code).To(Equal(1))
	g.Expect(stderr.String()).To(Equal(fmt.Sprintf("error: NotificationTarget %s/nope not found\n", f.target.Namespace)))
}

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
