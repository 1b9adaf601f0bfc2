package receiver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/manifests"
	"github.com/problemhook/problemhook/test/harness/receivertest"
	"github.com/problemhook/problemhook/webhookserver/receiver"
)

func testdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("../../internal/payload/testdata/" + name)
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
		body: func(*testing.T) string { return receivertest.MinimalDynatrace },
		check: func(g Gomega, spec problemhookv1alpha1.ProblemEventSpec) {
			g.Expect(spec.ProblemID).To(Equal("-6150203450926486413_1669823466223V2"))
			g.Expect(spec.DisplayID).To(Equal("1234"))
			g.Expect(spec.State).To(Equal(problemhookv1alpha1.StateOpen))
			g.Expect(spec.Test).To(BeFalse())
			g.Expect(spec.Payload).To(Equal(receivertest.MinimalDynatrace))
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
	}, {
		name: "Dynatrace Workflows record", format: problemhookv1alpha1.FormatDynatraceWorkflow,
		body: func(t *testing.T) string { return testdata(t, "workflow-closed.json") },
		check: func(g Gomega, spec problemhookv1alpha1.ProblemEventSpec) {
			g.Expect(spec.Source).To(Equal(problemhookv1alpha1.FormatDynatraceWorkflow))
			g.Expect(spec.State).To(Equal(problemhookv1alpha1.StateResolved))
			g.Expect(spec.ProblemID).To(Equal("-1843743290896097469_1745403051227V2"))
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tg := env.NewTarget(t, tc.format)
			body := tc.body(t)
			before := time.Now().Add(-time.Second)
			r := receivertest.Post(t, tg, body)
			g.Expect(r.Status).To(Equal(http.StatusAccepted), r.Body.Message)
			g.Expect(r.Body.Result).To(Equal("created"))

			// Acknowledged means stored: read it straight from the API server.
			evs := env.Events(t, tg.NS)
			g.Expect(evs).To(HaveLen(1))
			ev := evs[0]
			g.Expect(r.Body.ProblemEvent).To(Equal(tg.NS + "/" + ev.Name))
			g.Expect(ev.Name).To(Equal(problemhookv1alpha1.EventName(tg.Name, ev.Spec.ProblemID, ev.Spec.State)))
			g.Expect(ev.Labels).To(Equal(map[string]string{
				problemhookv1alpha1.LabelTarget:    tg.Name,
				problemhookv1alpha1.LabelState:     strings.ToLower(string(ev.Spec.State)),
				problemhookv1alpha1.LabelProblemID: problemhookv1alpha1.ProblemIDHash(ev.Spec.ProblemID),
			}))
			g.Expect(ev.OwnerReferences).To(HaveLen(1))
			g.Expect(ev.OwnerReferences[0].UID).To(Equal(tg.Obj.UID))
			g.Expect(ev.Spec.Target).To(Equal(tg.Name))
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
	return controlplane.MetricSum(t, metrics.ReceiverNotificationsName, labels)
}

func TestDuplicatesMakeOneEvent(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	for i := range 10 {
		r := receivertest.Post(t, tg, receivertest.MinimalDynatrace)
		if i == 0 {
			g.Expect(r.Status).To(Equal(http.StatusAccepted))
			g.Expect(r.Body.Result).To(Equal("created"))
		} else {
			g.Expect(r.Status).To(Equal(http.StatusOK))
			g.Expect(r.Body.Result).To(Equal("duplicate"))
		}
	}
	g.Expect(env.Events(t, tg.NS)).To(HaveLen(1))
	series := func(result string) map[string]string {
		return map[string]string{"namespace": tg.NS, "target": tg.Name, "format": "Dynatrace", "result": result}
	}
	g.Expect(notificationsTotal(t, series("created"))).To(Equal(1.0))
	g.Expect(notificationsTotal(t, series("duplicate"))).To(Equal(9.0))

	// A wrong password counts against the target; a target that does not
	// exist against none, so that random paths make no new series.
	unknown := notificationsTotal(t, map[string]string{"namespace": "", "target": "", "result": "rejected"})
	g.Expect(receivertest.Send(t, receivertest.Request{Method: http.MethodPost, URL: tg.URL, Body: receivertest.MinimalDynatrace, Auth: receivertest.Basic("dynatrace", "wrong")}).Status).To(Equal(http.StatusUnauthorized))
	g.Expect(receivertest.Send(t, receivertest.Request{Method: http.MethodPost, URL: env.Server.URL + "/hooks/" + tg.NS + "/nobody", Body: receivertest.MinimalDynatrace}).Status).To(Equal(http.StatusNotFound))
	g.Expect(notificationsTotal(t, series("rejected"))).To(Equal(1.0))
	g.Expect(notificationsTotal(t, map[string]string{"namespace": "", "target": "", "result": "rejected"}) - unknown).To(Equal(1.0))
}

func TestOpenThenResolvedMakeTwoEvents(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	g.Expect(receivertest.Post(t, tg, receivertest.MinimalDynatrace).Status).To(Equal(http.StatusAccepted))
	g.Expect(receivertest.Post(t, tg, strings.Replace(receivertest.MinimalDynatrace, "OPEN", "RESOLVED", 1)).Status).To(Equal(http.StatusAccepted))
	evs := env.Events(t, tg.NS)
	g.Expect(evs).To(HaveLen(2))
	states := []problemhookv1alpha1.ProblemState{evs[0].Spec.State, evs[1].Spec.State}
	g.Expect(states).To(ConsistOf(problemhookv1alpha1.StateOpen, problemhookv1alpha1.StateResolved))
	g.Expect(evs[0].Labels[problemhookv1alpha1.LabelProblemID]).To(Equal(evs[1].Labels[problemhookv1alpha1.LabelProblemID]))

	// Each event is counted once, by state; the duplicate is not.
	g.Expect(receivertest.Post(t, tg, receivertest.MinimalDynatrace).Status).To(Equal(http.StatusOK))
	events := func(state string) float64 {
		return controlplane.MetricSum(t, metrics.EventsName, map[string]string{"namespace": tg.NS, "target": tg.Name, "state": state, "origin": "notification"})
	}
	g.Expect(events("open")).To(Equal(1.0))
	g.Expect(events("resolved")).To(Equal(1.0))
	g.Expect(controlplane.MetricSum(t, metrics.EventsName, map[string]string{"namespace": tg.NS})).To(Equal(2.0))
}

func TestConcurrentDeliveriesMakeOneEvent(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	const senders = 50
	var wg sync.WaitGroup
	results := make(chan receivertest.Reply, senders)
	for range senders {
		wg.Go(func() { results <- receivertest.Post(t, tg, receivertest.MinimalDynatrace) })
	}
	wg.Wait()
	close(results)
	created, duplicates := 0, 0
	for r := range results {
		switch r.Body.Result {
		case "created":
			created++
		case "duplicate":
			duplicates++
		default:
			t.Errorf("unexpected answer %d %+v", r.Status, r.Body)
		}
	}
	g.Expect(created).To(Equal(1))
	g.Expect(duplicates).To(Equal(senders - 1))
	g.Expect(env.Events(t, tg.NS)).To(HaveLen(1))
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
			tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace, func(nt *problemhookv1alpha1.NotificationTarget) {
				nt.Spec.TestNotifications = tc.policy
			})
			r := receivertest.Post(t, tg, testdata(t, "dynatrace-test.json"))
			g.Expect(r.Status).To(Equal(tc.wantStatus), r.Body.Message)
			g.Expect(r.Body.Result).To(Equal(tc.wantResult))
			evs := env.Events(t, tg.NS)
			if !tc.wantStored {
				g.Expect(evs).To(BeEmpty())
				return
			}
			g.Expect(evs).To(HaveLen(1))
			g.Expect(evs[0].Spec.Test).To(BeTrue())
			g.Expect(evs[0].Spec.DisplayID).To(Equal("999"))

			// A real problem whose number merely contains 999 is no test.
			r = receivertest.Post(t, tg, `{"State":"OPEN","ProblemID":"1999","PID":"99999_1999V2"}`)
			g.Expect(r.Status).To(Equal(http.StatusAccepted))
			var real problemhookv1alpha1.ProblemEvent
			g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: tg.NS, Name: strings.TrimPrefix(r.Body.ProblemEvent, tg.NS+"/")}, &real)).To(Succeed())
			g.Expect(real.Spec.Test).To(BeFalse())
		})
	}
}

func TestRefusals(t *testing.T) {
	dt := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	gu := env.NewTarget(t, problemhookv1alpha1.FormatGuance)
	tooLarge := `{"State":"OPEN","ProblemID":"1","PID":"1","ProblemTitle":"` + strings.Repeat("x", 65<<10) + `"}`
	cases := []struct {
		name        string
		req         receivertest.Request
		wantStatus  int
		wantMessage string
		wantHeader  map[string]string
	}{
		{"no credentials", receivertest.Request{URL: dt.URL, Body: receivertest.MinimalDynatrace},
			http.StatusUnauthorized, "missing or wrong credentials", map[string]string{"WWW-Authenticate": `Basic realm="problemhook", charset="UTF-8"`}},
		{"wrong password", receivertest.Request{URL: dt.URL, Body: receivertest.MinimalDynatrace, Auth: receivertest.Basic(receivertest.User, "wrong")},
			http.StatusUnauthorized, "missing or wrong credentials", nil},
		{"wrong user", receivertest.Request{URL: dt.URL, Body: receivertest.MinimalDynatrace, Auth: receivertest.Basic("someone", receivertest.Password)},
			http.StatusUnauthorized, "missing or wrong credentials", nil},
		{"bearer receivertest.Token where basic is required", receivertest.Request{URL: dt.URL, Body: receivertest.MinimalDynatrace, Auth: receivertest.Bearer(receivertest.Password)},
			http.StatusUnauthorized, "missing or wrong credentials", nil},
		{"no token", receivertest.Request{URL: gu.URL, Body: "{}"},
			http.StatusUnauthorized, "missing or wrong credentials", map[string]string{"WWW-Authenticate": `Bearer realm="problemhook"`}},
		{"wrong token", receivertest.Request{URL: gu.URL, Body: "{}", Auth: receivertest.Bearer("nope")},
			http.StatusUnauthorized, "missing or wrong credentials", nil},
		{"basic credentials where a receivertest.Token is required", receivertest.Request{URL: gu.URL, Body: "{}", Auth: receivertest.Basic(receivertest.User, receivertest.Token)},
			http.StatusUnauthorized, "missing or wrong credentials", nil},
		{"unknown target", receivertest.Request{URL: env.Server.URL + "/hooks/" + dt.NS + "/nope", Body: receivertest.MinimalDynatrace, Auth: receivertest.Basic(receivertest.User, receivertest.Password)},
			http.StatusNotFound, "NotificationTarget " + dt.NS + "/nope not found", nil},
		{"unknown namespace", receivertest.Request{URL: env.Server.URL + "/hooks/nowhere/dynatrace", Body: receivertest.MinimalDynatrace, Auth: receivertest.Basic(receivertest.User, receivertest.Password)},
			http.StatusNotFound, "NotificationTarget nowhere/dynatrace not found", nil},
		{"name that cannot exist", receivertest.Request{URL: env.Server.URL + "/hooks/" + dt.NS + "/Dyna%2Ftrace", Body: receivertest.MinimalDynatrace, Auth: receivertest.Basic(receivertest.User, receivertest.Password)},
			http.StatusNotFound, "not found", nil},
		{"path outside /hooks", receivertest.Request{URL: env.Server.URL + "/", Body: receivertest.MinimalDynatrace},
			http.StatusNotFound, "no such endpoint", nil},
		{"GET", receivertest.Request{Method: http.MethodGet, URL: dt.URL, Auth: receivertest.Basic(receivertest.User, receivertest.Password)},
			http.StatusMethodNotAllowed, "method GET not allowed", map[string]string{"Allow": "POST"}},
		{"PUT", receivertest.Request{Method: http.MethodPut, URL: dt.URL, Body: receivertest.MinimalDynatrace, Auth: receivertest.Basic(receivertest.User, receivertest.Password)},
			http.StatusMethodNotAllowed, "method PUT not allowed", map[string]string{"Allow": "POST"}},
		{"body past the limit", receivertest.Request{URL: dt.URL, Body: tooLarge, Auth: receivertest.Basic(receivertest.User, receivertest.Password)},
			http.StatusRequestEntityTooLarge, "body larger than 65536 bytes", nil},
		{"text/plain", receivertest.Request{URL: dt.URL, Body: receivertest.MinimalDynatrace, ContentType: "text/plain", Auth: receivertest.Basic(receivertest.User, receivertest.Password)},
			http.StatusUnsupportedMediaType, `Content-Type "text/plain" is not JSON`, nil},
		{"body that is not JSON", receivertest.Request{URL: dt.URL, Body: "State=OPEN", Auth: receivertest.Basic(receivertest.User, receivertest.Password)},
			http.StatusBadRequest, "Dynatrace payload: not a JSON object: invalid character 'S' looking for beginning of value at byte 1", nil},
		{"JSON without the required fields", receivertest.Request{URL: dt.URL, Body: `{"State":"OPEN"}`, Auth: receivertest.Basic(receivertest.User, receivertest.Password)},
			http.StatusBadRequest, "Dynatrace payload: missing required fields: PID, ProblemID", nil},
		{"invalid state", receivertest.Request{URL: dt.URL, Body: `{"State":"CLOSED","ProblemID":"1","PID":"1"}`, Auth: receivertest.Basic(receivertest.User, receivertest.Password)},
			http.StatusBadRequest, "invalid field State", nil},
		{"Guance event without its fields", receivertest.Request{URL: gu.URL, Body: `{"df_title":"x"}`, Auth: receivertest.Bearer(receivertest.Token)},
			http.StatusBadRequest, "Guance payload: missing required fields: df_dimension_tags, df_event_id, df_status, timestamp", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := receivertest.Send(t, tc.req)
			g.Expect(r.Status).To(Equal(tc.wantStatus), r.Body.Message)
			g.Expect(r.Body.Code).To(Equal(tc.wantStatus))
			g.Expect(r.Body.Result).To(Equal("error"))
			g.Expect(r.Body.Message).To(ContainSubstring(tc.wantMessage))
			for k, v := range tc.wantHeader {
				g.Expect(r.Header.Get(k)).To(Equal(v), k)
			}
		})
	}
	// Nothing refused was stored.
	NewWithT(t).Expect(env.Events(t, dt.NS)).To(BeEmpty())
	NewWithT(t).Expect(env.Events(t, gu.NS)).To(BeEmpty())
}

func TestUnavailableTargetsAnswer503(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()

	suspended := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace, func(nt *problemhookv1alpha1.NotificationTarget) { nt.Spec.Suspend = true })
	g.Eventually(func() int { return receivertest.Post(t, suspended, receivertest.MinimalDynatrace).Status }).Should(Equal(http.StatusServiceUnavailable))
	r := receivertest.Post(t, suspended, receivertest.MinimalDynatrace)
	g.Expect(r.Body.Message).To(ContainSubstring("is suspended"))
	g.Expect(r.Header.Get("Retry-After")).To(Equal("5"))

	// A target whose Secret disappears cannot check credentials.
	broken := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	g.Expect(env.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: broken.NS, Name: "auth"}})).To(Succeed())
	// Once the controller has seen the deletion, so has the receiver's cache.
	g.Eventually(func(g Gomega) {
		var nt problemhookv1alpha1.NotificationTarget
		g.Expect(env.Receiver.Cache.Get(ctx, client.ObjectKeyFromObject(broken.Obj), &nt)).To(Succeed())
		g.Expect(meta.IsStatusConditionFalse(nt.Status.Conditions, problemhookv1alpha1.ConditionReady)).To(BeTrue())
	}).Should(Succeed())
	r = receivertest.Post(t, broken, receivertest.MinimalDynatrace)
	g.Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
	g.Expect(r.Body.Message).To(ContainSubstring("cannot check credentials"))
	g.Expect(r.Header.Get("Retry-After")).NotTo(BeEmpty())

	g.Expect(env.Events(t, suspended.NS)).To(BeEmpty())
	g.Expect(env.Events(t, broken.NS)).To(BeEmpty())
}

func TestNotStoredMeans503(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	// The API server refuses new objects in a namespace being deleted (and
	// no namespace controller runs here to finish the deletion).
	g.Expect(env.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tg.NS}})).To(Succeed())
	r := receivertest.Post(t, tg, receivertest.MinimalDynatrace)
	g.Expect(r.Status).To(Equal(http.StatusServiceUnavailable), r.Body.Message)
	g.Expect(r.Body.Message).To(Equal("notification not stored: the API server is unavailable"))
	g.Expect(r.Header.Get("Retry-After")).To(Equal("5"))
	g.Expect(env.Events(t, tg.NS)).To(BeEmpty())
}

func TestRotatedSecretTakesEffect(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	g.Expect(receivertest.Post(t, tg, receivertest.MinimalDynatrace).Status).To(Equal(http.StatusAccepted))

	var secret corev1.Secret
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: tg.NS, Name: "auth"}, &secret)).To(Succeed())
	secret.Data["password"] = []byte("rotated")
	g.Expect(env.Client.Update(ctx, &secret)).To(Succeed())

	resolved := strings.Replace(receivertest.MinimalDynatrace, "OPEN", "RESOLVED", 1)
	g.Eventually(func() int {
		return receivertest.Send(t, receivertest.Request{URL: tg.URL, Body: resolved, Auth: receivertest.Basic(receivertest.User, "rotated")}).Status
	}).Should(Equal(http.StatusAccepted))
	g.Expect(receivertest.Send(t, receivertest.Request{URL: tg.URL, Body: resolved, Auth: receivertest.Basic(receivertest.User, receivertest.Password)}).Status).To(Equal(http.StatusUnauthorized))
}

func TestLastReceivedTime(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	before := metav1.NewTime(time.Now().Add(-time.Second))
	for i := range 5 {
		g.Expect(receivertest.Post(t, tg, fmt.Sprintf(`{"State":"OPEN","ProblemID":"%d","PID":"pid-%d"}`, i, i)).Status).To(Equal(http.StatusAccepted))
	}
	g.Eventually(func(g Gomega) {
		var nt problemhookv1alpha1.NotificationTarget
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(tg.Obj), &nt)).To(Succeed())
		g.Expect(nt.Status.LastReceivedTime).NotTo(BeNil())
		g.Expect(nt.Status.LastReceivedTime.Time).To(BeTemporally(">=", before.Truncate(time.Second)))
		// The receiver's write left the controller's status alone.
		g.Expect(meta.IsStatusConditionTrue(nt.Status.Conditions, problemhookv1alpha1.ConditionReady)).To(BeTrue())
	}).WithTimeout(5 * time.Second).Should(Succeed())
}

func TestStartingReceiverAnswers503(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	// A receiver whose cache has not synced: it was never started.
	starting := &receiver.Server{Cache: env.Receiver.Cache, Client: env.Receiver.Client}
	g.Expect(starting.Ready(nil)).To(MatchError("receiver cache not synced"))
	g.Expect(env.Receiver.Ready(nil)).To(Succeed())

	srv := httptest.NewServer(starting.Handler())
	defer srv.Close()
	r := receivertest.Send(t, receivertest.Request{URL: srv.URL + problemhookv1alpha1.WebhookPath(tg.NS, tg.Name), Body: receivertest.MinimalDynatrace, Auth: receivertest.Basic(receivertest.User, receivertest.Password)})
	g.Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
	g.Expect(r.Body.Message).To(Equal("receiver is starting: cache not synced"))
	g.Expect(r.Header.Get("Retry-After")).To(Equal("5"))
	g.Expect(env.Events(t, tg.NS)).To(BeEmpty())
}

// TestTwoReplicasMakeOneEvent: every replica receives, each with its own
// cache; the same notification delivered to both at once is still stored
// once, and every delivery is acknowledged. The second replica serves
// HTTPS with a certificate from files, as from a mounted Secret.
func TestTwoReplicasMakeOneEvent(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	certFile, keyFile, pool := selfSignedCert(t)
	mgr, err := env.NewManager()
	g.Expect(err).NotTo(HaveOccurred())
	second := &receiver.Server{Addr: controlplane.FreeAddr(t), Cache: mgr.GetCache(), Client: mgr.GetClient(),
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
	results := make(chan receivertest.Reply, 2*deliveries)
	for range deliveries {
		for _, base := range []string{env.Server.URL, "https://" + second.Addr} {
			wg.Go(func() {
				results <- receivertest.Send(t, receivertest.Request{URL: base + problemhookv1alpha1.WebhookPath(tg.NS, tg.Name), Body: receivertest.MinimalDynatrace,
					Auth: receivertest.Basic(receivertest.User, receivertest.Password), Client: tlsClient})
			})
		}
	}
	wg.Wait()
	close(results)
	count := map[string]int{}
	for r := range results {
		g.Expect(r.Status).To(BeElementOf(http.StatusAccepted, http.StatusOK))
		count[r.Body.Result]++
	}
	g.Expect(count).To(Equal(map[string]int{"created": 1, "duplicate": 2*deliveries - 1}))
	g.Expect(env.Events(t, tg.NS)).To(HaveLen(1))
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

// Past its rate limit a target's notifications get 429 with Retry-After,
// and nothing is stored; senders without its credentials spend nothing.
func TestRateLimit(t *testing.T) {
	g := NewWithT(t)
	plain := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	g.Expect(plain.Obj.Spec.RateLimit).To(Equal(&problemhookv1alpha1.RateLimit{PerSecond: 50, Burst: 500}), "the CRD's default")

	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace, func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Spec.RateLimit = &problemhookv1alpha1.RateLimit{PerSecond: 1, Burst: 2}
	})
	labels := map[string]string{"namespace": tg.NS, "target": tg.Name, "format": "Dynatrace", "result": "throttled"}
	throttledBefore := notificationsTotal(t, labels)
	notification := func(i int) string {
		return fmt.Sprintf(`{"State":"OPEN","ProblemID":"%d","PID":"-%d_1669823466223V2"}`, i, i)
	}
	for range 5 {
		r := receivertest.Send(t, receivertest.Request{URL: tg.URL, Body: notification(0), Auth: receivertest.Basic(receivertest.User, "wrong")})
		g.Expect(r.Status).To(Equal(http.StatusUnauthorized))
	}
	g.Expect(receivertest.Post(t, tg, notification(1)).Status).To(Equal(http.StatusAccepted))
	g.Expect(receivertest.Post(t, tg, notification(2)).Status).To(Equal(http.StatusAccepted))
	r := receivertest.Post(t, tg, notification(3))
	g.Expect(r.Status).To(Equal(http.StatusTooManyRequests))
	g.Expect(r.Header.Get("Retry-After")).To(Equal("1"))
	g.Expect(r.Body.Message).To(Equal("NotificationTarget " + tg.NS + "/" + tg.Name + " takes at most 1 notifications a second (burst 2) on this replica: retry after 1 s"))
	g.Expect(env.Events(t, tg.NS)).To(HaveLen(2))
	g.Expect(notificationsTotal(t, labels) - throttledBefore).To(Equal(1.0))

	// Resent after Retry-After, it is stored. The sleep is the sender's,
	// honouring Retry-After against a receiver the package's tests share,
	// which keeps the real clock.
	time.Sleep(time.Second)
	g.Expect(receivertest.Post(t, tg, notification(3)).Status).To(Equal(http.StatusAccepted))
	g.Expect(env.Events(t, tg.NS)).To(HaveLen(3))
}

// Past MaxInFlight creates under way, a replica answers 503 with
// Retry-After at once instead of queueing more at the API server; those
// under way are stored and acknowledged.
func TestReceiverShedsLoadPastMaxInFlight(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	entered, release := make(chan struct{}, 2), make(chan struct{})
	direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	slow := interceptor.NewClient(direct, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			entered <- struct{}{}
			<-release
			return c.Create(ctx, obj, opts...)
		},
	})
	shedding := &receiver.Server{Addr: controlplane.FreeAddr(t), Cache: env.Receiver.Cache, Client: slow, MaxInFlight: 2}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = shedding.Start(ctx) }()
	g.Eventually(func() error { return shedding.Ready(nil) }).Should(Succeed())
	url := "http://" + shedding.Addr + tg.Obj.GetWebhookPath()
	post := func(pid string) receivertest.Reply {
		return receivertest.Send(t, receivertest.Request{URL: url, Body: `{"State":"OPEN","ProblemID":"1","PID":"` + pid + `"}`,
			Auth: receivertest.Basic(receivertest.User, receivertest.Password)})
	}

	held := make(chan receivertest.Reply, 2)
	for _, pid := range []string{"held-1", "held-2"} {
		go func() { held <- post(pid) }()
	}
	<-entered
	<-entered
	r := post("shed")
	g.Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
	g.Expect(r.Header.Get("Retry-After")).To(Equal("5"))
	g.Expect(r.Body.Message).To(Equal("notification not stored: this replica is storing 2 notifications already; retry later"))

	close(release)
	g.Expect((<-held).Status).To(Equal(http.StatusAccepted))
	g.Expect((<-held).Status).To(Equal(http.StatusAccepted))
	g.Expect(env.Events(t, tg.NS)).To(HaveLen(2))
	g.Expect(post("after").Status).To(Equal(http.StatusAccepted), "the slots are free again")
}

// A stopping receiver drains: it is not ready at once, goes on storing
// notifications for its drain delay (each answer closing its connection,
// so that the sender's next one goes through the Service to another
// replica), finishes the one it is storing when the delay ends, and only
// then stops listening.
func TestStoppingReceiverDrains(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	slow := interceptor.NewClient(direct, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if obj.(*problemhookv1alpha1.ProblemEvent).Spec.ProblemID == "in-flight" {
				entered <- struct{}{}
				<-release
			}
			return c.Create(ctx, obj, opts...)
		},
	})
	delay := time.Second
	draining := &receiver.Server{Addr: controlplane.FreeAddr(t), Cache: env.Receiver.Cache, Client: slow, DrainDelay: &delay}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- draining.Start(ctx) }()
	t.Cleanup(cancel)
	g.Eventually(func() error { return draining.Ready(nil) }).Should(Succeed())
	url := "http://" + draining.Addr + tg.Obj.GetWebhookPath()
	post := func(pid string) receivertest.Reply {
		return receivertest.Send(t, receivertest.Request{URL: url, Body: `{"State":"OPEN","ProblemID":"1","PID":"` + pid + `"}`,
			Auth: receivertest.Basic(receivertest.User, receivertest.Password)})
	}

	inFlight := make(chan receivertest.Reply, 1)
	go func() { inFlight <- post("in-flight") }()
	<-entered
	stopAt := time.Now()
	cancel()
	g.Eventually(func() error { return draining.Ready(nil) }).Should(MatchError("receiver stopping"))
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"State":"OPEN","ProblemID":"1","PID":"during-drain"}`))
	g.Expect(err).NotTo(HaveOccurred())
	req.SetBasicAuth(receivertest.User, receivertest.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "a notification during the drain is stored")
	g.Expect(resp.Close).To(BeTrue(), "an answer during the drain keeps its connection open")
	g.Expect(time.Since(stopAt)).To(BeNumerically("<", delay))

	// The delay ends with a notification still being stored: the receiver
	// waits for it before it returns.
	time.Sleep(time.Until(stopAt.Add(delay + 200*time.Millisecond)))
	g.Consistently(stopped, 200*time.Millisecond).ShouldNot(Receive(), "Start returned with a notification still being stored")
	close(release)
	g.Expect((<-inFlight).Status).To(Equal(http.StatusAccepted))
	g.Eventually(stopped).Should(Receive(BeNil()))
	g.Expect(env.Events(t, tg.NS)).To(HaveLen(2))
	_, err = net.DialTimeout("tcp", draining.Addr, time.Second)
	g.Expect(err).To(HaveOccurred(), "the receiver still listens after it stopped")
}

// Bodies that cost far more decoded than sent, all at once: each is
// stored or shed with 503 and Retry-After before it is read, and the heap
// stays well inside the Deployment's 256 MiB limit. Before the byte bound
// and the bounded parse, eight of these peaked at 606 MiB.
func TestConcurrentLargeBodiesStayWithinMemory(t *testing.T) {
	g := NewWithT(t)
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	srv := &receiver.Server{Addr: controlplane.FreeAddr(t), Cache: env.Receiver.Cache, Client: env.Receiver.Client}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = srv.Start(ctx) }()
	g.Eventually(func() error { return srv.Ready(nil) }).Should(Succeed())
	url := "http://" + srv.Addr + tg.Obj.GetWebhookPath()

	const senders = 32
	body := func(i int) string {
		prefix := fmt.Sprintf(`{"State":"OPEN","ProblemID":"%d","PID":"large-%d","ImpactedEntities":[`, i, i)
		n := (receiver.DefaultMaxBodyBytes - len(prefix) - 2) / 3
		return prefix + strings.Repeat("{},", n-1) + "{}]}"
	}
	bodies := make([]string, senders)
	for i := range bodies {
		bodies[i] = body(i)
		g.Expect(len(bodies[i])).To(BeNumerically("<=", receiver.DefaultMaxBodyBytes))
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	replies := make(chan receivertest.Reply, senders)
	start := make(chan struct{})
	for i := range senders {
		go func() {
			<-start
			replies <- receivertest.Send(t, receivertest.Request{URL: url, Body: bodies[i], Auth: receivertest.Basic(receivertest.User, receivertest.Password)})
		}()
	}
	close(start)
	stored := 0
	for range senders {
		r := <-replies
		switch r.Status {
		case http.StatusAccepted:
			stored++
		case http.StatusServiceUnavailable:
			g.Expect(r.Header.Get("Retry-After")).To(Equal("5"))
			g.Expect(r.Body.Message).To(Equal("notification not read: this replica is reading 16 MiB of notifications already; retry later"))
		default:
			t.Fatalf("answered %d: %s", r.Status, r.Body.Message)
		}
	}
	close(done)
	<-sampled
	grew := float64(peak.Load()-min(peak.Load(), base.HeapInuse)) / (1 << 20)
	t.Logf("%d bodies of %d KiB: %d stored, %d shed; heap in use %.0f MiB before, peak %.0f MiB (+%.0f MiB)",
		senders, len(bodies[0])>>10, stored, senders-stored, float64(base.HeapInuse)/(1<<20), float64(peak.Load())/(1<<20), grew)
	g.Expect(stored).To(BeNumerically(">", 0))
	g.Expect(env.Events(t, tg.NS)).To(HaveLen(stored))
	g.Expect(grew).To(BeNumerically("<", 96), "MiB the heap grew by")
}

// A namespace's ResourceQuota on ProblemEvents is honoured: past it a
// notification is refused with 507 and a message that says why, and
// nothing is half-written.
func TestResourceQuotaRefusesWith507(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	tg := env.NewTarget(t, problemhookv1alpha1.FormatDynatrace)
	// The sample an admin starts from, with room for one event.
	objs, err := manifests.ReadDir(filepath.Join(controlplane.RepoRoot(), "config", "samples", "quota"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(objs).To(HaveLen(1))
	var quota corev1.ResourceQuota
	g.Expect(apiruntime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, &quota)).To(Succeed())
	g.Expect(quota.Spec.Hard).To(HaveKey(corev1.ResourceName("count/problemevents.problemhook.io")))
	quota.Namespace = tg.NS
	// No quota controller runs here: the test writes the status it would.
	setHard := func(n string) {
		quota.Spec.Hard["count/problemevents.problemhook.io"] = resource.MustParse(n)
		if quota.ResourceVersion == "" {
			g.Expect(env.Client.Create(ctx, &quota)).To(Succeed())
		} else {
			g.Expect(env.Client.Update(ctx, &quota)).To(Succeed())
		}
		quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard,
			Used: corev1.ResourceList{"count/problemevents.problemhook.io": resource.MustParse("0")}}
		g.Expect(env.Client.Status().Update(ctx, &quota)).To(Succeed())
	}
	// The API server's quota admission sees a new quota a moment after it
	// is stored, and charges nothing to it before: with no room first, a
	// create refused shows it is seen; then there is room for one event.
	probe := func() error {
		ev := problemhookv1alpha1.NewProblemEvent(tg.Obj, &problemhookv1alpha1.ProblemEventSpec{
			Source: problemhookv1alpha1.FormatDynatrace, ProblemID: "quota-probe", State: problemhookv1alpha1.StateOpen, ReceivedAt: metav1.Now()})
		return env.Client.Create(ctx, ev, client.DryRunAll)
	}
	setHard("0")
	g.Eventually(probe).Should(MatchError(ContainSubstring("exceeded quota")))
	setHard("1")
	g.Eventually(probe).Should(Succeed())

	g.Eventually(func() int {
		return receivertest.Post(t, tg, `{"State":"OPEN","ProblemID":"1","PID":"quota-1"}`).Status
	}).Should(Equal(http.StatusAccepted))
	r := receivertest.Post(t, tg, `{"State":"OPEN","ProblemID":"2","PID":"quota-2"}`)
	g.Expect(r.Status).To(Equal(http.StatusInsufficientStorage))
	g.Expect(r.Body.Message).To(HavePrefix("notification not stored: the namespace's ResourceQuota allows no more: "))
	g.Expect(r.Body.Message).To(ContainSubstring("exceeded quota: problemevents"))
	g.Expect(env.Events(t, tg.NS)).To(HaveLen(1))
}
