package notify_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/internal/egress"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/notify/notifytest"
)

const (
	sid       = "AC0123456789abcdef0123456789abcdef"
	authToken = "twilio-auth-token-do-not-show"
	robotKey  = "robot-access-token-do-not-show"
	signKey   = "SECdingtalk-signing-secret-do-not-show"
	recipient = "+4915112345678"
)

// secrets are strings that must never appear in a result or an error.
var secrets = []string{authToken, robotKey, signKey, recipient}

func expectSafe(g Gomega, texts ...string) {
	for _, text := range texts {
		for _, s := range secrets {
			g.ExpectWithOffset(1, text).NotTo(ContainSubstring(s))
		}
	}
}

// expectSendError checks a failed send: its message, whether and when it
// may be retried, and that it shows no secret.
func expectSendError(g Gomega, err error, message string, retryable bool, after time.Duration) {
	g.ExpectWithOffset(1, err).To(MatchError(message))
	gotRetryable, gotAfter := notify.IsRetryable(err)
	g.ExpectWithOffset(1, gotRetryable).To(Equal(retryable))
	g.ExpectWithOffset(1, gotAfter).To(Equal(after))
	expectSafe(g, err.Error())
}

func sms(apiURL string) notify.SMS {
	return notify.SMS{APIURL: apiURL, AccountSID: sid, AuthToken: authToken, From: "+18652699000", To: recipient, Body: "Problem P-1 opened"}
}

// unreachable is a URL nothing listens on.
func unreachable(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestTwilio(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	tw := notifytest.NewTwilio(sid, authToken)
	defer tw.Close()
	c := &notify.Client{}

	res, err := c.SendSMS(ctx, sms(tw.URL))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Detail).To(MatchRegexp(`^Twilio message SM[0-9a-f]{32} queued$`))
	svc := sms(tw.URL)
	svc.From, svc.MessagingServiceSID = "", "MG0123456789abcdef0123456789abcdef"
	_, err = c.SendSMS(ctx, svc)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(tw.Messages()).To(HaveExactElements(
		notifytest.SMS{SID: tw.Messages()[0].SID, To: recipient, From: "+18652699000", Body: "Problem P-1 opened"},
		notifytest.SMS{SID: tw.Messages()[1].SID, To: recipient, MessagingServiceSID: svc.MessagingServiceSID, Body: "Problem P-1 opened"},
	))

	for _, tc := range []struct {
		name      string
		mutate    func(*notify.SMS)
		fail      *notifytest.Failure
		retryable bool
		after     time.Duration
		message   string
	}{{
		name:    "wrong auth token",
		mutate:  func(m *notify.SMS) { m.AuthToken = "wrong" },
		message: "Twilio answered 401 Unauthorized: error 20003: Authenticate",
	}, {
		name:    "invalid recipient, masked in Twilio's message",
		mutate:  func(m *notify.SMS) { m.To = "+4915112345678999" },
		message: "Twilio answered 400 Bad Request: error 21211: Invalid 'To' Phone Number: +49*****8999",
	}, {
		name:    "body too long",
		mutate:  func(m *notify.SMS) { m.Body = strings.Repeat("x", 1601) },
		message: "Twilio answered 400 Bad Request: error 21617: The concatenated message body exceeds the 1600 character limit.",
	}, {
		name:    "account SID is not one",
		mutate:  func(m *notify.SMS) { m.AccountSID = "not-a-sid" },
		message: "The Twilio account SID is not AC followed by 32 hexadecimal digits",
	}, {
		name:      "too many requests, with Retry-After",
		fail:      &notifytest.Failure{Status: 429, RetryAfter: "3", Code: 20429, Message: "Too Many Requests"},
		retryable: true, after: 3 * time.Second,
		message: "Twilio answered 429 Too Many Requests: error 20429: Too Many Requests",
	}, {
		name:      "server error",
		fail:      &notifytest.Failure{Status: 503, Code: 20503, Message: "Service Unavailable"},
		retryable: true,
		message:   "Twilio answered 503 Service Unavailable: error 20503: Service Unavailable",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			m := sms(tw.URL)
			if tc.mutate != nil {
				tc.mutate(&m)
			}
			if tc.fail != nil {
				tw.FailNext(*tc.fail)
			}
			before := len(tw.Messages())
			_, err := c.SendSMS(ctx, m)
			expectSendError(g, err, tc.message, tc.retryable, tc.after)
			g.Expect(tw.Messages()).To(HaveLen(before))
		})
	}
}

func TestTwilioUnreachableAndSlow(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	_, err := (&notify.Client{}).SendSMS(ctx, sms(unreachable(t)))
	g.Expect(err).To(MatchError(ContainSubstring("Calling Twilio: ")))
	g.Expect(notify.IsRetryable(err)).To(BeTrue())
	expectSafe(g, err.Error())

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the client hang up
		<-r.Context().Done()
	}))
	defer slow.Close()
	c := &notify.Client{HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}}
	_, err = c.SendSMS(ctx, sms(slow.URL))
	g.Expect(err).To(MatchError(ContainSubstring("Calling Twilio: no answer in time")))
	g.Expect(notify.IsRetryable(err)).To(BeTrue())
}

func TestDingTalk(t *testing.T) {
	ctx := context.Background()
	robot := notifytest.NewDingTalk(robotKey, signKey)
	defer robot.Close()
	c := &notify.Client{}
	msg := notify.DingTalkMessage{URL: robot.WebhookURL(), Secret: signKey, Title: "P-1 opened", Text: "**CPU** saturated"}

	t.Run("signed markdown and text", func(t *testing.T) {
		g := NewWithT(t)
		res, err := c.SendDingTalk(ctx, msg)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Detail).To(Equal("DingTalk robot accepted the message"))
		text := msg
		text.MsgType, text.Title = notify.DingTalkText, ""
		_, err = c.SendDingTalk(ctx, text)
		g.Expect(err).NotTo(HaveOccurred())
		got := robot.Messages()
		g.Expect(got).To(HaveLen(2))
		g.Expect(got[0]).To(And(HaveField("MsgType", "markdown"), HaveField("Title", "P-1 opened"), HaveField("Text", "**CPU** saturated")))
		g.Expect(got[0].Timestamp).To(BeTemporally("~", time.Now(), time.Minute))
		g.Expect(got[1]).To(And(HaveField("MsgType", "text"), HaveField("Text", "**CPU** saturated")))
	})

	for _, tc := range []struct {
		name      string
		client    *notify.Client
		mutate    func(*notify.DingTalkMessage)
		fail      *notifytest.Failure
		retryable bool
		after     time.Duration
		message   string
	}{{
		name:    "wrong signing secret",
		mutate:  func(m *notify.DingTalkMessage) { m.Secret = "SECwrong" },
		message: "DingTalk error 310000: sign not match",
	}, {
		name:    "unsigned request to a signing robot",
		mutate:  func(m *notify.DingTalkMessage) { m.Secret = "" },
		message: "DingTalk error 310000: sign not match: no timestamp",
	}, {
		name:    "clock two hours behind",
		client:  &notify.Client{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }},
		message: "DingTalk error 310000: sign not match: timestamp is more than an hour from the server's time",
	}, {
		name:    "wrong access token",
		mutate:  func(m *notify.DingTalkMessage) { m.URL = strings.Replace(m.URL, robotKey, "other", 1) },
		message: "DingTalk error 300001: token is not exist",
	}, {
		name:    "not a URL",
		mutate:  func(m *notify.DingTalkMessage) { m.URL = "oapi.dingtalk.com/robot/send?access_token=" + robotKey },
		message: "The DingTalk robot URL is not an http or https URL",
	}, {
		name:      "sending too fast",
		fail:      &notifytest.Failure{Code: 130101, Message: "send too fast"},
		retryable: true, after: time.Minute,
		message: "DingTalk error 130101: send too fast (more than 20 messages a minute to this robot)",
	}, {
		name:      "server error with Retry-After",
		fail:      &notifytest.Failure{Status: 502, RetryAfter: "7", Message: "bad gateway"},
		retryable: true, after: 7 * time.Second,
		message: "DingTalk answered 502 Bad Gateway: bad gateway",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			m := msg
			if tc.mutate != nil {
				tc.mutate(&m)
			}
			if tc.fail != nil {
				robot.FailNext(*tc.fail)
			}
			client := c
			if tc.client != nil {
				client = tc.client
			}
			before := len(robot.Messages())
			_, err := client.SendDingTalk(ctx, m)
			expectSendError(g, err, tc.message, tc.retryable, tc.after)
			g.Expect(robot.Messages()).To(HaveLen(before))
		})
	}

	t.Run("unreachable robot: the URL's token is not shown", func(t *testing.T) {
		g := NewWithT(t)
		m := msg
		m.URL = unreachable(t) + "/robot/send?access_token=" + robotKey
		_, err := c.SendDingTalk(ctx, m)
		g.Expect(err).To(MatchError(ContainSubstring("Calling DingTalk: ")))
		g.Expect(notify.IsRetryable(err)).To(BeTrue())
		expectSafe(g, err.Error())
	})
}

func TestDingTalkSignature(t *testing.T) {
	// Computed apart from this code, with Python's hmac as DingTalk's
	// documentation does: base64(HMAC-SHA256(key="SECxxx", msg="1577262236757\nSECxxx")).
	NewWithT(t).Expect(notify.DingTalkSign("1577262236757", "SECxxx")).To(Equal("TajHYUQC5a6smO3qjKNgFiJalsQ51g5gqH0iiy2oY+o="))
}

// recordedCall is what an HTTP endpoint received.
type recordedCall struct {
	method, path string
	header       http.Header
	body         string
}

func TestHTTPCall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	calls := make(chan recordedCall, 10)
	status, retryAfter := http.StatusCreated, ""
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		calls <- recordedCall{r.Method, r.URL.RequestURI(), r.Header.Clone(), string(body)}
		switch {
		case r.URL.Path == "/moved":
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
		case retryAfter != "":
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(status)
		default:
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"error":"ticket queue\nclosed",   "id": 7}`)
		}
	}))
	defer endpoint.Close()
	c := &notify.Client{}

	res, err := c.Do(ctx, notify.Call{
		URL: endpoint.URL + "/tickets?team=ops", Header: http.Header{"X-Api-Key": {"itsm-key"}},
		Body: `{"problem":"P-1"}`, IdempotencyKey: "uid-1/itsm/ticket",
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Detail).To(Equal("POST " + endpoint.URL + "/tickets answered 201 Created"))
	got := <-calls
	g.Expect(got.method).To(Equal("POST"))
	g.Expect(got.path).To(Equal("/tickets?team=ops"))
	g.Expect(got.header.Get("X-Api-Key")).To(Equal("itsm-key"))
	g.Expect(got.header.Get("Content-Type")).To(Equal("application/json"))
	g.Expect(got.header.Get("Idempotency-Key")).To(Equal("uid-1/itsm/ticket"))
	g.Expect(got.header.Get("User-Agent")).To(Equal("problemhook"))
	g.Expect(got.body).To(Equal(`{"problem":"P-1"}`))

	_, err = c.Do(ctx, notify.Call{Method: "PUT", URL: endpoint.URL + "/notes", Body: "plain words",
		Header: http.Header{"Content-Type": {"text/markdown"}, "Idempotency-Key": {"mine"}}})
	g.Expect(err).NotTo(HaveOccurred())
	got = <-calls
	g.Expect(got.method).To(Equal("PUT"))
	g.Expect(got.header.Get("Content-Type")).To(Equal("text/markdown"))
	g.Expect(got.header.Get("Idempotency-Key")).To(Equal("mine"))

	_, err = c.Do(ctx, notify.Call{Method: "GET", URL: endpoint.URL + "/ping"})
	g.Expect(err).NotTo(HaveOccurred())
	got = <-calls
	g.Expect(got.body).To(BeEmpty())
	g.Expect(got.header.Get("Content-Type")).To(BeEmpty())

	status = http.StatusNotFound
	_, err = c.Do(ctx, notify.Call{URL: endpoint.URL + "/tickets?token=" + robotKey, Where: "the URL in Secret itsm key url"})
	g.Expect(err).To(MatchError(`the URL in Secret itsm key url answered 404 Not Found: {"error":"ticket queue\nclosed", "id": 7}`))
	g.Expect(notify.IsRetryable(err)).To(BeFalse())
	expectSafe(g, err.Error())
	<-calls

	status, retryAfter = http.StatusServiceUnavailable, time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat)
	_, err = c.Do(ctx, notify.Call{URL: endpoint.URL + "/tickets"})
	g.Expect(err).To(MatchError(endpoint.URL + "/tickets answered 503 Service Unavailable"))
	retryable, after := notify.IsRetryable(err)
	g.Expect(retryable).To(BeTrue())
	g.Expect(after).To(BeNumerically("~", 90*time.Second, 2*time.Second))
	<-calls

	_, err = c.Do(ctx, notify.Call{URL: endpoint.URL + "/moved"})
	g.Expect(err).To(MatchError(endpoint.URL + "/moved answered 302 Found"))
	g.Expect(notify.IsRetryable(err)).To(BeFalse())
	<-calls

	_, err = c.Do(ctx, notify.Call{URL: unreachable(t) + "/hook?token=" + robotKey, Where: "the URL in Secret chat key url"})
	g.Expect(err).To(MatchError(ContainSubstring("Calling the URL in Secret chat key url: ")))
	g.Expect(notify.IsRetryable(err)).To(BeTrue())
	expectSafe(g, err.Error())

	_, err = c.Do(ctx, notify.Call{URL: "ftp://example.com/x", Where: "the URL in Secret chat key url"})
	g.Expect(err).To(MatchError("the URL in Secret chat key url is not an http or https URL"))
}

func TestCheckHeaders(t *testing.T) {
	g := NewWithT(t)
	g.Expect(notify.CheckHeaders(map[string][]byte{"Authorization": []byte("Bearer x"), "X-Team": []byte("ops")})).To(Succeed())
	g.Expect(notify.CheckHeaders(map[string][]byte{"bad header": []byte("x")})).To(MatchError(`key "bad header" is not a valid HTTP header name`))
	g.Expect(notify.CheckHeaders(map[string][]byte{"X-Token": []byte("line\nbreak")})).To(MatchError(`the value of key "X-Token" is not a valid HTTP header value`))
}

func TestMasking(t *testing.T) {
	g := NewWithT(t)
	g.Expect(notify.MaskPhone("+4915112345678")).To(Equal("+49*****5678"))
	g.Expect(notify.MaskPhone("+4917000000")).To(Equal("+49*****0000"))
	g.Expect(notify.MaskPhone("12345")).To(Equal("*****"))
	g.Expect(notify.MaskPhones("The 'To' number +4915112345678 (4915112345678) is not reachable; error 21614")).
		To(Equal("The 'To' number +49*****5678 (491*****5678) is not reachable; error 21614"))
}

func TestRetryAfter(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	g.Expect(notify.RetryAfter("", now)).To(BeZero())
	g.Expect(notify.RetryAfter("120", now)).To(Equal(2 * time.Minute))
	g.Expect(notify.RetryAfter("-5", now)).To(BeZero())
	g.Expect(notify.RetryAfter("soon", now)).To(BeZero())
	g.Expect(notify.RetryAfter("Sat, 21 Nov 2026 12:01:30 GMT", now)).To(Equal(90 * time.Second))
	g.Expect(notify.RetryAfter("Sat, 21 Nov 2026 11:00:00 GMT", now)).To(BeZero())
	g.Expect(notify.RetryAfter("99999999", now)).To(Equal(24 * time.Hour))
}

// A sender's client built with a proxy in the environment checks the
// destination, not the proxy: a call to the metadata address is refused
// with the policy's words, not retried, and the proxy sees nothing.
func TestProxyInTheEnvironmentHonoursTheEgressPolicy(t *testing.T) {
	g := NewWithT(t)
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxied.Add(1) }))
	t.Cleanup(proxy.Close)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("NO_PROXY", "")
	policy := egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil)
	c := &notify.Client{HTTPClient: notify.NewHTTPClient(policy)}
	_, err := c.Do(context.Background(), notify.Call{Method: http.MethodPost, URL: "http://169.254.169.254/latest/meta-data/"})
	g.Expect(err).To(MatchError("Calling http://169.254.169.254/latest/meta-data/: destination 169.254.169.254 is not allowed by problemhook's egress policy (link-local, where cloud metadata services answer)"))
	retryable, _ := notify.IsRetryable(err)
	g.Expect(retryable).To(BeFalse())
	g.Expect(proxied.Load()).To(BeZero())
}
