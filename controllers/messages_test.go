package controllers_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers/problemevent"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/internal/notify/notifytest"
	"github.com/problemhook/problemhook/internal/pacing"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

const (
	twilioSID   = "AC0123456789abcdef0123456789abcdef"
	twilioToken = "twilio-auth-token-never-shown"
	robotToken  = "robot-access-token-never-shown"
	robotSecret = "SECrobot-signing-secret-never-shown"
	itsmKey     = "itsm-api-key-never-shown"
	oncallA     = "+4915112345678"
	oncallB     = "+4917000000991"
)

// messaging is a fixture with stand-ins for Twilio, a signed DingTalk robot
// and an ITSM endpoint, and the Secrets that reach them.
type messaging struct {
	*fixture
	twilio *notifytest.Twilio
	robot  *notifytest.DingTalk
	itsm   *itsm
}

// itsm is an HTTP endpoint that records what it receives and answers
// with the next queued status, 201 when none is queued.
type itsm struct {
	*httptest.Server
	mu       sync.Mutex
	calls    []recordedCall
	statuses []int
}

type recordedCall struct {
	Method, Path string
	Header       http.Header
	Body         string
}

func (s *itsm) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.calls = append(s.calls, recordedCall{r.Method, r.URL.RequestURI(), r.Header.Clone(), string(body)})
	status := http.StatusCreated
	if len(s.statuses) > 0 {
		status, s.statuses = s.statuses[0], s.statuses[1:]
	}
	s.mu.Unlock()
	w.WriteHeader(status)
	if status >= 300 {
		_, _ = io.WriteString(w, `{"error":"queue OPS is closed"}`)
	}
}

func (s *itsm) received() []recordedCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recordedCall(nil), s.calls...)
}

func newMessaging(t *testing.T) *messaging {
	m := &messaging{fixture: newFixture(t)}
	m.dt.AddProblem(richProblem())
	m.twilio = notifytest.NewTwilio(twilioSID, twilioToken)
	t.Cleanup(m.twilio.Close)
	m.robot = notifytest.NewDingTalk(robotToken, robotSecret)
	t.Cleanup(m.robot.Close)
	m.itsm = &itsm{}
	m.itsm.Server = httptest.NewServer(http.HandlerFunc(m.itsm.serve))
	t.Cleanup(m.itsm.Close)
	m.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: m.ns, Name: "twilio"},
		Data: map[string][]byte{"accountSID": []byte(twilioSID), "authToken": []byte(twilioToken)}})
	m.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: m.ns, Name: "dingtalk"},
		Data: map[string][]byte{"url": []byte(m.robot.WebhookURL()), "secret": []byte(robotSecret)}})
	m.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: m.ns, Name: "itsm"},
		Data: map[string][]byte{"url": []byte(m.itsm.URL + "/api/incidents?token=" + itsmKey)}})
	m.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: m.ns, Name: "itsm-headers"},
		Data: map[string][]byte{"X-Api-Key": []byte(itsmKey)}})
	return m
}

func (m *messaging) sms(name string, to ...string) problemhookv1alpha1.Action {
	return problemhookv1alpha1.Action{Name: name, Twilio: &problemhookv1alpha1.TwilioAction{
		CredentialsSecretRef: problemhookv1alpha1.LocalObjectReference{Name: "twilio"},
		APIURL:               m.twilio.URL, From: "+18652699000", To: to,
		Body: "{{.DisplayID}} {{.State}}: {{.Title}}",
	}}
}

func (m *messaging) dingtalk(name string) problemhookv1alpha1.Action {
	return problemhookv1alpha1.Action{Name: name, DingTalk: &problemhookv1alpha1.DingTalkAction{
		URLSecretRef:  problemhookv1alpha1.SecretKeyReference{Name: "dingtalk"},
		SignSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "dingtalk"},
		Title:         "{{.DisplayID}} {{.Title}}",
		Text:          "### {{.Title}}\n{{range .ImpactedEntities}}- {{.Name}}\n{{end}}",
	}}
}

func (m *messaging) http(name string) problemhookv1alpha1.Action {
	return problemhookv1alpha1.Action{Name: name, HTTP: &problemhookv1alpha1.HTTPAction{
		URLSecretRef:     &problemhookv1alpha1.SecretKeyReference{Name: "itsm"},
		HeadersSecretRef: &problemhookv1alpha1.LocalObjectReference{Name: "itsm-headers"},
		Method:           "POST",
		Body:             `{"problem":{{json .ProblemID}},"title":{{json .Title}},"tags":{{json .Tags}}}`,
	}}
}

func (m *messaging) routeWithRetry(name string, limit int32, backoff time.Duration, actions ...problemhookv1alpha1.Action) {
	m.t.Helper()
	m.create(&problemhookv1alpha1.IntegrationRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: m.ns, Name: name},
		Spec: problemhookv1alpha1.IntegrationRouteSpec{Actions: actions,
			Retry: &problemhookv1alpha1.RetryPolicy{Limit: &limit, Backoff: metav1.Duration{Duration: backoff}}},
	})
}

func (m *messaging) open() *problemhookv1alpha1.ProblemEvent {
	return m.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen})
}

// expectNoSecrets checks that nothing a user or Dynatrace can read holds a
// credential or a whole phone number: the event's status, its comment, and
// the Kubernetes Events of the namespace.
func (m *messaging) expectNoSecrets(ev *problemhookv1alpha1.ProblemEvent) {
	m.t.Helper()
	status, err := json.Marshal(ev.Status)
	m.g.Expect(err).NotTo(HaveOccurred())
	texts := []string{string(status)}
	for _, c := range m.dt.Comments(pid) {
		texts = append(texts, c.Content)
	}
	var events eventsv1.EventList
	m.g.Expect(k8s.List(m.ctx, &events, client.InNamespace(m.ns))).To(Succeed())
	for _, e := range events.Items {
		texts = append(texts, e.Note)
	}
	for _, text := range texts {
		for _, secret := range []string{twilioToken, robotToken, robotSecret, itsmKey, oncallA, oncallB, "/api/incidents"} {
			m.g.Expect(text).NotTo(ContainSubstring(secret))
		}
	}
}

// A route with all three kinds of message delivers each message once,
// records each recipient's outcome, and reports them in the comment; a
// restart sends nothing again.
func TestMessagesAreDeliveredOnceAndCommented(t *testing.T) {
	m := newMessaging(t)
	sentBefore := controlplane.MetricSum(t, metrics.MessageAttemptsName, map[string]string{"type": "Twilio", "result": "sent"})
	m.route("oncall", problemhookv1alpha1.RouteMatch{}, m.sms("sms", oncallA, oncallB), m.dingtalk("robot"), m.http("ticket"))
	ev := m.open()

	got := m.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Phase).To(Equal(problemhookv1alpha1.PhaseSucceeded))
		g.Expect(ev.Status.Comment).NotTo(BeNil())
	})
	m.g.Expect(got.Status.Actions).To(HaveExactElements(
		And(HaveField("Type", "Twilio"), HaveField("Recipient", "+49*****5678"), HaveField("State", problemhookv1alpha1.ActionSucceeded),
			HaveField("Attempts", int32(1)), HaveField("Message", MatchRegexp(`^Mobile number has been notified: \+49\*\*\*\*\*5678 \(Twilio message SM[0-9a-f]{32} queued\)$`))),
		And(HaveField("Type", "Twilio"), HaveField("Recipient", "+49*****0991"), HaveField("State", problemhookv1alpha1.ActionSucceeded)),
		And(HaveField("Type", "DingTalk"), HaveField("State", problemhookv1alpha1.ActionSucceeded), HaveField("Message", "DingTalk robot accepted the message")),
		And(HaveField("Type", "HTTP"), HaveField("State", problemhookv1alpha1.ActionSucceeded),
			HaveField("Message", "POST the URL in Secret itsm key url answered 201 Created")),
	))

	sms := m.twilio.Messages()
	m.g.Expect(sms).To(HaveLen(2))
	m.g.Expect([]string{sms[0].To, sms[1].To}).To(ConsistOf(oncallA, oncallB))
	for _, s := range sms {
		m.g.Expect(s).To(And(HaveField("From", "+18652699000"), HaveField("Body", "1234 OPEN: CPU saturation")))
	}
	m.g.Expect(m.robot.Messages()).To(HaveExactElements(And(
		HaveField("MsgType", "markdown"), HaveField("Title", "1234 CPU saturation"),
		HaveField("Text", "### CPU saturation\n- web01\n- web02\n"))))
	calls := m.itsm.received()
	m.g.Expect(calls).To(HaveLen(1))
	m.g.Expect(calls[0].Path).To(Equal("/api/incidents?token=" + itsmKey))
	m.g.Expect(calls[0].Header.Get("X-Api-Key")).To(Equal(itsmKey))
	m.g.Expect(calls[0].Header.Get("Content-Type")).To(Equal("application/json"))
	m.g.Expect(calls[0].Header.Get("Idempotency-Key")).To(Equal(string(ev.UID) + "/oncall/ticket"))
	m.g.Expect(calls[0].Body).To(MatchJSON(`{"problem":"` + pid + `","title":"CPU saturation","tags":["env:prod"]}`))

	comment := got.Status.Comment.Message
	m.g.Expect(strings.Split(comment, "\n")).To(HaveExactElements(
		MatchRegexp(`^problemhook Twilio oncall/sms: Mobile number has been notified: \+49\*\*\*\*\*5678 \(Twilio message SM\w+ queued\)$`),
		MatchRegexp(`^problemhook Twilio oncall/sms: Mobile number has been notified: \+49\*\*\*\*\*0991 `),
		"problemhook DingTalk oncall/robot: DingTalk robot accepted the message",
		"problemhook HTTP oncall/ticket: POST the URL in Secret itsm key url answered 201 Created",
		"ProblemEvent "+m.ns+"/"+ev.Name,
	))
	m.g.Expect(m.dt.Comments(pid)).To(ConsistOf(HaveField("Content", comment)))
	m.g.Eventually(func() float64 {
		return controlplane.MetricSum(t, metrics.MessageAttemptsName, map[string]string{"type": "Twilio", "result": "sent"}) - sentBefore
	}).Should(Equal(2.0))
	m.expectNoSecrets(got)

	m.restart()
	m.g.Consistently(func() []int {
		return []int{len(m.twilio.Messages()), len(m.robot.Messages()), len(m.itsm.received()), len(m.dt.Comments(pid))}
	}).WithTimeout(time.Second).Should(Equal([]int{2, 1, 1, 1}))
}

// A retryable failure is tried again after the route's backoff, or after
// the Retry-After the service asked for when that is longer; a
// non-retryable one fails at once; retries end at the route's limit.
func TestMessageRetries(t *testing.T) {
	m := newMessaging(t)
	var (
		mu       sync.Mutex
		smsTimes []time.Time
	)
	m.twilio.OnRequest(func() {
		mu.Lock()
		defer mu.Unlock()
		smsTimes = append(smsTimes, time.Now())
	})
	m.twilio.FailNext(notifytest.Failure{Status: 429, RetryAfter: "2", Code: 20429, Message: "Too Many Requests"})
	m.robot.FailNext(
		notifytest.Failure{Status: 503, Message: "busy"},
		notifytest.Failure{Status: 503, Message: "busy"},
		notifytest.Failure{Status: 503, Message: "busy"},
	)
	m.itsm.statuses = []int{http.StatusUnprocessableEntity}
	m.routeWithRetry("sms", 2, 100*time.Millisecond, m.sms("page", oncallA))
	m.routeWithRetry("robot", 2, 100*time.Millisecond, m.dingtalk("robot"))
	m.routeWithRetry("ticket", 2, 100*time.Millisecond, m.http("open"))
	ev := m.open()

	waiting := m.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(ContainElement(And(HaveField("Route", "sms"), HaveField("NextAttemptTime", Not(BeNil())))))
	})
	for _, a := range waiting.Status.Actions {
		if a.Route == "sms" && a.State == problemhookv1alpha1.ActionPending {
			m.g.Expect(a.Message).To(HavePrefix("Attempt 1 of 3 failed: +49*****5678: Twilio answered 429 Too Many Requests: error 20429: Too Many Requests; next attempt at "))
		}
	}

	got := m.eventually(ev, phase(problemhookv1alpha1.PhaseFailed))
	m.g.Expect(got.Status.Actions).To(HaveExactElements(
		And(HaveField("Route", "robot"), HaveField("State", problemhookv1alpha1.ActionFailed), HaveField("Attempts", int32(3)),
			HaveField("Message", "Failed after 3 attempts: DingTalk answered 503 Service Unavailable: busy")),
		And(HaveField("Route", "sms"), HaveField("State", problemhookv1alpha1.ActionSucceeded), HaveField("Attempts", int32(2)),
			HaveField("NextAttemptTime", BeNil())),
		And(HaveField("Route", "ticket"), HaveField("State", problemhookv1alpha1.ActionFailed), HaveField("Attempts", int32(1)),
			HaveField("Message", `Failed: the URL in Secret itsm key url answered 422 Unprocessable Entity: {"error":"queue OPS is closed"}`)),
	))
	m.g.Expect(m.robot.Requests()).To(Equal(3))
	m.g.Expect(m.itsm.received()).To(HaveLen(1))
	mu.Lock()
	defer mu.Unlock()
	m.g.Expect(smsTimes).To(HaveLen(2))
	m.g.Expect(smsTimes[1].Sub(smsTimes[0])).To(BeNumerically(">=", 2*time.Second), "Retry-After: 2 is honoured")
	m.expectNoSecrets(got)
}

// A run is recorded as in flight before its request leaves.
func TestMessageIsRecordedBeforeItIsSent(t *testing.T) {
	m := newMessaging(t)
	key := client.ObjectKey{Namespace: m.ns, Name: problemhookv1alpha1.EventName(m.target.Name, pid, problemhookv1alpha1.StateOpen)}
	seen := make(chan problemhookv1alpha1.ActionStatus, 1)
	m.twilio.OnRequest(func() {
		var stored problemhookv1alpha1.ProblemEvent
		if err := k8s.Get(m.ctx, key, &stored); err == nil && len(stored.Status.Actions) == 1 {
			seen <- stored.Status.Actions[0]
		}
	})
	m.route("sms", problemhookv1alpha1.RouteMatch{}, m.sms("page", oncallA))
	ev := m.open()
	m.g.Expect(client.ObjectKeyFromObject(ev)).To(Equal(key))
	m.eventually(ev, phase(problemhookv1alpha1.PhaseSucceeded))
	var atSend problemhookv1alpha1.ActionStatus
	m.g.Eventually(seen).Should(Receive(&atSend))
	m.g.Expect(atSend).To(And(HaveField("State", problemhookv1alpha1.ActionRunning), HaveField("Attempts", int32(1)),
		HaveField("Message", "Sending, attempt 1")))
}

// What problemhook guarantees across a crash: a run recorded as in flight
// is never sent again. A manager that stops between claiming a send and
// recording its answer leaves the run Running; the next one fails it as
// "outcome unknown" and sends nothing.
func TestCrashBetweenSendAndRecordDoesNotSendTwice(t *testing.T) {
	m := newMessaging(t)
	m.stop()
	m.route("sms", problemhookv1alpha1.RouteMatch{}, m.sms("page", oncallA))
	ev := m.open()
	// The status a manager leaves when it stops right after the send.
	crashed := ev.DeepCopy()
	started := metav1.Now()
	crashed.Status = problemhookv1alpha1.ProblemEventStatus{Phase: problemhookv1alpha1.PhaseRunning, Actions: []problemhookv1alpha1.ActionStatus{{
		Route: "sms", Action: "page", Type: "Twilio", Recipient: "+49*****5678", State: problemhookv1alpha1.ActionRunning,
		Attempts: 1, Message: "Sending, attempt 1", StartTime: &started,
	}}}
	m.g.Expect(k8s.Status().Update(m.ctx, crashed)).To(Succeed())

	m.stop, m.receiver = startEventManager(t, m.ns)
	got := m.eventually(ev, phase(problemhookv1alpha1.PhaseFailed))
	m.g.Expect(got.Status.Actions[0]).To(And(HaveField("State", problemhookv1alpha1.ActionFailed), HaveField("Attempts", int32(1)),
		HaveField("Message", HavePrefix("Outcome unknown: problemhook stopped while this message was being sent"))))
	m.g.Consistently(m.twilio.Requests).WithTimeout(500 * time.Millisecond).Should(BeZero())
	m.g.Expect(got.Status.Comment).NotTo(BeNil())
	m.g.Expect(got.Status.Comment.Message).To(ContainSubstring("problemhook Twilio sms/page: Outcome unknown"))
}

// A manager stopped while a message is on its way (a rollout) waits for
// the answer and records it, so the next one does not send it again.
func TestStopDuringSendRecordsTheOutcome(t *testing.T) {
	m := newMessaging(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	m.twilio.OnRequest(func() {
		once.Do(func() { close(arrived) })
		<-release
	})
	m.route("sms", problemhookv1alpha1.RouteMatch{}, m.sms("page", oncallA))
	ev := m.open()
	m.g.Eventually(arrived).Should(BeClosed())

	stopped := make(chan struct{})
	go func() {
		m.stop()
		close(stopped)
	}()
	m.g.Consistently(stopped).WithTimeout(300 * time.Millisecond).ShouldNot(BeClosed())
	close(release)
	m.g.Eventually(stopped).Should(BeClosed())
	got := m.get(ev)
	m.g.Expect(got.Status.Actions[0]).To(And(HaveField("State", problemhookv1alpha1.ActionSucceeded), HaveField("Attempts", int32(1))))

	m.stop, m.receiver = startEventManager(t, m.ns)
	m.eventually(ev, phase(problemhookv1alpha1.PhaseSucceeded))
	m.g.Consistently(m.twilio.Requests).WithTimeout(500 * time.Millisecond).Should(Equal(1))
	m.g.Expect(m.twilio.Messages()).To(HaveLen(1))
}

// A message that cannot be sent as the route says fails with what to fix,
// naming the route and the action, and sends nothing.
func TestMessageThatCannotBeBuiltFails(t *testing.T) {
	m := newMessaging(t)
	badTemplate := m.sms("page", oncallA)
	badTemplate.Twilio.Body = `{{index .Tags 2}}` // the sample problem has three tags; this event fewer
	missingSecret := m.dingtalk("robot")
	missingSecret.DingTalk.URLSecretRef.Name = "no-such-robot"
	badHeaders := m.http("ticket")
	badHeaders.HTTP.HeadersSecretRef.Name = "bad-headers"
	m.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: m.ns, Name: "bad-headers"},
		Data: map[string][]byte{"X-Token": []byte("line\nbreak " + itsmKey)}})
	m.route("a-template", problemhookv1alpha1.RouteMatch{}, badTemplate)
	m.route("b-secret", problemhookv1alpha1.RouteMatch{}, missingSecret)
	m.route("c-headers", problemhookv1alpha1.RouteMatch{}, badHeaders)
	ev := m.open()

	got := m.eventually(ev, phase(problemhookv1alpha1.PhaseFailed))
	m.g.Expect(got.Status.Actions).To(HaveExactElements(
		HaveField("Message", And(HavePrefix(`IntegrationRoute a-template action page: rendering twilio.body of action "page": template: twilio.body:1:2: executing "twilio.body" at <index .Tags 2>: error calling index: index out of range: 2`))),
		HaveField("Message", "IntegrationRoute b-secret action robot: dingtalk.urlSecretRef: Secret "+m.ns+"/no-such-robot not found"),
		HaveField("Message", `IntegrationRoute c-headers action ticket: http.headersSecretRef: the value of key "X-Token" is not a valid HTTP header value (Secret bad-headers)`),
	))
	for _, a := range got.Status.Actions {
		m.g.Expect(a).To(And(HaveField("State", problemhookv1alpha1.ActionFailed), HaveField("Attempts", int32(0))))
	}
	m.g.Expect([]int{m.twilio.Requests(), m.robot.Requests(), len(m.itsm.received())}).To(Equal([]int{0, 0, 0}))
	m.expectNoSecrets(got)
}

// A route edited after the event was routed, so that an action became
// another kind, does not make the recorded run as the new kind.
func TestActionThatChangedKindIsNotRun(t *testing.T) {
	m := newMessaging(t)
	ir := m.route("legacy", problemhookv1alpha1.RouteMatch{}, jobAction(t, "first", false, 1), jobAction(t, "notify", false, 1))
	ev := m.open()
	first := m.waitJobs(1)[0]

	m.stop()
	updateRoute(m.g, ir, func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.Actions[1] = m.http("notify") })
	m.finishJob(&first, 0)
	m.stop, m.receiver = startEventManager(t, m.ns)

	got := m.eventually(ev, phase(problemhookv1alpha1.PhaseFailed))
	m.g.Expect(got.Status.Actions[1]).To(And(HaveField("Type", "Job"), HaveField("State", problemhookv1alpha1.ActionFailed),
		HaveField("Message", "IntegrationRoute legacy action notify is no longer a Job action")))
	m.g.Expect(m.itsm.received()).To(BeEmpty())
	m.g.Expect(m.jobs(m.g)).To(HaveLen(1))
}

// A message not yet sent when its problem resolves is not sent: a retry
// waiting on Twilio's Retry-After is recorded Stopped, and Twilio hears no
// more of it. An action that says stopOnResolve: false goes on.
func TestMessagesStopWhenTheProblemResolves(t *testing.T) {
	m := newMessaging(t)
	m.twilio.FailNext(notifytest.Failure{Status: 429, RetryAfter: "30", Code: 20429, Message: "Too Many Requests"})
	m.itsm.statuses = []int{http.StatusServiceUnavailable}
	keep := m.http("open")
	keep.HTTP.StopOnResolve = new(false)
	openOnly := problemhookv1alpha1.RouteMatch{States: []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateOpen}}
	for name, action := range map[string]problemhookv1alpha1.Action{"sms": m.sms("page", oncallA), "ticket": keep} {
		m.create(&problemhookv1alpha1.IntegrationRoute{ObjectMeta: metav1.ObjectMeta{Namespace: m.ns, Name: name},
			Spec: problemhookv1alpha1.IntegrationRouteSpec{Match: openOnly, Actions: []problemhookv1alpha1.Action{action},
				Retry: &problemhookv1alpha1.RetryPolicy{Limit: new(int32(2)), Backoff: metav1.Duration{Duration: time.Second}}}})
	}
	open := m.open()
	m.eventually(open, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(ContainElement(And(HaveField("Route", "sms"), HaveField("NextAttemptTime", Not(BeNil())))))
	})

	resolved := m.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateResolved})
	got := m.eventually(open, phase(problemhookv1alpha1.PhaseSucceeded))
	m.g.Expect(got.Status.Actions).To(HaveExactElements(
		And(HaveField("Route", "sms"), HaveField("State", problemhookv1alpha1.ActionStopped), HaveField("Attempts", int32(1)), HaveField("NextAttemptTime", BeNil()),
			HaveField("Message", "Not sent again after 1 failed attempt: the problem resolved (ProblemEvent "+resolved.Name+")")),
		And(HaveField("Route", "ticket"), HaveField("State", problemhookv1alpha1.ActionSucceeded), HaveField("Attempts", int32(2))),
	))
	m.g.Expect(m.twilio.Requests()).To(Equal(1))
	m.g.Expect(m.itsm.received()).To(HaveLen(2))
	m.expectNoSecrets(got)
}

// One DingTalk robot gets at most its rate across all events: the messages
// past it wait their turn, none is refused for it, and none is an attempt
// more.
func TestDingTalkRobotIsPaced(t *testing.T) {
	m := newMessaging(t)
	const window = 3 * time.Second
	m.robot.SetRate(20, window)
	m.stop()
	m.stop, m.receiver = startEventManager(t, m.ns, func(r *problemevent.Reconciler) {
		r.DingTalkRate = pacing.Rate{Messages: 20, Per: window}
	})
	m.routeWithRetry("robot", 0, time.Second, m.dingtalk("paced"))
	var events []*problemhookv1alpha1.ProblemEvent
	for i := range 25 {
		events = append(events, m.event(problemhookv1alpha1.ProblemEventSpec{
			ProblemID: fmt.Sprintf("-%d_%dV2", i+1, i+1), DisplayID: fmt.Sprint(i + 1), State: problemhookv1alpha1.StateOpen,
		}))
	}
	waited := 0
	for _, ev := range events {
		got := m.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
			g.Expect(ev.Status.Actions).To(HaveExactElements(And(
				HaveField("State", problemhookv1alpha1.ActionSucceeded), HaveField("Attempts", int32(1)))))
		})
		if got.Status.Actions[0].StartTime.Sub(got.CreationTimestamp.Time) >= time.Second {
			waited++
		}
	}
	m.g.Expect(m.robot.Messages()).To(HaveLen(25))
	m.g.Expect(m.robot.TooFast()).To(BeZero(), "no message refused for passing the rate")
	m.g.Expect(waited).To(BeNumerically(">=", 5), "the messages past the rate waited their turn")
}

// A Twilio sender that answered 429 is left alone for the time it asked:
// another event's message from it waits instead of being refused too.
func TestTwilioSenderIsPacedAfter429(t *testing.T) {
	m := newMessaging(t)
	m.routeWithRetry("sms", 2, time.Second, m.sms("sms", oncallA))
	m.twilio.FailNext(notifytest.Failure{Status: 429, RetryAfter: "3", Code: 20429, Message: "Too Many Requests"})
	first := m.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-1_1V2", DisplayID: "1", State: problemhookv1alpha1.StateOpen})
	m.eventually(first, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(HaveField("Attempts", int32(1))))
		g.Expect(ev.Status.Actions[0].NextAttemptTime).NotTo(BeNil())
	})
	second := m.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-2_2V2", DisplayID: "2", State: problemhookv1alpha1.StateOpen})
	m.eventually(second, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(And(
			HaveField("State", problemhookv1alpha1.ActionPending), HaveField("Attempts", int32(0)),
			HaveField("Message", HavePrefix("Waiting its turn: Twilio asked for time before more messages from +18652699000; sending at ")))))
	})
	for _, ev := range []*problemhookv1alpha1.ProblemEvent{first, second} {
		m.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
			g.Expect(ev.Status.Actions).To(HaveExactElements(HaveField("State", problemhookv1alpha1.ActionSucceeded)))
		})
	}
	m.g.Expect(m.get(second).Status.Actions[0].Attempts).To(Equal(int32(1)), "the waiting message was sent once")
	m.g.Expect(m.twilio.Requests()).To(Equal(3), "the 429, then one message each")
}

// No Secret value reaches what a message records: a URL from a Secret that
// a problem's title breaks is not quoted in the error, and a service that
// echoes the key it refused has its answer recorded with the key masked,
// in the run, its Events and the comment.
func TestSecretsNeverReachAMessage(t *testing.T) {
	m := newMessaging(t)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"unknown key `+r.Header.Get("X-Api-Key")+`"}`)
	}))
	t.Cleanup(echo.Close)
	m.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: m.ns, Name: "echo"},
		Data: map[string][]byte{"url": []byte(echo.URL + "/api/incidents?token=" + itsmKey)}})
	broken := m.http("ticket")
	broken.HTTP.URLSecretRef = &problemhookv1alpha1.SecretKeyReference{Name: "itsm"}
	m.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: m.ns, Name: "itsm-base"},
		Data: map[string][]byte{"url": []byte(m.itsm.URL + "/api/incidents/" + itsmKey)}})
	broken.HTTP.URLSecretRef.Name = "itsm-base"
	broken.HTTP.Path = "/{{.Title}}"
	echoed := m.http("echoed")
	echoed.HTTP.URLSecretRef.Name = "echo"
	m.route("a-path", problemhookv1alpha1.RouteMatch{}, broken)
	m.route("b-echo", problemhookv1alpha1.RouteMatch{}, echoed)
	ev := m.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "1234", State: problemhookv1alpha1.StateOpen, Title: "CPU at 100%zz"})

	got := m.eventually(ev, phase(problemhookv1alpha1.PhaseFailed))
	m.g.Expect(got.Status.Actions).To(HaveExactElements(
		HaveField("Message", `IntegrationRoute a-path action ticket: http.path: the URL with the path does not parse: invalid URL escape "%zz"`),
		HaveField("Message", And(ContainSubstring(`unknown key [masked]`), Not(ContainSubstring(itsmKey)))),
	))
	m.g.Expect(m.itsm.received()).To(BeEmpty(), "the broken URL was not called")
	m.expectNoSecrets(got)
}
