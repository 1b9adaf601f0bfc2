package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/cli"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/internal/feed"
	"github.com/problemhook/problemhook/internal/secretref"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

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
			URL: dt.URL(), TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "dynatrace"}}
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
		// The target controller of this suite tries the target's token
		// when the target is created, whenever that happens to come.
		if strings.HasSuffix(r.Path, "/api/v2/problems") && !r.CredentialCheck() {
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
			URL: "https://abc12345.live.dynatrace.com", TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "missing"}}
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
