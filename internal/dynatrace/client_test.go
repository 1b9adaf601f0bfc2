package dynatrace_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		opts    dynatrace.Options
		wantErr string
	}{
		{"SaaS", dynatrace.Options{URL: "https://abc12345.live.dynatrace.com"}, ""},
		{"trailing slash", dynatrace.Options{URL: "https://abc12345.live.dynatrace.com/"}, ""},
		{"Managed", dynatrace.Options{URL: "https://dt.example.com/e/0a1b2c3d"}, ""},
		{"ActiveGate", dynatrace.Options{URL: "https://activegate.dynatrace.svc:9999/e/0a1b2c3d/"}, ""},
		{"plain http", dynatrace.Options{URL: "http://localhost:8080"}, ""},
		{"no URL", dynatrace.Options{}, "must be an absolute http or https URL"},
		{"no scheme", dynatrace.Options{URL: "abc12345.live.dynatrace.com"}, "must be an absolute http or https URL"},
		{"other scheme", dynatrace.Options{URL: "ftp://abc12345.live.dynatrace.com"}, "must be an absolute http or https URL"},
		{"no host", dynatrace.Options{URL: "https:///e/abc"}, "has no host"},
		{"port only", dynatrace.Options{URL: "https://:9999"}, "has no host"},
		{"query", dynatrace.Options{URL: "https://abc12345.live.dynatrace.com?Api-Token=x"}, "must not have a query"},
		{"empty query", dynatrace.Options{URL: "https://abc12345.live.dynatrace.com/?"}, "must not have a query"},
		{"fragment", dynatrace.Options{URL: "https://abc12345.live.dynatrace.com/#problems"}, "must not have a fragment"},
		{"empty fragment", dynatrace.Options{URL: "https://abc12345.live.dynatrace.com#"}, "must not have a fragment"},
		{"user info", dynatrace.Options{URL: "https://me:hunter2@abc12345.live.dynatrace.com"}, "must not contain user info"},
		{"API path", dynatrace.Options{URL: "https://abc12345.live.dynatrace.com/api/v2/"}, "without /api/v2"},
		{"no token", dynatrace.Options{URL: "https://abc12345.live.dynatrace.com", Token: "-"}, "token is empty"},
		{"token with a newline", dynatrace.Options{URL: "https://abc12345.live.dynatrace.com", Token: token + "\n"}, "control"},
		{"CA bundle without a certificate", dynatrace.Options{
			URL: "https://activegate:9999/e/abc", CABundle: []byte("-----BEGIN PRIVATE KEY-----\n" + token),
		}, "contains no PEM certificate"},
		{"CA bundle and HTTP client", dynatrace.Options{
			URL: "https://activegate:9999/e/abc", CABundle: []byte("x"), HTTPClient: http.DefaultClient,
		}, "cannot both be set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			o := tt.opts
			switch o.Token {
			case "":
				o.Token = token
			case "-":
				o.Token = ""
			}
			c, err := dynatrace.New(o)
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(c.String()).To(HaveSuffix("/api/v2)"))
				g.Expect(c.String()).NotTo(ContainSubstring("/api/v2/"))
				expectNoToken(g, fmt.Sprintf("%v %+v %#v", c, c, c))
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			expectNoToken(g, err.Error())
			g.Expect(err.Error()).NotTo(ContainSubstring("hunter2"))
		})
	}
}

// between matches a duration in [lo, hi].
func between(lo, hi time.Duration) types.GomegaMatcher {
	return SatisfyAll(BeNumerically(">=", lo), BeNumerically("<=", hi))
}

func TestRetries(t *testing.T) {
	httpDate := time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name         string
		opts         dynatrace.Options
		post         bool
		status, n    int // the next n requests fail with status
		retryAfter   string
		wantStatus   int // of the error; 0 for success
		wantRequests int
		wantWaits    []types.GomegaMatcher
	}{
		{name: "429 waits the seconds of Retry-After", status: 429, n: 1, retryAfter: "2",
			wantRequests: 2, wantWaits: []types.GomegaMatcher{Equal(2 * time.Second)}},
		{name: "429 waits until the date of Retry-After", status: 429, n: 1, retryAfter: httpDate,
			wantRequests: 2, wantWaits: []types.GomegaMatcher{between(3*time.Second, 5*time.Second)}},
		{name: "429 without Retry-After waits a second", status: 429, n: 2,
			wantRequests: 3, wantWaits: []types.GomegaMatcher{Equal(time.Second), Equal(time.Second)}},
		{name: "429 waits at most a minute", status: 429, n: 1, retryAfter: "3600",
			wantRequests: 2, wantWaits: []types.GomegaMatcher{Equal(time.Minute)}},
		{name: "503 with Retry-After", status: 503, n: 1, retryAfter: "3",
			wantRequests: 2, wantWaits: []types.GomegaMatcher{Equal(3 * time.Second)}},
		{name: "5xx backs off exponentially", status: 500, n: 2,
			wantRequests: 3, wantWaits: []types.GomegaMatcher{
				between(250*time.Millisecond, 500*time.Millisecond), between(500*time.Millisecond, time.Second)}},
		{name: "backoff is capped", opts: dynatrace.Options{MinBackoff: time.Second, MaxBackoff: 2 * time.Second, MaxAttempts: 5},
			status: 502, n: 4, wantRequests: 5, wantWaits: []types.GomegaMatcher{
				between(500*time.Millisecond, time.Second), between(time.Second, 2*time.Second),
				between(time.Second, 2*time.Second), between(time.Second, 2*time.Second)}},
		{name: "5xx until attempts are exhausted", status: 503, n: 10, wantStatus: 503,
			wantRequests: 4, wantWaits: []types.GomegaMatcher{Not(BeZero()), Not(BeZero()), Not(BeZero())}},
		{name: "one attempt", opts: dynatrace.Options{MaxAttempts: 1}, status: 500, n: 1, wantStatus: 500, wantRequests: 1},
		{name: "comment not posted again after 500", post: true, status: 500, n: 1, wantStatus: 500, wantRequests: 1},
		{name: "comment not posted again after 503", post: true, status: 503, n: 1, retryAfter: "1", wantStatus: 503, wantRequests: 1},
		{name: "comment posted again after 429", post: true, status: 429, n: 1, retryAfter: "1",
			wantRequests: 2, wantWaits: []types.GomegaMatcher{Equal(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s := newFake(t, dynatracetest.ServerOptions{})
			s.AddProblem(problem("P1", "ERROR", "SERVICES", time.Hour))
			s.FailNext("", "/problems/P1"+map[bool]string{true: "/comments"}[tt.post], tt.n, tt.status, tt.retryAfter)
			tt.opts.URL = s.URL()
			c, waits := newClient(t, tt.opts)

			var err error
			if tt.post {
				err = c.PostComment(context.Background(), "P1", dynatrace.CommentRequest{Message: "hello"})
			} else {
				_, err = c.GetProblem(context.Background(), "P1")
			}

			if tt.wantStatus == 0 {
				g.Expect(err).NotTo(HaveOccurred())
			} else {
				g.Expect(expectAPIError(g, err, tt.wantStatus).Code).To(Equal(tt.wantStatus))
				g.Expect(dynatrace.IsRetryable(err)).To(BeTrue())
			}
			if tt.wantRequests > 1 && tt.wantStatus != 0 {
				g.Expect(err.Error()).To(HaveSuffix(fmt.Sprintf("(gave up after %d attempts)", tt.wantRequests)))
			}
			g.Expect(s.Requests()).To(HaveLen(tt.wantRequests))
			g.Expect(*waits).To(HaveExactElements(tt.wantWaits))
			if tt.post {
				g.Expect(s.Comments("P1")).To(HaveLen(map[bool]int{true: 1}[tt.wantStatus == 0]))
			}
		})
	}
}

func TestRetriesSleepForReal(t *testing.T) {
	g := NewWithT(t)
	s := newFake(t, dynatracetest.ServerOptions{})
	s.AddProblem(problem("P1", "ERROR", "SERVICES", time.Hour))
	s.FailNext("", "", 2, http.StatusInternalServerError, "")
	c, err := dynatrace.New(dynatrace.Options{URL: s.URL(), Token: token, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())

	_, err = c.GetProblem(context.Background(), "P1")

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.Requests()).To(HaveLen(3))
}

func TestRetriesStopForTheCaller(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter string
		deadline   time.Duration
		cancel     bool
	}{
		{name: "Retry-After past the deadline", retryAfter: "30", deadline: 5 * time.Second},
		{name: "backoff past the deadline", deadline: 100 * time.Millisecond},
		{name: "cancelled while waiting", retryAfter: "1", cancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s := newFake(t, dynatracetest.ServerOptions{})
			s.AddProblem(problem("P1", "ERROR", "SERVICES", time.Hour))
			s.FailNext("", "", 10, map[bool]int{true: 429, false: 500}[tt.retryAfter != ""], tt.retryAfter)
			c, waits := newClient(t, dynatrace.Options{URL: s.URL()})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.deadline > 0 {
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			if tt.cancel {
				dynatrace.SetSleep(c, func(ctx context.Context, d time.Duration) error {
					*waits = append(*waits, d)
					cancel()
					return ctx.Err()
				})
			}

			_, err := c.GetProblem(ctx, "P1")

			var apiErr *dynatrace.APIError
			g.Expect(errors.As(err, &apiErr)).To(BeTrue(), "the last answer, not the context's error: %v", err)
			g.Expect(s.Requests()).To(HaveLen(1))
			g.Expect(*waits).To(HaveLen(map[bool]int{true: 1}[tt.cancel]))
		})
	}
}

func TestRetriesAreLogged(t *testing.T) {
	g := NewWithT(t)
	s := newFake(t, dynatracetest.ServerOptions{})
	s.AddProblem(problem("P1", "ERROR", "SERVICES", time.Hour))
	s.FailNext(http.MethodGet, "", 1, http.StatusBadGateway, "")
	c, _ := newClient(t, dynatrace.Options{URL: s.URL()})
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{Verbosity: 1})

	_, err := c.GetProblem(logr.NewContext(context.Background(), log), "P1")

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lines).To(HaveLen(1))
	g.Expect(lines[0]).To(SatisfyAll(
		ContainSubstring(`"level"=1`), ContainSubstring(`"msg"="Retrying Dynatrace API call"`),
		ContainSubstring(`"endpoint"="GET /problems/P1"`), ContainSubstring(`"attempt"=1`),
		ContainSubstring(`"status"=502`), ContainSubstring(`"wait"=`)))
	expectNoToken(g, lines[0])
}

func TestNetworkErrors(t *testing.T) {
	closeConn := func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	// hang answers nothing until the client gives up. Only once the body is
	// read does the server notice that the client went away.
	hang := func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}
	refused := httptest.NewServer(http.NotFoundHandler())
	refused.Close()
	tests := []struct {
		name         string
		handler      http.HandlerFunc // nil: nothing listens
		post         bool
		wantAttempts int
		wantTimeout  bool
	}{
		{name: "connection closed", handler: closeConn, wantAttempts: 4},
		// An environment that does not answer is not asked again at once: see TestQuietAfterAnUnansweredRequest.
		{name: "attempt timed out", handler: hang, wantAttempts: 1, wantTimeout: true},
		{name: "connection refused", wantAttempts: 4},
		{name: "comment not posted again after a closed connection", handler: closeConn, post: true, wantAttempts: 1},
		{name: "comment not posted again after a timeout", handler: hang, post: true, wantAttempts: 1, wantTimeout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var hits atomic.Int32
			u := refused.URL
			if tt.handler != nil {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					tt.handler(w, r)
				}))
				t.Cleanup(srv.Close)
				u = srv.URL
			}
			c, waits := newClient(t, dynatrace.Options{URL: u, Timeout: 50 * time.Millisecond})

			var err error
			if tt.post {
				err = c.PostComment(context.Background(), "P1", dynatrace.CommentRequest{Message: "hello"})
			} else {
				_, err = c.GetProblem(context.Background(), "P1")
			}

			g.Expect(err).To(HaveOccurred())
			g.Expect(dynatrace.IsRetryable(err)).To(BeTrue(), "%v", err)
			g.Expect(errors.Is(err, context.DeadlineExceeded)).To(Equal(tt.wantTimeout), "%v", err)
			g.Expect(*waits).To(HaveLen(tt.wantAttempts - 1))
			if tt.handler != nil {
				g.Expect(hits.Load()).To(BeEquivalentTo(tt.wantAttempts))
			}
			expectNoToken(g, err.Error())
		})
	}
}

func TestErrorAnswers(t *testing.T) {
	longHTML := "<html>\n<body>\n" + strings.Repeat("Bad gateway ", 100) + "</body></html>"
	tests := []struct {
		name        string
		status      int
		header      map[string]string
		body        string
		wantMessage string // of the error
		check       func(g Gomega, err error)
	}{{
		name:   "Dynatrace error with constraint violations",
		status: 400,
		body: `{"error":{"code":400,"message":"Constraints violated.","constraintViolations":[` +
			`{"path":"message","message":"must not be empty","parameterLocation":"PAYLOAD_BODY","location":null}]}}`,
		wantMessage: "dynatrace: 400 Bad Request: Constraints violated. (message: must not be empty)",
		check: func(g Gomega, err error) {
			apiErr := expectAPIError(g, err, 400)
			g.Expect(apiErr.Code).To(Equal(400))
			g.Expect(apiErr.ConstraintViolations).To(Equal([]dynatrace.ConstraintViolation{
				{Path: "message", Message: "must not be empty", ParameterLocation: "PAYLOAD_BODY"}}))
		},
	}, {
		name:        "missing scope",
		status:      403,
		body:        `{"error":{"code":403,"message":"Token is missing required scope problems.write"}}`,
		wantMessage: "dynatrace: 403 Forbidden: Token is missing required scope problems.write",
	}, {
		name:        "error echoing the token",
		status:      401,
		body:        `{"error":{"code":401,"message":"Token ` + token + ` is not valid"}}`,
		wantMessage: "dynatrace: 401 Unauthorized: Token [redacted] is not valid",
	}, {
		name:   "proxy page",
		status: 502,
		header: map[string]string{"Content-Type": "text/html"},
		body:   longHTML,
		check: func(g Gomega, err error) {
			apiErr := expectAPIError(g, err, 502)
			g.Expect(apiErr.Message).To(HavePrefix("<html> <body> Bad gateway Bad gateway"))
			g.Expect(apiErr.Message).NotTo(ContainSubstring("\n"))
			g.Expect(apiErr.Message).To(HaveSuffix("…"))
			g.Expect(utf8.RuneCountInString(apiErr.Message)).To(Equal(201))
			g.Expect(dynatrace.IsRetryable(err)).To(BeTrue())
		},
	}, {
		name:        "page echoing the token",
		status:      500,
		body:        "Authorization: Api-Token " + token,
		wantMessage: "dynatrace: 500 Internal Server Error: Authorization: Api-Token [redacted]",
	}, {
		name:        "unknown status",
		status:      599,
		body:        "odd",
		wantMessage: "dynatrace: 599: odd",
	}, {
		name:   "429 asks for a wait",
		status: 429,
		header: map[string]string{"Retry-After": "7"},
		body:   `{"error":{"code":429,"message":"Rate limit exceeded"}}`,
		check: func(g Gomega, err error) {
			g.Expect(expectAPIError(g, err, 429).RetryAfter).To(Equal(7 * time.Second))
		},
	}, {
		name:   "redirect is not followed",
		status: 301,
		header: map[string]string{"Location": "https://elsewhere.example.com/api/v2/problems/P1"},
		check: func(g Gomega, err error) {
			g.Expect(expectAPIError(g, err, 301).Message).To(ContainSubstring(`redirected to "https://elsewhere.example.com/`))
			g.Expect(dynatrace.IsRetryable(err)).To(BeFalse())
		},
	}, {
		name:   "login page instead of JSON",
		status: 200,
		header: map[string]string{"Content-Type": "text/html; charset=utf-8"},
		body:   "<html>Sign in</html>",
		check: func(g Gomega, err error) {
			g.Expect(err).To(MatchError(ContainSubstring(`Content-Type "text/html; charset=utf-8", want application/json: <html>Sign in</html>`)))
			g.Expect(errors.As(err, new(*dynatrace.APIError))).To(BeFalse())
			g.Expect(dynatrace.IsRetryable(err)).To(BeFalse())
		},
	}, {
		name:   "invalid JSON",
		status: 200,
		body:   `{"problemId":`,
		check: func(g Gomega, err error) {
			g.Expect(err).To(MatchError(ContainSubstring("decoding response")))
			g.Expect(dynatrace.IsRetryable(err)).To(BeFalse())
		},
	}, {
		name:   "answer too large",
		status: 200,
		body:   `{"title":"` + strings.Repeat("x", dynatrace.MaxResponseBytes) + `"}`,
		check: func(g Gomega, err error) {
			g.Expect(err).To(MatchError(ContainSubstring("response larger than")))
			g.Expect(dynatrace.IsRetryable(err)).To(BeFalse())
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c, _ := newClient(t, dynatrace.Options{URL: srv.URL, MaxAttempts: 1})

			_, err := c.GetProblem(context.Background(), "P1")

			g.Expect(err).To(HaveOccurred())
			expectNoToken(g, err.Error())
			if tt.wantMessage != "" {
				var apiErr *dynatrace.APIError
				g.Expect(errors.As(err, &apiErr)).To(BeTrue())
				g.Expect(apiErr.Error()).To(Equal(tt.wantMessage))
				g.Expect(err.Error()).To(Equal(`getting Dynatrace problem "P1": ` + tt.wantMessage))
			}
			if tt.check != nil {
				tt.check(g, err)
			}
			g.Expect(hits.Load()).To(BeEquivalentTo(1))
		})
	}
}

func TestTLS(t *testing.T) {
	s := newFake(t, dynatracetest.ServerOptions{TLS: true, EnvironmentPath: "/e/abc123"})
	s.AddProblem(problem("P1", "ERROR", "SERVICES", time.Hour))
	other := dynatracetest.NewServer(dynatracetest.ServerOptions{TLS: true})
	t.Cleanup(other.Close)
	tests := []struct {
		name     string
		caBundle []byte
		wantErr  bool
	}{
		{"trusted CA bundle", s.CAPEM(), false},
		{"system roots", nil, true},
		{"another CA", other.CAPEM(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c, waits := newClient(t, dynatrace.Options{URL: s.URL(), CABundle: tt.caBundle})

			got, err := c.GetProblem(context.Background(), "P1")

			if !tt.wantErr {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got.ProblemID).To(Equal("P1"))
				return
			}
			g.Expect(errors.As(err, new(*tls.CertificateVerificationError))).To(BeTrue(), "%v", err)
			g.Expect(dynatrace.IsRetryable(err)).To(BeFalse())
			g.Expect(*waits).To(BeEmpty())
			expectNoToken(g, err.Error())
		})
	}
}

func TestIsRetryable(t *testing.T) {
	var netTimeout net.Error = &net.DNSError{Err: "timeout", IsTimeout: true}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"429", &dynatrace.APIError{StatusCode: 429}, true},
		{"500", &dynatrace.APIError{StatusCode: 500}, true},
		{"wrapped 503", fmt.Errorf("listing: %w", &dynatrace.APIError{StatusCode: 503}), true},
		{"400", &dynatrace.APIError{StatusCode: 400}, false},
		{"404", &dynatrace.APIError{StatusCode: 404}, false},
		{"deadline", fmt.Errorf("calling: %w", context.DeadlineExceeded), true},
		{"network timeout", netTimeout, true},
		{"cancelled", context.Canceled, false},
		{"other error", errors.New("parse error"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(dynatrace.IsRetryable(tt.err)).To(Equal(tt.want))
			g.Expect(dynatrace.IsNotFound(tt.err)).To(Equal(tt.name == "404"))
		})
	}
}

func TestTokenNeverInRequestLines(t *testing.T) {
	g := NewWithT(t)
	s := newFake(t, dynatracetest.ServerOptions{})
	c, _ := newClient(t, dynatrace.Options{URL: s.URL()})
	_, err := c.ListProblems(context.Background(), dynatrace.ListOptions{From: "now-1h", ProblemSelector: `status("open")`})
	g.Expect(err).NotTo(HaveOccurred())
	for _, r := range s.Requests() {
		expectNoToken(g, r.Path+"?"+r.Query.Encode())
		for _, values := range r.Header {
			expectNoToken(g, strings.Join(values, " "))
		}
	}
}

// After a request got no answer in time, calls fail at once, with no
// request, until the quiet ends; then requests go out again. A hanging
// environment so holds each caller for one timeout only.
func TestQuietAfterAnUnansweredRequest(t *testing.T) {
	g := NewWithT(t)
	var hits atomic.Int32
	var hang atomic.Bool
	hang.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if hang.Load() {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"problemId":"P1","displayId":"P-1","title":"t","status":"OPEN","startTime":1,"endTime":-1}`)
	}))
	t.Cleanup(srv.Close)
	c, waits := newClient(t, dynatrace.Options{URL: srv.URL, Timeout: 50 * time.Millisecond, Quiet: 500 * time.Millisecond})

	_, err := c.GetProblem(context.Background(), "P1")
	g.Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue(), "%v", err)
	g.Expect(*waits).To(BeEmpty(), "no retry into the silence")

	err = c.PostComment(context.Background(), "P1", dynatrace.CommentRequest{Message: "hello"})
	g.Expect(errors.Is(err, dynatrace.ErrNotAnswering)).To(BeTrue(), "%v", err)
	g.Expect(dynatrace.IsRetryable(err)).To(BeTrue())
	g.Expect(err.Error()).To(ContainSubstring("a request got no answer within 50ms; none is sent until "))
	expectNoToken(g, err.Error())
	g.Expect(hits.Load()).To(BeEquivalentTo(1), "no request while quiet")

	hang.Store(false)
	g.Eventually(func() error {
		_, err := c.GetProblem(context.Background(), "P1")
		return err
	}).WithTimeout(2 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	g.Expect(hits.Load()).To(BeEquivalentTo(2), "one request once the quiet ended")
}

// A platform token (dt0s16.…) goes as Bearer to the platform's classic
// environment API; a classic token as Api-Token to /api/v2. Each refuses
// the other's URL with a message that says which to use.
func TestPlatformTokens(t *testing.T) {
	const platformToken = "dt0s16.PUBLICPART.secretsecretsecretsecret"
	for _, tc := range []struct {
		name, url, token, base, wantErr string
	}{
		{"platform URL", "https://abc12345.apps.dynatrace.com", platformToken, "https://abc12345.apps.dynatrace.com/platform/classic/environment-api/v2", ""},
		{"platform URL with its path", "https://abc12345.apps.dynatrace.com/platform/classic/environment-api/", platformToken, "https://abc12345.apps.dynatrace.com/platform/classic/environment-api/v2", ""},
		{"classic SaaS URL: its apps host", "https://abc12345.live.dynatrace.com", platformToken, "https://abc12345.apps.dynatrace.com/platform/classic/environment-api/v2", ""},
		{"classic token on the classic URL", "https://abc12345.live.dynatrace.com", token, "https://abc12345.live.dynatrace.com/api/v2", ""},
		{"platform token on a Managed URL", "https://dt.example.com/e/0a1b2c3d", platformToken, "", "is not a platform environment (https://<env>.apps.dynatrace.com): a platform token (dt0s16.…) works there only"},
		{"classic token on the platform", "https://abc12345.apps.dynatrace.com", token, "", "is a platform environment, which takes platform tokens (dt0s16.…) only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			c, err := dynatrace.New(dynatrace.Options{URL: tc.url, Token: tc.token})
			if tc.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
				g.Expect(err.Error()).NotTo(ContainSubstring("secret"))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(c.String()).To(Equal("dynatrace.Client(" + tc.base + ")"))
		})
	}

	t.Run("against the stand-in", func(t *testing.T) {
		g := NewWithT(t)
		s := newFake(t, dynatracetest.ServerOptions{})
		s.AddToken(platformToken, dynatracetest.PlatformScopeRead)
		s.AddProblem(problem("P1", "ERROR", "SERVICES", time.Minute))
		c, _ := newClient(t, dynatrace.Options{URL: s.URL() + dynatracetest.PlatformPath, Token: platformToken, MaxAttempts: 1})
		p, err := c.GetProblem(context.Background(), "P1")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(p.ProblemID).To(Equal("P1"))
		g.Expect(s.Requests()[0].Path).To(Equal(dynatracetest.PlatformPath + "/v2/problems/P1"))

		err = c.PostComment(context.Background(), "P1", dynatrace.CommentRequest{Message: "m", Context: "problemhook"})
		g.Expect(err).To(MatchError(ContainSubstring("Token is missing required scope environment-api:problems:write")))

		// The stand-in is as strict as Dynatrace: a classic token is no
		// Bearer on the platform, and a platform token no Api-Token on /api/v2.
		classic, _ := newClient(t, dynatrace.Options{URL: s.URL(), Token: token, MaxAttempts: 1})
		_, err = classic.GetProblem(context.Background(), "P1")
		g.Expect(err).NotTo(HaveOccurred())
		for _, path := range []string{"/api/v2/problems/P1", dynatracetest.PlatformPath + "/v2/problems/P1"} {
			for _, header := range []string{"Api-Token " + platformToken, "Bearer " + token} {
				req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
				req.Header.Set("Authorization", header)
				resp, err := http.DefaultClient.Do(req)
				g.Expect(err).NotTo(HaveOccurred())
				_ = resp.Body.Close()
				g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized), "%s with %s", path, header[:8])
			}
		}
	})
}
