// Package receivertest runs the receiver as main.go wires it, beside the
// NotificationTarget reconciler, on a test control plane, and sends it
// notifications as Dynatrace and Guance would. The receiver's and the
// dashboard's tests share it.
package receivertest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/controllers/notificationtarget"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/webhookserver/receiver"
)

// Credentials of the targets NewTarget creates, and the smallest
// notification the Dynatrace format takes.
const (
	MinimalDynatrace = `{"State":"OPEN","ProblemID":"1234","PID":"-6150203450926486413_1669823466223V2"}`
	User             = "dynatrace"
	Password         = "s3cret"
	Token            = "guance-token"
	// ReceiverURL is the base URL the targets' status.webhookURL names.
	ReceiverURL = "http://receiver.test:9292"
)

// Env is a test package's control plane with a manager that runs the
// NotificationTarget reconciler and the receiver, and an HTTP server in
// front of the receiver. Each test works in a namespace of its own.
type Env struct {
	*controlplane.TestEnv
	// Receiver is the manager's receiver; Server serves its handler.
	Receiver *receiver.Server
	Server   *httptest.Server
}

// Main is a receiver test package's TestMain: it fills env and runs the tests.
func Main(m *testing.M, env *Env) int {
	return controlplane.RunTests(m, func(ctx context.Context, e *controlplane.TestEnv) (ctrl.Manager, error) {
		env.TestEnv = e
		e.Config.QPS, e.Config.Burst = 200, 400
		mgr, err := e.NewManager()
		if err != nil {
			return nil, err
		}
		if err := (&notificationtarget.Reconciler{
			Deps:        controllers.Deps{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("problemhook")},
			ReceiverURL: ReceiverURL,
		}).SetupWithManager(ctx, mgr); err != nil {
			return nil, err
		}
		env.Receiver = &receiver.Server{
			Addr:           "127.0.0.1:0",
			Cache:          mgr.GetCache(),
			Client:         mgr.GetClient(),
			MaxBodyBytes:   64 << 10,
			StatusInterval: 200 * time.Millisecond,
		}
		// The test server outlives the package's tests; the process ends with them.
		env.Server = httptest.NewServer(env.Receiver.Handler())
		return mgr, mgr.Add(env.Receiver)
	})
}

// NewNamespace creates a namespace for one test.
func (e *Env) NewNamespace(t *testing.T) string {
	t.Helper()
	return controlplane.NewNamespace(t, e.Client, "receiver")
}

// Target is a NotificationTarget under test and how to reach it.
type Target struct {
	NS, Name string
	Obj      *problemhookv1alpha1.NotificationTarget
	// URL is where its notifications are posted.
	URL string
}

// NewTarget creates a ready NotificationTarget of format, in a namespace
// of its own, with basic auth (Dynatrace) or bearer auth (Guance), after
// mutate has had its say.
func (e *Env) NewTarget(t *testing.T, format problemhookv1alpha1.PayloadFormat, mutate ...func(*problemhookv1alpha1.NotificationTarget)) Target {
	t.Helper()
	g := gomega.NewWithT(t)
	ctx := context.Background()
	ns := e.NewNamespace(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"},
		Data: map[string][]byte{"username": []byte(User), "password": []byte(Password), "token": []byte(Token)}}
	g.Expect(e.Client.Create(ctx, secret)).To(gomega.Succeed())
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
	g.Expect(e.Client.Create(ctx, nt)).To(gomega.Succeed())
	if !nt.Spec.Suspend {
		e.EventuallyReady(t, nt)
	}
	return Target{NS: ns, Name: nt.Name, Obj: nt, URL: e.Server.URL + nt.GetWebhookPath()}
}

// EventuallyReady waits until the receiver's cache sees nt as Ready.
func (e *Env) EventuallyReady(t *testing.T, nt *problemhookv1alpha1.NotificationTarget) {
	t.Helper()
	gomega.NewWithT(t).Eventually(func(g gomega.Gomega) {
		var got problemhookv1alpha1.NotificationTarget
		g.Expect(e.Receiver.Cache.Get(context.Background(), client.ObjectKeyFromObject(nt), &got)).To(gomega.Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, problemhookv1alpha1.ConditionReady)).To(gomega.BeTrue())
	}).WithTimeout(10 * time.Second).Should(gomega.Succeed())
}

// Events lists the ProblemEvents of namespace ns.
func (e *Env) Events(t *testing.T, ns string) []problemhookv1alpha1.ProblemEvent {
	t.Helper()
	var list problemhookv1alpha1.ProblemEventList
	if err := e.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// Reply is the receiver's answer to one request.
type Reply struct {
	Status int
	Header http.Header
	Body   struct {
		Result       string `json:"result"`
		ProblemEvent string `json:"problemEvent"`
		Code         int    `json:"code"`
		Message      string `json:"message"`
	}
}

// Request is one request to the receiver: a POST of JSON unless it says otherwise.
type Request struct {
	Method, URL, ContentType, Body string
	Auth                           func(*http.Request)
	// Client sends the request; http.DefaultClient when nil.
	Client *http.Client
}

// Basic sets basic auth credentials on a request.
func Basic(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }

// Bearer sets a bearer token on a request.
func Bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// Send sends rq and reads the receiver's JSON answer.
func Send(t *testing.T, rq Request) Reply {
	t.Helper()
	if rq.Method == "" {
		rq.Method = http.MethodPost
	}
	if rq.ContentType == "" {
		rq.ContentType = "application/json"
	}
	req, err := http.NewRequest(rq.Method, rq.URL, strings.NewReader(rq.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", rq.ContentType)
	if rq.Auth != nil {
		rq.Auth(req)
	}
	c := rq.Client
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
	r := Reply{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(data, &r.Body); err != nil {
		t.Fatalf("answer is not JSON: %q", data)
	}
	return r
}

// Post posts body to tg with its credentials.
func Post(t *testing.T, tg Target, body string) Reply {
	t.Helper()
	auth := Basic(User, Password)
	if tg.Obj.Spec.Format == problemhookv1alpha1.FormatGuance {
		auth = Bearer(Token)
	}
	return Send(t, Request{URL: tg.URL, Body: body, Auth: auth})
}
