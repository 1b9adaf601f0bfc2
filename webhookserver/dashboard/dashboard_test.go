package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
	"github.com/problemhook/problemhook/internal/feed"
	"github.com/problemhook/problemhook/test/harness/receivertest"
	"github.com/problemhook/problemhook/webhookserver/dashboard"
)

const dtToken = "dt0c01.dashboard-test"

// newDashboard serves a dashboard that reads the manager's cache.
func newDashboard(t testing.TB, mutate ...func(*dashboard.Server)) *httptest.Server {
	t.Helper()
	d := &dashboard.Server{Cache: env.Receiver.Cache, Dynatrace: &dtconn.Clients{}}
	for _, m := range mutate {
		m(d)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and returns the status and body.
func get(t *testing.T, srv *httptest.Server, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// getJSON fetches path, expects status, and decodes the body into v.
func getJSON(g Gomega, srv *httptest.Server, path string, status int, v any) {
	resp, err := http.Get(srv.URL + path)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	g.Expect(resp.StatusCode).To(Equal(status), path)
	g.Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
	g.Expect(json.NewDecoder(resp.Body).Decode(v)).To(Succeed())
}

// withDynatrace connects a target to dt, with a token Secret.
func withDynatrace(t *testing.T, dt *dynatracetest.Server) func(*problemhookv1alpha1.NotificationTarget) {
	return func(nt *problemhookv1alpha1.NotificationTarget) {
		if err := env.Client.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nt.Namespace, Name: "dynatrace-api"},
			Data: map[string][]byte{"token": []byte(dtToken)}}); err != nil {
			t.Fatal(err)
		}
		nt.Spec.Dynatrace = &problemhookv1alpha1.DynatraceConnection{
			URL: dt.URL(), TokenSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "dynatrace-api"},
		}
	}
}

func newFakeDynatrace(t *testing.T) *dynatracetest.Server {
	t.Helper()
	dt := dynatracetest.NewServer(dynatracetest.ServerOptions{})
	t.Cleanup(dt.Close)
	dt.AddToken(dtToken, "problems.read")
	return dt
}

// storeEvent stores an event for tg as the receiver would, received at.
func storeEvent(t *testing.T, tg receivertest.Target, n int, state problemhookv1alpha1.ProblemState, at time.Time) *problemhookv1alpha1.ProblemEvent {
	t.Helper()
	ev := problemhookv1alpha1.NewProblemEvent(tg.Obj, &problemhookv1alpha1.ProblemEventSpec{
		Source: problemhookv1alpha1.FormatDynatrace, ProblemID: fmt.Sprintf("-%d_1669823466223V2", 1000+n), DisplayID: fmt.Sprint(n),
		State: state, Title: fmt.Sprintf("Problem %d", n), ReceivedAt: metav1.NewTime(at),
	})
	if err := env.Client.Create(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// The events table lists the cached events newest first,
// a page at a time, filtered by target, state and phase; bad filters get
// a 400 that says what is wrong.
func TestDashboardEventsTable(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	other := env.NewTarget(t, problemhookv1alpha1.FormatGuance)
	srv := newDashboard(t)
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := range 60 {
		state := problemhookv1alpha1.StateOpen
		if i%3 == 0 {
			state = problemhookv1alpha1.StateResolved
		}
		storeEvent(t, tg, i, state, t0.Add(time.Duration(i)*time.Minute))
	}
	failed := storeEvent(t, other, 99, problemhookv1alpha1.StateOpen, t0)
	failed.Status.Phase = problemhookv1alpha1.PhaseFailed
	g.Expect(env.Client.Status().Update(context.Background(), failed)).To(Succeed())

	var page dashboard.EventList
	g.Eventually(func(g Gomega) {
		getJSON(g, srv, "/api/events?target="+tg.NS+"/"+tg.Name, http.StatusOK, &page)
		g.Expect(page.Total).To(Equal(60))
	}).Should(Succeed())
	g.Expect(page.Pages).To(Equal(2))
	g.Expect(page.Items).To(HaveLen(dashboard.EventsPageSize))
	g.Expect(page.Items[0]).To(And(HaveField("DisplayID", "59"), HaveField("Origin", "Notification"), HaveField("Phase", "Pending")))
	g.Expect(page.Items[0].ReceivedAt).To(BeTemporally("==", t0.Add(59*time.Minute)))
	for i := 1; i < len(page.Items); i++ {
		g.Expect(page.Items[i].ReceivedAt).To(BeTemporally("<", page.Items[i-1].ReceivedAt), "newest first")
	}
	getJSON(g, srv, "/api/events?target="+tg.NS+"/"+tg.Name+"&page=2", http.StatusOK, &page)
	g.Expect(page.Items).To(HaveLen(10))
	g.Expect(page.Items[9].DisplayID).To(Equal("0"))

	getJSON(g, srv, "/api/events?target="+tg.NS+"/"+tg.Name+"&state=resolved", http.StatusOK, &page)
	g.Expect(page.Total).To(Equal(20))
	g.Eventually(func(g Gomega) {
		getJSON(g, srv, "/api/events?phase=Failed&target="+other.NS+"/"+other.Name, http.StatusOK, &page)
		g.Expect(page.Items).To(ConsistOf(HaveField("Name", failed.Name)))
	}).Should(Succeed())

	for query, want := range map[string]string{
		"state=CLOSED":      `state \"CLOSED\" is not one of OPEN, RESOLVED`,
		"phase=Done":        `phase \"Done\" is not one of Pending, Waiting, AwaitingApproval, Running, Succeeded, Failed, Skipped`,
		"page=0":            `page \"0\" is not a positive number`,
		"target=just-name":  `target \"just-name\" is not namespace/name`,
		"page=1%3Bdrop":     `page \"1;drop\" is not a positive number`,
		"target=%2Fno-name": `target \"/no-name\" is not namespace/name`,
	} {
		status, body, _ := get(t, srv, "/api/events?"+query)
		g.Expect(status).To(Equal(http.StatusBadRequest), query)
		g.Expect(body).To(ContainSubstring(want), query)
	}

	// The page: rows, the filter kept, a link to the older page.
	status, body, _ := get(t, srv, "/events?target="+tg.NS+"/"+tg.Name)
	g.Expect(status).To(Equal(http.StatusOK))
	g.Expect(body).To(ContainSubstring("60 events, page 1 of 2, newest first."))
	g.Expect(body).To(ContainSubstring(`<a href="/events/` + tg.NS + `/`))
	g.Expect(strings.ToLower(body)).To(ContainSubstring(`href="/events?page=2&amp;target=` + tg.NS + `%2f` + tg.Name + `"`))
	g.Expect(body).To(ContainSubstring("2026-11-21 10:59:00 UTC"))
	status, body, _ = get(t, srv, "/events?state=CLOSED")
	g.Expect(status).To(Equal(http.StatusBadRequest))
	g.Expect(body).To(ContainSubstring(`state &#34;CLOSED&#34; is not one of OPEN, RESOLVED`))
}

// The detail page shows the event, its actions with their exit codes and
// Jobs, its Dynatrace details and its payload as nested tables, with
// entity ids linked to Dynatrace; the same object is served as JSON.
func TestDashboardEventDetail(t *testing.T) {
	g := NewWithT(t)
	dt := newFakeDynatrace(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace, withDynatrace(t, dt))
	srv := newDashboard(t)

	body := `{"State":"OPEN","ProblemID":"1234","PID":"-6150203450926486413_1669823466223V2","ProblemTitle":"CPU <saturation>",` +
		`"ImpactedEntities":[{"entity":"HOST-0000000000000001","name":"web01","type":"HOST"}],"Details":{"startTime":1763719200000}}`
	r := receivertest.Post(t, tg, body)
	g.Expect(r.Status).To(Equal(http.StatusAccepted))
	var ev problemhookv1alpha1.ProblemEvent
	_, name, _ := strings.Cut(r.Body.ProblemEvent, "/")
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: tg.NS, Name: name}, &ev)).To(Succeed())
	exit := int32(3)
	ev.Status.Phase = problemhookv1alpha1.PhaseFailed
	ev.Status.Actions = []problemhookv1alpha1.ActionStatus{{
		Route: "legacy-incident", Action: "incident", Type: problemhookv1alpha1.ActionTypeJob, Entity: "HOST-0000000000000001",
		State: problemhookv1alpha1.ActionFailed, Job: "legacy-incident-incident-7f3a9c", ExitCode: &exit, Attempts: 1,
		Message: "Exited with code 3", Output: "checking disk\n<no space> left on /var",
	}}
	ev.Status.Details = &problemhookv1alpha1.ProblemDetails{DisplayID: "P-1234", Status: "OPEN", Title: "CPU saturation", RootCause: "web01 (HOST-0000000000000001)"}
	g.Expect(env.Client.Status().Update(context.Background(), &ev)).To(Succeed())

	path := "/events/" + tg.NS + "/" + ev.Name
	g.Eventually(func(g Gomega) {
		status, page, _ := get(t, srv, path)
		g.Expect(status).To(Equal(http.StatusOK))
		g.Expect(page).To(ContainSubstring("legacy-incident-incident-7f3a9c"))
	}).Should(Succeed())
	_, page, _ := get(t, srv, path)
	g.Expect(page).To(ContainSubstring("CPU &lt;saturation&gt;"), "titles are escaped")
	g.Expect(page).NotTo(ContainSubstring("CPU <saturation>"))
	g.Expect(page).To(ContainSubstring(`<a href="` + dt.URL() + `/ui/entity/HOST-0000000000000001" rel="noreferrer">HOST-0000000000000001</a>`))
	g.Expect(page).To(ContainSubstring(`<a href="` + dt.URL() + `/#problems/problemdetails;pid=-6150203450926486413_1669823466223V2"`))
	g.Expect(page).To(ContainSubstring("<td>3</td>"), "the exit code")
	g.Expect(page).To(ContainSubstring("Exited with code 3"))
	g.Expect(page).To(ContainSubstring(`<pre class="output">checking disk`+"\n"+`&lt;no space&gt; left on /var</pre>`), "what the Job said, escaped")
	g.Expect(page).To(ContainSubstring("web01 (HOST-0000000000000001)"), "the Dynatrace details")
	g.Expect(page).To(ContainSubstring("<th>startTime</th><td>2025-11-21 10:00:00 UTC (1763719200000)</td>"), "epoch milliseconds in the payload are dates")

	var got problemhookv1alpha1.ProblemEvent
	getJSON(g, srv, "/api"+path, http.StatusOK, &got)
	g.Expect(got.Spec.Title).To(Equal("CPU <saturation>"))
	g.Expect(got.Status.Actions).To(HaveExactElements(HaveField("Output", "checking disk\n<no space> left on /var")))
	g.Expect(got.ManagedFields).To(BeEmpty())

	status, page, _ := get(t, srv, "/events/"+tg.NS+"/no-such-event")
	g.Expect(status).To(Equal(http.StatusNotFound))
	g.Expect(page).To(ContainSubstring("no ProblemEvent " + tg.NS + "/no-such-event"))
	var fail map[string]string
	getJSON(g, srv, "/api/events/"+tg.NS+"/no-such-event", http.StatusNotFound, &fail)
	g.Expect(fail).To(HaveKeyWithValue("error", "no ProblemEvent "+tg.NS+"/no-such-event"))
}

// The feed lists a target's problems of a time frame from the Dynatrace
// API and marks those problemhook recorded.
func TestDashboardFeed(t *testing.T) {
	g := NewWithT(t)
	dt := newFakeDynatrace(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace, withDynatrace(t, dt))
	plain := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	srv := newDashboard(t)

	now := time.Now()
	for i, age := range []time.Duration{10 * time.Minute, 3 * time.Hour, 5 * 24 * time.Hour} {
		dt.AddProblem(dynatrace.Problem{
			ProblemID: fmt.Sprintf("-%d_1669823466223V2", 1000+i), DisplayID: fmt.Sprintf("P-%d", i), Title: fmt.Sprintf("Problem %d", i),
			Status: "OPEN", SeverityLevel: "ERROR", ImpactLevel: "SERVICES", StartTime: now.Add(-age).UnixMilli(), EndTime: -1,
		})
	}
	recorded := storeEvent(t, tg, 0, problemhookv1alpha1.StateOpen, now)

	var got dashboard.Feed
	g.Eventually(func(g Gomega) {
		getJSON(g, srv, "/api/feed/"+tg.NS+"/"+tg.Name+"?relativeTime=week", http.StatusOK, &got)
		g.Expect(got.Recorded).To(Equal(1))
	}).Should(Succeed())
	g.Expect(got.From).To(Equal("now-1w"))
	g.Expect(got.Problems).To(HaveLen(3))
	for _, p := range got.Problems {
		if p.DisplayID == "P-0" {
			g.Expect(p.Events).To(ConsistOf(feed.EventRef{Name: recorded.Name, State: "OPEN"}))
		} else {
			g.Expect(p.Events).To(BeEmpty())
		}
	}
	var last dynatracetest.Request
	for _, r := range dt.Requests() {
		if strings.HasSuffix(r.Path, "/problems") && !r.CredentialCheck() {
			last = r
		}
	}
	g.Expect(last.Query.Get("from")).To(Equal("now-1w"))

	getJSON(g, srv, "/api/feed/"+tg.NS+"/"+tg.Name, http.StatusOK, &got)
	g.Expect(got.RelativeTime).To(Equal("hour"))
	g.Expect(got.Problems).To(ConsistOf(HaveField("DisplayID", "P-0")))

	status, page, _ := get(t, srv, "/feed/"+tg.NS+"/"+tg.Name+"?relativeTime=6hours")
	g.Expect(status).To(Equal(http.StatusOK))
	g.Expect(page).To(ContainSubstring("2 problems from now-6h to now"))
	g.Expect(page).To(ContainSubstring(`<a href="/events/` + tg.NS + `/` + recorded.Name + `">OPEN</a>`))
	for _, rt := range []string{"hour", "2hours", "6hours", "day", "week", "month"} {
		g.Expect(page).To(ContainSubstring(`name="relativeTime" value="` + rt + `"`))
	}

	var fail map[string]string
	getJSON(g, srv, "/api/feed/"+tg.NS+"/"+tg.Name+"?relativeTime=year", http.StatusBadRequest, &fail)
	g.Expect(fail["error"]).To(Equal(`relative time "year" is not one of hour, 2hours, 6hours, day, week, month`))
	getJSON(g, srv, "/api/feed/"+plain.NS+"/"+plain.Name, http.StatusNotFound, &fail)
	g.Expect(fail["error"]).To(ContainSubstring("has no Dynatrace API connection"))
	getJSON(g, srv, "/api/feed/"+tg.NS+"/nobody", http.StatusNotFound, &fail)
	g.Expect(fail["error"]).To(Equal("no NotificationTarget " + tg.NS + "/nobody"))
	dt.FailNext(http.MethodGet, "/problems", dynatrace.DefaultMaxAttempts, http.StatusForbidden, "")
	getJSON(g, srv, "/api/feed/"+tg.NS+"/"+tg.Name, http.StatusBadGateway, &fail)
	g.Expect(fail["error"]).To(ContainSubstring("403"))
	g.Expect(fail["error"]).NotTo(ContainSubstring(dtToken))
}

// The overview counts what the receiver answered, lists targets with their
// Ready state and webhook URL, and the receiver Service's endpoints.
func TestDashboardOverview(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	srv := newDashboard(t)

	var before dashboard.Overview
	getJSON(g, srv, "/api/overview", http.StatusOK, &before)
	g.Expect(before.Version).NotTo(BeEmpty())
	g.Expect(before.ReplicasNote).To(Equal("Not running behind a receiver Service: only this process receives."))
	g.Expect(receivertest.Post(t, tg, receivertest.MinimalDynatrace).Status).To(Equal(http.StatusAccepted))
	g.Expect(receivertest.Post(t, tg, receivertest.MinimalDynatrace).Status).To(Equal(http.StatusOK))
	g.Expect(receivertest.Send(t, receivertest.Request{URL: tg.URL, Body: receivertest.MinimalDynatrace, Auth: receivertest.Basic(receivertest.User, "wrong")}).Status).To(Equal(http.StatusUnauthorized))

	var after dashboard.Overview
	g.Eventually(func(g Gomega) {
		getJSON(g, srv, "/api/overview", http.StatusOK, &after)
		g.Expect(after.Targets).To(ContainElement(And(
			HaveField("Namespace", tg.NS), HaveField("Name", tg.Name), HaveField("Ready", "True"), HaveField("Events", 1),
			HaveField("WebhookURL", "http://receiver.test:9292/hooks/"+tg.NS+"/"+tg.Name),
		)))
	}).Should(Succeed())
	g.Expect(after.Notifications.Stored - before.Notifications.Stored).To(BeNumerically(">=", 1))
	g.Expect(after.Notifications.Duplicate - before.Notifications.Duplicate).To(BeNumerically(">=", 1))
	g.Expect(after.Notifications.Rejected - before.Notifications.Rejected).To(BeNumerically(">=", 1))
	g.Expect(after.Notifications.Received - before.Notifications.Received).To(BeNumerically(">=", 3))

	status, page, _ := get(t, srv, "/")
	g.Expect(status).To(Equal(http.StatusOK))
	g.Expect(page).To(ContainSubstring(`<a href="/events?target=` + tg.NS + `/` + tg.Name + `">`))
	g.Expect(page).To(ContainSubstring("http://receiver.test:9292/hooks/" + tg.NS + "/" + tg.Name))
	g.Expect(page).To(ContainSubstring(`<span class="muted">by hand</span>`), "a target that does not register itself")

	// A target that registers itself shows where its registration stands.
	g.Eventually(func() error {
		var nt problemhookv1alpha1.NotificationTarget
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: tg.NS, Name: tg.Name}, &nt); err != nil {
			return err
		}
		meta.SetStatusCondition(&nt.Status.Conditions, metav1.Condition{Type: problemhookv1alpha1.ConditionRegistered, Status: metav1.ConditionTrue,
			Reason: problemhookv1alpha1.ReasonRegistered, Message: "Dynatrace posts problems of alerting profile Default to https://ag.example/hooks"})
		return env.Client.Status().Update(context.Background(), &nt)
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		getJSON(g, srv, "/api/overview", http.StatusOK, &after)
		g.Expect(after.Targets).To(ContainElement(And(HaveField("Name", tg.Name), HaveField("Registered", "True"),
			HaveField("RegisteredMessage", "Dynatrace posts problems of alerting profile Default to https://ag.example/hooks"))))
	}).Should(Succeed())
	_, page, _ = get(t, srv, "/")
	g.Expect(page).To(ContainSubstring(`<span class="good">True</span><br><small>Dynatrace posts problems of alerting profile Default to https://ag.example/hooks</small>`))

	// Behind a Service, its endpoints are the replicas.
	ready, notReady := true, false
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: tg.NS, Name: "receiver-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: "problemhook-receiver"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "problemhook-a"}},
			{Addresses: []string{"10.0.0.8"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "problemhook-b"}},
		},
	}
	g.Expect(env.Client.Create(context.Background(), slice)).To(Succeed())
	behindService := newDashboard(t, func(d *dashboard.Server) {
		d.APIReader, d.Namespace, d.Service = env.Client, tg.NS, "problemhook-receiver"
	})
	getJSON(g, behindService, "/api/overview", http.StatusOK, &after)
	g.Expect(after.Replicas).To(Equal([]dashboard.Replica{
		{Pod: "problemhook-a", Address: "10.0.0.7", Ready: true},
		{Pod: "problemhook-b", Address: "10.0.0.8", Ready: false},
	}))
}

// Nothing on the dashboard changes anything: only GET is served, and its
// pages load nothing from elsewhere.
func TestDashboardIsReadOnly(t *testing.T) {
	g := NewWithT(t)
	srv := newDashboard(t)
	for _, path := range []string{"/", "/events", "/api/events", "/api/overview"} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader("{}"))
		g.Expect(err).NotTo(HaveOccurred())
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusMethodNotAllowed), path)
	}
	status, body, header := get(t, srv, "/")
	g.Expect(status).To(Equal(http.StatusOK))
	g.Expect(header.Get("Content-Security-Policy")).To(HavePrefix("default-src 'none'"))
	g.Expect(header.Get("X-Content-Type-Options")).To(Equal("nosniff"))
	g.Expect(body).NotTo(ContainSubstring("<script"))
	g.Expect(body).To(ContainSubstring(`<link rel="stylesheet" href="/static/style.css">`))
	status, css, header := get(t, srv, "/static/style.css")
	g.Expect(status).To(Equal(http.StatusOK))
	g.Expect(header.Get("Content-Type")).To(HavePrefix("text/css"))
	g.Expect(css).NotTo(ContainSubstring("http"), "nothing from elsewhere")
	status, _, _ = get(t, srv, "/no/such/page")
	g.Expect(status).To(Equal(http.StatusNotFound))
}

// The dashboard answers only to its own names: a page on another site
// whose name was made to resolve to 127.0.0.1 (DNS rebinding) cannot read
// it through an admin's kubectl port-forward.
func TestDashboardAnswersOnlyToItsOwnHost(t *testing.T) {
	g := NewWithT(t)
	srv := newDashboard(t, func(d *dashboard.Server) { d.Hosts = []string{"problemhook.example.com"} })
	for host, want := range map[string]int{
		"localhost:9293":               http.StatusOK,
		"127.0.0.1:9293":               http.StatusOK,
		"[::1]:9293":                   http.StatusOK,
		"LOCALHOST":                    http.StatusOK,
		"problemhook.example.com":      http.StatusOK,
		"attacker.example:9293":        http.StatusMisdirectedRequest,
		"127.0.0.1.nip.io:9293":        http.StatusMisdirectedRequest,
		"problemhook.example.com.evil": http.StatusMisdirectedRequest,
	} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/overview", nil)
		g.Expect(err).NotTo(HaveOccurred())
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.StatusCode).To(Equal(want), host)
		if want == http.StatusMisdirectedRequest {
			g.Expect(string(body)).To(ContainSubstring("the dashboard does not answer to host"), host)
		}
	}
}

// The event page shows a ladder's runs that wait, await approval or were
// skipped, with why, until when, and who decided.
func TestDashboardEventShowsALadder(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	srv := newDashboard(t)
	ev := storeEvent(t, tg, 7, problemhookv1alpha1.StateOpen, time.Now())
	at := func(s string) *metav1.Time {
		tm, err := time.Parse(time.RFC3339, s)
		g.Expect(err).NotTo(HaveOccurred())
		return &metav1.Time{Time: tm}
	}
	run := func(action string, state problemhookv1alpha1.ActionState, msg string) problemhookv1alpha1.ActionStatus {
		return problemhookv1alpha1.ActionStatus{Route: "ladder", Action: action, Type: problemhookv1alpha1.ActionTypeJob, State: state, Message: msg}
	}
	scaleOut := run("scale-out", problemhookv1alpha1.ActionPending, "Waiting until 2026-12-06T12:04:10Z: delay 5m0s after the action before it settled")
	scaleOut.NextAttemptTime = at("2026-12-06T12:04:10Z")
	page := run("page", problemhookv1alpha1.ActionAwaitingApproval, "Awaiting approval until 2026-12-06T12:34:10Z: manager approve "+tg.NS+"/"+ev.Name+" page")
	page.NextAttemptTime = at("2026-12-06T12:34:10Z")
	page.Approval = &problemhookv1alpha1.ApprovalStatus{RequestedTime: *at("2026-12-06T12:04:10Z")}
	drain := run("drain", problemhookv1alpha1.ActionSkipped, "Skipped: rejected by alice; nothing was created or sent")
	drain.Approval = &problemhookv1alpha1.ApprovalStatus{RequestedTime: *at("2026-12-06T12:04:10Z"), Decision: problemhookv1alpha1.ApprovalRejected,
		By: "alice", Time: at("2026-12-06T12:05:00Z")}
	ev.Status.Phase = problemhookv1alpha1.PhaseAwaitingApproval
	ev.Status.Actions = []problemhookv1alpha1.ActionStatus{run("restart", problemhookv1alpha1.ActionSucceeded, "Job succeeded"), scaleOut, page, drain}
	g.Expect(env.Client.Status().Update(context.Background(), ev)).To(Succeed())

	path := "/events/" + tg.NS + "/" + ev.Name
	var body string
	g.Eventually(func(g Gomega) {
		var status int
		status, body, _ = get(t, srv, path)
		g.Expect(status).To(Equal(http.StatusOK))
		g.Expect(body).To(ContainSubstring(`class="phase-awaitingapproval">AwaitingApproval`))
	}).Should(Succeed())
	g.Expect(body).To(ContainSubstring("Waiting until 2026-12-06T12:04:10Z: delay 5m0s after the action before it settled"))
	g.Expect(body).To(ContainSubstring("manager approve " + tg.NS + "/" + ev.Name + " page"))
	g.Expect(body).To(MatchRegexp(`AwaitingApproval<br><small>until [^<]+</small>`))
	g.Expect(body).To(ContainSubstring(`class="phase-skipped">Skipped<br><small class="approval">Rejected by alice `))
	g.Expect(body).To(ContainSubstring("Skipped: rejected by alice; nothing was created or sent"))
}
