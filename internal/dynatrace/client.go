// Package dynatrace is a client of the Dynatrace Problems API v2: it reads
// problems and their comments, and posts comments. Calls are retried when
// Dynatrace asks for it (429) or fails on its side (5xx, network errors),
// except that a comment is never posted twice.
package dynatrace

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"golang.org/x/oauth2"

	"github.com/problemhook/problemhook/internal/egress"
	"github.com/problemhook/problemhook/internal/metrics"
)

const (
	// DefaultTimeout is the default time allowed for one attempt of a call.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxAttempts is the default number of attempts of a call.
	DefaultMaxAttempts = 4
	// DefaultMinBackoff is the default wait before the first retry after a
	// server or network error.
	DefaultMinBackoff = 500 * time.Millisecond
	// DefaultMaxBackoff is the default longest wait between two attempts
	// after server or network errors.
	DefaultMaxBackoff = 10 * time.Second
	// MaxResponseBytes bounds the bytes one call reads, across its pages,
	// and the bytes the items it keeps take once decoded.
	MaxResponseBytes = 8 << 20

	// DefaultQuiet is the default time no request is sent after one got
	// no answer in time.
	DefaultQuiet = 30 * time.Second

	// defaultRetryAfter is the wait after a 429 that does not say how long.
	defaultRetryAfter = time.Second
	// maxRetryAfter caps the wait a Retry-After asks for.
	maxRetryAfter = 60 * time.Second
	userAgent     = "problemhook"
	apiPath       = "/api/v2"
	// platformPath is where a platform environment (*.apps.dynatrace.com)
	// serves the classic environment API, for platform and OAuth tokens.
	platformPath = "/platform/classic/environment-api"
	// PlatformTokenPrefix starts a platform token, which is sent as
	// "Authorization: Bearer"; any other token is a classic API token.
	PlatformTokenPrefix = "dt0s16."
)

// Options configure a Client.
type Options struct {
	// URL is the environment URL: https://abc12345.live.dynatrace.com (SaaS),
	// https://host/e/<environment-id> (Managed) or
	// https://activegate:9999/e/<environment-id> (ActiveGate). A trailing
	// slash is allowed; the client appends /api/v2/....
	URL string
	// Token is a classic API token (dt0c01.…), sent as "Authorization:
	// Api-Token <token>", which needs problems.read, and problems.write to
	// post comments; or a platform token (dt0s16.…), sent as "Authorization:
	// Bearer <token>" to the platform's classic environment API, which needs
	// environment-api:problems:read and :write.
	Token string
	// CABundle is an optional PEM bundle. When set, its certificates are the
	// only roots trusted, e.g. for an ActiveGate with its own CA.
	CABundle []byte
	// OAuth is an OAuth client whose access tokens are sent, in place of
	// Token, as Bearer to the platform's classic environment API.
	OAuth *OAuthClient
	// Egress decides which addresses the client may connect to; every
	// address when nil. The operator sets it: the URL is a tenant's.
	Egress *egress.Policy
	// HTTPClient is used instead of the client New builds, for tests. It
	// excludes CABundle and Egress.
	HTTPClient *http.Client
	// Timeout is the time allowed for one attempt; default DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts is the number of attempts of a call when the failure is
	// retryable; default DefaultMaxAttempts.
	MaxAttempts int
	// MinBackoff is the wait before the first retry after a server or
	// network error, doubled for each further retry up to MaxBackoff, with
	// jitter; default DefaultMinBackoff.
	MinBackoff time.Duration
	// MaxBackoff caps the backoff; default DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Quiet is how long calls fail at once with ErrNotAnswering, without a
	// request, after an attempt got no answer within Timeout; default
	// DefaultQuiet. An environment that hangs thus holds each caller for
	// one Timeout, not for every attempt of every call.
	Quiet time.Duration
}

// Client calls the Problems API v2 of one Dynatrace environment. It is safe
// for concurrent use.
type Client struct {
	// base is the escaped URL of the API, ending in /api/v2.
	base        string
	token       string
	http        *http.Client
	timeout     time.Duration
	maxAttempts int
	minBackoff  time.Duration
	maxBackoff  time.Duration
	// sleep waits d or until ctx is done; tests replace it to record waits.
	sleep func(ctx context.Context, d time.Duration) error
	quiet time.Duration
	// quietUntil (Unix nanoseconds) ends the quiet after an unanswered attempt.
	quietUntil atomic.Int64
	// checked is set once the token was taken.
	checked atomic.Bool
	// tokens are an OAuth client's access tokens, when it has one.
	tokens oauth2.TokenSource
}

// New checks o and returns a Client. It refuses a URL that is not an
// absolute http(s) URL with a host, or that has user info, a query, a
// fragment or the /api/v2 path; an empty token; and a CA bundle without a
// certificate. Its errors never contain the token.
func New(o Options) (*Client, error) {
	if o.OAuth == nil {
		if err := checkToken(o.Token); err != nil {
			return nil, err
		}
	}
	base, err := apiBase(o.URL, o.OAuth != nil || strings.HasPrefix(o.Token, PlatformTokenPrefix))
	if err != nil {
		return nil, err
	}
	httpClient := o.HTTPClient
	if httpClient == nil {
		httpClient, err = newHTTPClient(o.CABundle, o.Egress)
		if err != nil {
			return nil, err
		}
	} else if len(o.CABundle) > 0 {
		return nil, errors.New("dynatrace: CABundle and HTTPClient cannot both be set")
	}
	c := &Client{
		base:        base,
		token:       o.Token,
		http:        httpClient,
		timeout:     positiveOr(o.Timeout, DefaultTimeout),
		maxAttempts: o.MaxAttempts,
		minBackoff:  positiveOr(o.MinBackoff, DefaultMinBackoff),
		maxBackoff:  positiveOr(o.MaxBackoff, DefaultMaxBackoff),
		sleep:       sleep,
		quiet:       positiveOr(o.Quiet, DefaultQuiet),
	}
	if o.OAuth != nil {
		c.tokens = o.OAuth.tokenSource(o.Egress)
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	c.maxBackoff = max(c.maxBackoff, c.minBackoff)
	return c, nil
}

func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// apiBase checks the environment URL and returns the escaped URL of its API:
// /api/v2 below it for a classic token; for a platform token, the
// platform's classic environment API, on the environment's apps host
// (abc12345.live.dynatrace.com becomes abc12345.apps.dynatrace.com) unless
// the URL names that path itself.
func apiBase(raw string, platform bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("dynatrace: parsing URL: %w", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("dynatrace: URL %q must be an absolute http or https URL", u.Redacted())
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("dynatrace: URL %q has no host", u.Redacted())
	case u.User != nil:
		// The token has its own field; credentials in the URL would end up in errors.
		return "", fmt.Errorf("dynatrace: URL %q must not contain user info", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("dynatrace: URL %q must not have a query", u.Redacted())
	case strings.Contains(raw, "#"):
		return "", fmt.Errorf("dynatrace: URL %q must not have a fragment", u.Redacted())
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	if strings.HasSuffix(path, apiPath) {
		return "", fmt.Errorf("dynatrace: URL %q must be the environment URL, without %s", u.Redacted(), apiPath)
	}
	onPlatform := strings.HasSuffix(path, platformPath) || strings.HasSuffix(u.Hostname(), ".apps.dynatrace.com")
	switch {
	case platform && !onPlatform && strings.HasSuffix(u.Hostname(), ".live.dynatrace.com") && path == "":
		host := strings.TrimSuffix(u.Hostname(), ".live.dynatrace.com") + ".apps.dynatrace.com"
		if p := u.Port(); p != "" {
			host += ":" + p
		}
		return u.Scheme + "://" + host + platformPath + "/v2", nil
	case platform && !onPlatform:
		return "", fmt.Errorf("dynatrace: URL %q is not a platform environment (https://<env>.apps.dynatrace.com): a platform token (dt0s16.…) works there only; use a classic API token (dt0c01.…) for this URL", u.Redacted())
	case !platform && onPlatform:
		return "", fmt.Errorf("dynatrace: URL %q is a platform environment, which takes platform tokens (dt0s16.…) only; use the environment's classic URL (https://<env>.live.dynatrace.com) for a classic API token", u.Redacted())
	case onPlatform && !strings.HasSuffix(path, platformPath):
		path += platformPath
	}
	if onPlatform {
		return u.Scheme + "://" + u.Host + path + "/v2", nil
	}
	return u.Scheme + "://" + u.Host + path + apiPath, nil
}

// checkToken refuses a token that cannot be sent in a header. The token is
// never part of the message.
func checkToken(token string) error {
	if token == "" {
		return errors.New("dynatrace: token is empty")
	}
	for i := range len(token) {
		if c := token[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("dynatrace: token contains a space or a control or non-ASCII character at offset %d", i)
		}
	}
	return nil
}

// newHTTPClient builds a client with bounded dial and handshake times that
// trusts only caBundle when it is set, and does not follow redirects: the
// API does not redirect, so a redirect means the URL is wrong.
func newHTTPClient(caBundle []byte, policy *egress.Policy) (*http.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caBundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caBundle) {
			return nil, errors.New("dynatrace: CA bundle contains no PEM certificate")
		}
		tlsConfig.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:                 policy.Proxy(),
		DialContext:           policy.Dialer(10*time.Second, 30*time.Second).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// endpoint names the call without its problem id, for metrics.
func (cl *call) endpoint() string {
	var b strings.Builder
	b.WriteString(cl.method + " ")
	for i, p := range cl.path {
		if i == 1 && cl.path[0] == "problems" {
			p = "{problemId}"
		}
		b.WriteString("/" + p)
	}
	return b.String()
}

// call is one API call: what to send, and whether sending it twice is safe.
type call struct {
	method string
	path   []string // elements after /api/v2, escaped when joined
	query  url.Values
	body   any // sent as JSON when not nil
	// idempotent calls are retried on every retryable failure, the others
	// only on 429, which Dynatrace answers before doing anything.
	idempotent bool
	// budget bounds what the answer may hold, and what decoding it may
	// keep; a call of its own, of MaxResponseBytes, when nil. The pages of
	// a listing share one.
	budget *budget
}

// escapedPath is the path under /api/v2. Each element is escaped on its own,
// so that a problem id holding "/" or "../" stays one element.
func (cl *call) escapedPath() string {
	var b strings.Builder
	for _, p := range cl.path {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// do makes the call, retrying as the call allows, and decodes the JSON answer
// with decode unless it is nil. decode starts afresh for each attempt.
func (c *Client) do(ctx context.Context, cl call, decode func(*decoder) error) error {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("encoding request body: %w", err)
		}
	}
	endpoint := cl.method + " " + cl.escapedPath() // names the call in logs
	target := c.base + cl.escapedPath()
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	log := logr.FromContextOrDiscard(ctx)
	b := cl.budget
	if b == nil {
		b = newBudget(MaxResponseBytes)
	}
	for attempt := 1; ; attempt++ {
		if until := c.quietUntil.Load(); time.Now().UnixNano() < until {
			metrics.DynatraceRequests.WithLabelValues(cl.endpoint(), metrics.DynatraceNotAsked).Inc()
			return fmt.Errorf("%w: a request got no answer within %s; none is sent until %s",
				ErrNotAnswering, c.timeout, time.Unix(0, until).UTC().Format(time.RFC3339))
		}
		status, err := c.attempt(ctx, cl.method, target, body, decode, b)
		code := metrics.DynatraceNoAnswer
		if status != 0 {
			code = strconv.Itoa(status)
		}
		metrics.DynatraceRequests.WithLabelValues(cl.endpoint(), code).Inc()
		if err == nil {
			return nil
		}
		if ctx.Err() == nil && unanswered(err) {
			// Another attempt would most likely wait as long for nothing.
			c.quietUntil.Store(time.Now().Add(c.quiet).UnixNano())
			return gaveUp(err, attempt)
		}
		if attempt >= c.maxAttempts || ctx.Err() != nil || !retryable(err, cl.idempotent) {
			return gaveUp(err, attempt)
		}
		wait := c.wait(err, attempt)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			// Waiting would outlive the caller: let it decide now.
			return gaveUp(err, attempt)
		}
		log.V(1).Info("Retrying Dynatrace API call", "endpoint", endpoint, "attempt", attempt,
			"status", statusOf(err), "wait", wait, "error", err.Error())
		if c.sleep(ctx, wait) != nil {
			return gaveUp(err, attempt)
		}
	}
}

func gaveUp(err error, attempts int) error {
	if attempts == 1 {
		return err
	}
	return fmt.Errorf("%w (gave up after %d attempts)", err, attempts)
}

// retryable says whether to try again after err.
func retryable(err error, idempotent bool) bool {
	if idempotent {
		return IsRetryable(err)
	}
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests
}

// wait is how long to wait before the attempt after attempt: what a 429 or
// 503 asked for, else an exponential backoff with jitter, so that replicas
// failing together do not retry together.
func (c *Client) wait(err error, attempt int) time.Duration {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.RetryAfter > 0:
			return min(apiErr.RetryAfter, maxRetryAfter)
		case apiErr.StatusCode == http.StatusTooManyRequests:
			return defaultRetryAfter
		}
	}
	backoff := c.minBackoff
	for i := 1; i < attempt && backoff < c.maxBackoff; i++ {
		backoff *= 2
	}
	backoff = min(backoff, c.maxBackoff)
	return backoff/2 + rand.N(backoff/2+1)
}

func statusOf(err error) int {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attempt sends the request once, within the per-attempt timeout, and
// returns the answer's status code, 0 when there was none. It reads the
// answer within b.
func (c *Client) attempt(ctx context.Context, method, target string, body []byte, decode func(*decoder) error, b *budget) (int, error) {
	resp, err := c.send(ctx, method, target, body)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	return resp.StatusCode, c.read(resp, method, target, decode, b)
}

// send sends the request once, within the per-attempt timeout.
func (c *Client) send(ctx context.Context, method, target string, body []byte) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	auth := authorization(c.token)
	if c.tokens != nil {
		tok, err := c.tokens.Token()
		if err != nil {
			cancel()
			return nil, err
		}
		auth = "Bearer " + tok.AccessToken
	}
	req.Header.Set("Authorization", auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, &transportError{err: err}
	}
	// The timeout bounds reading the body too: cancel with the close.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose ends a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	defer b.cancel()
	return b.ReadCloser.Close()
}

// read decodes an answer with decode, unless decode is nil, as it reads
// it: at most b.read bytes, keeping at most b.keep bytes of items. Only an
// answer read whole spends b.
func (c *Client) read(resp *http.Response, method, target string, decode func(*decoder) error, b *budget) error {
	where := method + " " + redactQuery(target)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// An error's message is all that is kept of it.
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		if err != nil {
			return &transportError{err: fmt.Errorf("%s: reading response: %w", where, err)}
		}
		return c.apiError(resp, data)
	}
	body := &countingReader{r: io.LimitReader(resp.Body, b.read+1)}
	keep := b.keep
	var err error
	if decode == nil {
		_, err = io.Copy(io.Discard, body)
	} else if mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mediaType != "application/json" {
		// Typically a proxy's login page: the URL is not the API's.
		data, _ := io.ReadAll(io.LimitReader(body, maxErrorBytes))
		return fmt.Errorf("%s: got %d with Content-Type %q, want application/json: %s",
			where, resp.StatusCode, resp.Header.Get("Content-Type"), c.excerpt(data))
	} else {
		d := newDecoder(body, b)
		if err = decode(d); err == nil {
			err = d.end()
		}
		if errors.Is(err, errStop) {
			err = nil
		}
		keep = d.keep
	}
	switch {
	case body.n > b.read:
		// Checked first: a body cut at the limit does not decode either.
		return fmt.Errorf("%s: %w", where, &budgetError{limit: b.read, total: b.total})
	case body.err != nil:
		return &transportError{err: fmt.Errorf("%s: reading response: %w", where, body.err)}
	case err != nil:
		return fmt.Errorf("%s: decoding response: %w", where, err)
	}
	b.read, b.keep = b.read-body.n, keep
	return nil
}

// maxErrorBytes bounds what is read of an error answer, or of an answer
// that is not JSON: a message and an excerpt are all that is kept.
const maxErrorBytes = 64 << 10

// countingReader counts the bytes read, and keeps the reader's first error
// other than io.EOF, so that a failed read is told from a bad answer.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	return n, err
}

// redactQuery drops the query: the path says enough in an error.
func redactQuery(target string) string {
	path, _, _ := strings.Cut(target, "?")
	return path
}

// String names the client by its API URL, so that printing a client (or a
// struct holding one) never shows the token.
func (c *Client) String() string { return "dynatrace.Client(" + c.base + ")" }

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// authorization is the Authorization header that carries token: Bearer for
// a platform token, Api-Token for a classic one.
func authorization(token string) string {
	if strings.HasPrefix(token, PlatformTokenPrefix) {
		return "Bearer " + token
	}
	return "Api-Token " + token
}
