package webhookserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/webhookserver"
)

const (
	minimalDynatrace = `{"State":"OPEN","ProblemID":"1234","PID":"-6150203450926486413_1669823466223V2"}`
	user             = "dynatrace"
	password         = "s3cret"
	token            = "guance-token"
)

// target is a NotificationTarget under test and how to reach it.
type target struct {
	ns, name string
	obj      *problemhookv1alpha1.NotificationTarget
}

func (tg target) url() string { return server.URL + problemhookv1alpha1.WebhookPath(tg.ns, tg.name) }

// newTarget creates a ready NotificationTarget of format with basic auth
// (Dynatrace) or bearer auth (Guance), after mutate has had its say.
func newTarget(t *testing.T, format problemhookv1alpha1.PayloadFormat, mutate ...func(*problemhookv1alpha1.NotificationTarget)) target {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"},
		Data: map[string][]byte{"username": []byte(user), "password": []byte(password), "token": []byte(token)}}
	g.Expect(k8s.Create(ctx, secret)).To(Succeed())
	nt := &problemhookv1alpha1.NotificationTarget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: strings.ToLower(string(format))},
		Spec:       problemhookv1alpha1.NotificationTargetSpec{Format: format},
	}
	if format == problemhookv1alpha1.FormatGuance {
		nt.Spec.Auth.Bearer = &problemhookv1alpha1.BearerAuth{SecretRef: problemhookv1alpha1.SecretKeyReference{Name: "auth"}}
	} else {
		nt.Spec.Auth.Basic = &problemhookv1alpha1.BasicAuth{SecretRef: problemhookv1alpha1.LocalObjectReference{Name: "auth"}}
	}
	for _, m := range mutate {
		m(nt)
	}
	g.Expect(k8s.Create(ctx, nt)).To(Succeed())
	if !nt.Spec.Suspend {
		eventuallyReady(t, nt)
	}
	return target{ns: ns, name: nt.Name, obj: nt}
}

// eventuallyReady waits until the receiver's cache sees nt as Ready.
func eventuallyReady(t *testing.T, nt *problemhookv1alpha1.NotificationTarget) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		var got problemhookv1alpha1.NotificationTarget
		g.Expect(receiver.Cache.Get(context.Background(), client.ObjectKeyFromObject(nt), &got)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, problemhookv1alpha1.ConditionReady)).To(BeTrue())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// reply is the receiver's answer to one request.
type reply struct {
	status int
	header http.Header
	body   struct {
		Result       string `json:"result"`
		ProblemEvent string `json:"problemEvent"`
		Code         int    `json:"code"`
		Message      string `json:"message"`
	}
}

type request struct {
	method, url, contentType, body string
	auth                           func(*http.Request)
	// client sends the request; http.DefaultClient when nil.
	client *http.Client
}

func basic(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func send(t *testing.T, rq request) reply {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	if rq.contentType == "" {
		rq.contentType = "application/json"
	}
	req, err := http.NewRequest(rq.method, rq.url, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", rq.contentType)
	if rq.auth != nil {
		rq.auth(req)
	}
	c := rq.client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(data, &r.body); err != nil {
		t.Fatalf("answer is not JSON: %q", data)
	}
	return r
}

func post(t *testing.T, tg target, body string) reply {
	t.Helper()
	auth := basic(user, password)
	if tg.obj.Spec.Format == problemhookv1alpha1.FormatGuance {
		auth = bearer(token)
	}
	return send(t, request{url: tg.url(), body: body, auth: auth})
}

func events(t *testing.T, ns string) []problemhookv1alpha1.ProblemEvent {
	t.Helper()
	var list problemhookv1alpha1.ProblemEventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func testdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../internal/payload/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestStoresEachFormat(t *testing.T) {
	cases := []struct {
		name   string
		format problemhookv1alpha1.PayloadFormat
		body   func(t *testing.T) string
		check  func(g Gomega, spec problemhookv1alpha1.ProblemEventSpec)
	}{{
		name: "minimal Dynatrace payload", format: problemhookv1alpha1.FormatDynatrace,
		body: func(*testing.T) string { return minimalDynatrace },
		check: func(g Gomega, spec problemhookv1alpha1.ProblemEventSpec) {
			g.Expect(spec.ProblemID).To(Equal("-6150203450926486413_1669823466223V2"))
			g.Expect(spec.DisplayID).To(Equal("1234"))
			g.Expect(spec.State).To(Equal(problemhookv1alpha1.StateOpen))
			g.Expect(spec.Test).To(BeFalse())
			g.Expect(spec.Payload).To(Equal(minimalDynatrace))
		},
	}, {
		name: "rich Dynatrace payload", format: problemhookv1alpha1.FormatDynatrace,
		body: func(t *testing.T) string { return testdata(t, "dynatrace-rich.json") },
		check: func(g Gomega, spec problemhookv1alpha1.ProblemEventSpec) {
			g.Expect(spec.Title).NotTo(BeEmpty())
			g.Expect(spec.Severity).NotTo(BeEmpty())
			g.Expect(spec.Impact).NotTo(BeEmpty())
			g.Expect(spec.URL).To(HavePrefix("https://"))
			g.Expect(spec.Tags).NotTo(BeEmpty())
			g.Expect(spec.ImpactedEntities).NotTo(BeEmpty())
		},
	}, {
		name: "Guance event", format: problemhookv1alpha1.FormatGuance,
		body: func(t *testing.T) string { return testdata(t, "guance-warning.json") },
		check: func(g Gomega, spec problemhookv1alpha1.ProblemEventSpec) {
			g.Expect(spec.Source).To(Equal(problemhookv1alpha1.FormatGuance))
			g.Expect(spec.State).To(Equal(problemhookv1alpha1.StateOpen))
			g.Expect(spec.Severity).To(Equal("WARNING"))
			g.Expect(spec.ImpactedEntities).To(ContainElement(problemhookv1alpha1.ImpactedEntity{ID: "web001", Name: "web001", Type: "HOST"}))
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tg := newTarget(t, tc.format)
			body := tc.body(t)
			before := time.Now().Add(-time.Second)
			r := post(t, tg, body)
			g.Expect(r.status).To(Equal(http.StatusAccepted), r.body.Message)
			g.Expect(r.body.Result).To(Equal("created"))

			// Acknowledged means stored: read it straight from the API server.
			evs := events(t, tg.ns)
			g.Expect(evs).To(HaveLen(1))
			ev := evs[0]
			g.Expect(r.body.ProblemEvent).To(Equal(tg.ns + "/" + ev.Name))
			g.Expect(ev.Name).To(Equal(problemhookv1alpha1.EventName(tg.name, ev.Spec.ProblemID, ev.Spec.State)))
			g.Expect(ev.Labels).To(Equal(map[string]string{
				problemhookv1alpha1.LabelTarget:    tg.name,
				problemhookv1alpha1.LabelState:     strings.ToLower(string(ev.Spec.State)),
				problemhookv1alpha1.LabelProblemID: problemhookv1alpha1.ProblemIDHash(ev.Spec.ProblemID),
			}))
			g.Expect(ev.OwnerReferences).To(HaveLen(1))
			g.Expect(ev.OwnerReferences[0].UID).To(Equal(tg.obj.UID))
			g.Expect(ev.Spec.Target).To(Equal(tg.name))
			g.Expect(ev.Spec.Source).To(Equal(tc.format))
			g.Expect(ev.Spec.ReceivedAt.Time).To(BeTemporally(">=", before))
			g.Expect(ev.Spec.Payload).To(Equal(body))
			tc.check(g, ev.Spec)
		})
	}
}

// notificationsTotal sums problemhook_receiver_notifications_total over the
// series with the given labels.
func notificationsTotal(t *testing.T, labels map[string]string) float64 {
	t.Helper()
	return controlplane.MetricSum(t, "problemhook_receiver_notifications_total", labels)
}

func TestDuplicatesMakeOneEvent(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, problemhookv1alpha1.FormatDynatrace)
	for i := range 10 {
		r := post(t, tg, minimalDynatrace)
		if i == 0 {
			g.Expect(r.status).To(Equal(http.StatusAccepted))
			g.Expect(r.body.Result).To(Equal("created"))
		} else {
			g.Expect(r.status).To(Equal(http.StatusOK))
			g.Expect(r.body.Result).To(Equal("duplicate"))
		}
	}
	g.Expect(events(t, tg.ns)).To(HaveLen(1))
	series := func(result string) map[string]string {
		return map[string]string{"namespace": tg.ns, "target": tg.name, "format": "Dynatrace", "result": result}
	}
	g.Expect(notificationsTotal(t, series("created"))).To(Equal(1.0))
	g.Expect(notificationsTotal(t, series("duplicate"))).To(Equal(9.0))

	// A wrong password counts against the target; a target that does not
	// exist against none, so that random paths make no new series.
	unknown := notificationsTotal(t, map[string]string{"namespace": "", "target": "", "result": "rejected"})
	g.Expect(send(t, request{method: http.MethodPost, url: tg.url(), body: minimalDynatrace, auth: basic("dynatrace", "wrong")}).status).To(Equal(http.StatusUnauthorized))
	g.Expect(send(t, request{method: http.MethodPost, url: server.URL + "/hooks/" + tg.ns + "/nobody", body: minimalDynatrace}).status).To(Equal(http.StatusNotFound))
	g.Expect(notificationsTotal(t, series("rejected"))).To(Equal(1.0))
	g.Expect(notificationsTotal(t, map[string]string{"namespace": "", "target": "", "result": "rejected"}) - unknown).To(Equal(1.0))
}

func TestOpenThenResolvedMakeTwoEvents(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, problemhookv1alpha1.FormatDynatrace)
	g.Expect(post(t, tg, minimalDynatrace).status).To(Equal(http.StatusAccepted))
	g.Expect(post(t, tg, strings.Replace(minimalDynatrace, "OPEN", "RESOLVED", 1)).status).To(Equal(http.StatusAccepted))
	evs := events(t, tg.ns)
	g.Expect(evs).To(HaveLen(2))
	states := []problemhookv1alpha1.ProblemState{evs[0].Spec.State, evs[1].Spec.State}
	g.Expect(states).To(ConsistOf(problemhookv1alpha1.StateOpen, problemhookv1alpha1.StateResolved))
	g.Expect(evs[0].Labels[problemhookv1alpha1.LabelProblemID]).To(Equal(evs[1].Labels[problemhookv1alpha1.LabelProblemID]))
}

func TestConcurrentDeliveriesMakeOneEvent(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, problemhookv1alpha1.FormatDynatrace)
	const senders = 50
	var wg sync.WaitGroup
	results := make(chan reply, senders)
	for range senders {
		wg.Go(func() { results <- post(t, tg, minimalDynatrace) })
	}
	wg.Wait()
	close(results)
	created, duplicates := 0, 0
	for r := range results {
		switch r.body.Result {
		case "created":
			created++
		case "duplicate":
			duplicates++
		default:
			t.Errorf("unexpected answer %d %+v", r.status, r.body)
		}
	}
	g.Expect(created).To(Equal(1))
	g.Expect(duplicates).To(Equal(senders - 1))
	g.Expect(events(t, tg.ns)).To(HaveLen(1))
}

func TestTestNotificationPolicy(t *testing.T) {
	cases := []struct {
		policy     problemhookv1alpha1.TestNotificationPolicy
		wantStatus int
		wantResult string
		wantStored bool
	}{
		{problemhookv1alpha1.TestNotificationsRecord, http.StatusAccepted, "created", true},
		{problemhookv1alpha1.TestNotificationsIgnore, http.StatusOK, "ignored", false},
		{problemhookv1alpha1.TestNotificationsRun, http.StatusAccepted, "created", true},
	}
	for _, tc := range cases {
		t.Run(string(tc.policy), func(t *testing.T) {
			g := NewWithT(t)
			tg := newTarget(t, problemhookv1alpha1.FormatDynatrace, func(nt *problemhookv1alpha1.NotificationTarget) {
				nt.Spec.TestNotifications = tc.policy
			})
			r := post(t, tg, testdata(t, "dynatrace-test.json"))
			g.Expect(r.status).To(Equal(tc.wantStatus), r.body.Message)
			g.Expect(r.body.Result).To(Equal(tc.wantResult))
			evs := events(t, tg.ns)
			if !tc.wantStored {
				g.Expect(evs).To(BeEmpty())
				return
			}
			g.Expect(evs).To(HaveLen(1))
			g.Expect(evs[0].Spec.Test).To(BeTrue())
			g.Expect(evs[0].Spec.DisplayID).To(Equal("999"))

			// A real problem whose number merely contains 999 is no test.
			r = post(t, tg, `{"State":"OPEN","ProblemID":"1999","PID":"99999_1999V2"}`)
			g.Expect(r.status).To(Equal(http.StatusAccepted))
			var real problemhookv1alpha1.ProblemEvent
			g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: tg.ns, Name: strings.TrimPrefix(r.body.ProblemEvent, tg.ns+"/")}, &real)).To(Succeed())
			g.Expect(real.Spec.Test).To(BeFalse())
		})
	}
}

func TestRefusals(t *testing.T) {
	dt := newTarget(t, problemhookv1alpha1.FormatDynatrace)
	gu := newTarget(t, problemhookv1alpha1.FormatGuance)
	tooLarge := `{"State":"OPEN","ProblemID":"1","PID":"1","ProblemTitle":"` + strings.Repeat("x", 65<<10) + `"}`
	cases := []struct {
		name        string
		req         request
		wantStatus  int
		wantMessage string
		wantHeader  map[string]string
	}{
		{"no credentials", request{url: dt.url(), body: minimalDynatrace},
			http.StatusUnauthorized, "missing or wrong credentials", map[string]string{"WWW-Authenticate": `Basic realm="problemhook", charset="UTF-8"`}},
		{"wrong password", request{url: dt.url(), body: minimalDynatrace, auth: basic(user, "wrong")},
			http.StatusUnauthorized, "missing or wrong credentials", nil},
		{"wrong user", request{url: dt.url(), body: minimalDynatrace, auth: basic("someone", password)},
			http.StatusUnauthorized, "missing or wrong credentials", nil},
		{"bearer token where basic is required", request{url: dt.url(), body: minimalDynatrace, auth: bearer(password)},
			http.StatusUnauthorized, "missing or wrong credentials", nil},
		{"no token", request{url: gu.url(), body: "{}"},
			http.StatusUnauthorized, "missing or wrong credentials", map[string]string{"WWW-Authenticate": `Bearer realm="problemhook"`}},
		{"wrong token", request{url: gu.url(), body: "{}", auth: bearer("nope")},
			http.StatusUnauthorized, "missing or wrong credentials", nil},
		{"basic credentials where a token is required", request{url: gu.url(), body: "{}", auth: basic(user, token)},
			http.StatusUnauthorized, "missing or wrong credentials", nil},
		{"unknown target", request{url: server.URL + "/hooks/" + dt.ns + "/nope", body: minimalDynatrace, auth: basic(user, password)},
			http.StatusNotFound, "NotificationTarget " + dt.ns + "/nope not found", nil},
		{"unknown namespace", request{url: server.URL + "/hooks/nowhere/dynatrace", body: minimalDynatrace, auth: basic(user, password)},
			http.StatusNotFound, "NotificationTarget nowhere/dynatrace not found", nil},
		{"name that cannot exist", request{url: server.URL + "/hooks/" + dt.ns + "/Dyna%2Ftrace", body: minimalDynatrace, auth: basic(user, password)},
			http.StatusNotFound, "not found", nil},
		{"path outside /hooks", request{url: server.URL + "/", body: minimalDynatrace},
			http.StatusNotFound, "no such endpoint", nil},
		{"GET", request{method: http.MethodGet, url: dt.url(), auth: basic(user, password)},
			http.StatusMethodNotAllowed, "method GET not allowed", map[string]string{"Allow": "POST"}},
		{"PUT", request{method: http.MethodPut, url: dt.url(), body: minimalDynatrace, auth: basic(user, password)},
			http.StatusMethodNotAllowed, "method PUT not allowed", map[string]string{"Allow": "POST"}},
		{"body past the limit", request{url: dt.url(), body: tooLarge, auth: basic(user, password)},
			http.StatusRequestEntityTooLarge, "body larger than 65536 bytes", nil},
		{"text/plain", request{url: dt.url(), body: minimalDynatrace, contentType: "text/plain", auth: basic(user, password)},
			http.StatusUnsupportedMediaType, `Content-Type "text/plain" is not JSON`, nil},
		{"body that is not JSON", request{url: dt.url(), body: "State=OPEN", auth: basic(user, password)},
			http.StatusUnsupportedMediaType, "Dynatrace payload: not a JSON object", nil},
		{"JSON without the required fields", request{url: dt.url(), body: `{"State":"OPEN"}`, auth: basic(user, password)},
			http.StatusBadRequest, "Dynatrace payload: missing required fields: PID, ProblemID", nil},
		{"invalid state", request{url: dt.url(), body: `{"State":"CLOSED","ProblemID":"1","PID":"1"}`, auth: basic(user, password)},
			http.StatusBadRequest, "invalid field State", nil},
		{"Guance event without its fields", request{url: gu.url(), body: `{"df_title":"x"}`, auth: bearer(token)},
			http.StatusBadRequest, "Guance payload: missing required fields: df_dimension_tags, df_event_id, df_status, timestamp", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := send(t, tc.req)
			g.Expect(r.status).To(Equal(tc.wantStatus), r.body.Message)
			g.Expect(r.body.Code).To(Equal(tc.wantStatus))
			g.Expect(r.body.Result).To(Equal("error"))
			g.Expect(r.body.Message).To(ContainSubstring(tc.wantMessage))
			for k, v := range tc.wantHeader {
				g.Expect(r.header.Get(k)).To(Equal(v), k)
			}
		})
	}
	// Nothing refused was stored.
	NewWithT(t).Expect(events(t, dt.ns)).To(BeEmpty())
	NewWithT(t).Expect(events(t, gu.ns)).To(BeEmpty())
}

func TestUnavailableTargetsAnswer503(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()

	suspended := newTarget(t, problemhookv1alpha1.FormatDynatrace, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Suspend = true })
	g.Eventually(func() int { return post(t, suspended, minimalDynatrace).status }).Should(Equal(http.StatusServiceUnavailable))
	r := post(t, suspended, minimalDynatrace)
	g.Expect(r.body.Message).To(ContainSubstring("is suspended"))
	g.Expect(r.header.Get("Retry-After")).To(Equal("5"))

	// A target whose Secret disappears cannot check credentials.
	broken := newTarget(t, problemhookv1alpha1.FormatDynatrace)
	g.Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: broken.ns, Name: "auth"}})).To(Succeed())
	// Once the controller has seen the deletion, so has the receiver's cache.
	g.Eventually(func(g Gomega) {
		var nt problemhookv1alpha1.NotificationTarget
		g.Expect(receiver.Cache.Get(ctx, client.ObjectKeyFromObject(broken.obj), &nt)).To(Succeed())
		g.Expect(meta.IsStatusConditionFalse(nt.Status.Conditions, problemhookv1alpha1.ConditionReady)).To(BeTrue())
	}).Should(Succeed())
	r = post(t, broken, minimalDynatrace)
	g.Expect(r.status).To(Equal(http.StatusServiceUnavailable))
	g.Expect(r.body.Message).To(ContainSubstring("cannot check credentials"))
	g.Expect(r.header.Get("Retry-After")).NotTo(BeEmpty())

	g.Expect(events(t, suspended.ns)).To(BeEmpty())
	g.Expect(events(t, broken.ns)).To(BeEmpty())
}

func TestNotStoredMeans503(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, problemhookv1alpha1.FormatDynatrace)
	// The API server refuses new objects in a namespace being deleted (and
	// no namespace controller runs here to finish the deletion).
	g.Expect(k8s.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tg.ns}})).To(Succeed())
	r := post(t, tg, minimalDynatrace)
	g.Expect(r.status).To(Equal(http.StatusServiceUnavailable), r.body.Message)
	g.Expect(r.body.Message).To(Equal("notification not stored: the API server is unavailable"))
	g.Expect(r.header.Get("Retry-After")).To(Equal("5"))
	g.Expect(events(t, tg.ns)).To(BeEmpty())
}

func TestRotatedSecretTakesEffect(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	tg := newTarget(t, problemhookv1alpha1.FormatDynatrace)
	g.Expect(post(t, tg, minimalDynatrace).status).To(Equal(http.StatusAccepted))

	var secret corev1.Secret
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: tg.ns, Name: "auth"}, &secret)).To(Succeed())
	secret.Data["password"] = []byte("rotated")
	g.Expect(k8s.Update(ctx, &secret)).To(Succeed())

	resolved := strings.Replace(minimalDynatrace, "OPEN", "RESOLVED", 1)
	g.Eventually(func() int {
		return send(t, request{url: tg.url(), body: resolved, auth: basic(user, "rotated")}).status
	}).Should(Equal(http.StatusAccepted))
	g.Expect(send(t, request{url: tg.url(), body: resolved, auth: basic(user, password)}).status).To(Equal(http.StatusUnauthorized))
}

func TestLastReceivedTime(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, problemhookv1alpha1.FormatDynatrace)
	before := metav1.NewTime(time.Now().Add(-time.Second))
	for i := range 5 {
		g.Expect(post(t, tg, fmt.Sprintf(`{"State":"OPEN","ProblemID":"%d","PID":"pid-%d"}`, i, i)).status).To(Equal(http.StatusAccepted))
	}
	g.Eventually(func(g Gomega) {
		var nt problemhookv1alpha1.NotificationTarget
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(tg.obj), &nt)).To(Succeed())
		g.Expect(nt.Status.LastReceivedTime).NotTo(BeNil())
		g.Expect(nt.Status.LastReceivedTime.Time).To(BeTemporally(">=", before.Truncate(time.Second)))
		// The receiver's write left the controller's status alone.
		g.Expect(meta.IsStatusConditionTrue(nt.Status.Conditions, problemhookv1alpha1.ConditionReady)).To(BeTrue())
	}).WithTimeout(5 * time.Second).Should(Succeed())
}

func TestStartingReceiverAnswers503(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, problemhookv1alpha1.FormatDynatrace)
	// A receiver whose cache has not synced: it was never started.
	starting := &webhookserver.Receiver{Cache: receiver.Cache, Client: receiver.Client}
	g.Expect(starting.Ready(nil)).To(MatchError("receiver cache not synced"))
	g.Expect(receiver.Ready(nil)).To(Succeed())

	srv := httptest.NewServer(starting.Handler())
	defer srv.Close()
	r := send(t, request{url: srv.URL + problemhookv1alpha1.WebhookPath(tg.ns, tg.name), body: minimalDynatrace, auth: basic(user, password)})
	g.Expect(r.status).To(Equal(http.StatusServiceUnavailable))
	g.Expect(r.body.Message).To(Equal("receiver is starting: cache not synced"))
	g.Expect(r.header.Get("Retry-After")).To(Equal("5"))
	g.Expect(events(t, tg.ns)).To(BeEmpty())
}

// TestTwoReplicasMakeOneEvent: every replica receives, each with its own
// cache; the same notification delivered to both at once is still stored
// once, and every delivery is acknowledged. The second replica serves
// HTTPS with a certificate from files, as from a mounted Secret.
func TestTwoReplicasMakeOneEvent(t *testing.T) {
	g := NewWithT(t)
	tg := newTarget(t, problemhookv1alpha1.FormatDynatrace)
	certFile, keyFile, pool := selfSignedCert(t)
	mgr, err := env.NewManager()
	g.Expect(err).NotTo(HaveOccurred())
	second := &webhookserver.Receiver{Addr: controlplane.FreeAddr(t), Cache: mgr.GetCache(), Client: mgr.GetClient(),
		TLSCertFile: certFile, TLSKeyFile: keyFile}
	g.Expect(mgr.Add(second)).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("second replica: %v", err)
		}
	})
	g.Eventually(func() error { return second.Ready(nil) }).Should(Succeed())
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}

	const deliveries = 20
	var wg sync.WaitGroup
	results := make(chan reply, 2*deliveries)
	for range deliveries {
		for _, base := range []string{server.URL, "https://" + second.Addr} {
			wg.Go(func() {
				results <- send(t, request{url: base + problemhookv1alpha1.WebhookPath(tg.ns, tg.name), body: minimalDynatrace,
					auth: basic(user, password), client: tlsClient})
			})
		}
	}
	wg.Wait()
	close(results)
	count := map[string]int{}
	for r := range results {
		g.Expect(r.status).To(BeElementOf(http.StatusAccepted, http.StatusOK))
		count[r.body.Result]++
	}
	g.Expect(count).To(Equal(map[string]int{"created": 1, "duplicate": 2*deliveries - 1}))
	g.Expect(events(t, tg.ns)).To(HaveLen(1))
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key to files,
// and returns them with a pool that trusts the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "problemhook-receiver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certFile, keyFile, pool
}
