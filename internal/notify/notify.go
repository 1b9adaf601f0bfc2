// Package notify sends problemhook's messages: an SMS through Twilio, a
// message to a DingTalk custom robot, and a generic HTTP call.
//
// A sender makes exactly one request and says how it went; it never
// retries. Whether and when to try again is the caller's decision, made
// from the *Error it returns, because the caller records every attempt
// before it is made. Nothing a sender returns contains a credential: tokens,
// signing secrets, URLs read from Secrets and header values stay out of
// results and errors, and phone numbers are masked.
package notify

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/problemhook/problemhook/internal/egress"
)

// DefaultTimeout bounds one send, from connecting to reading the answer.
const DefaultTimeout = 15 * time.Second

// maxAnswerBytes bounds how much of an answer is read.
const maxAnswerBytes = 64 << 10

// maxExcerpt bounds the excerpt of an answer quoted in an error.
const maxExcerpt = 256

// Client sends messages. Its zero value is usable; one Client is shared by
// every send, and with it one pool of connections.
type Client struct {
	// HTTPClient makes the requests; a client with DefaultTimeout that
	// follows no redirects when nil. A redirect is answered as a failure:
	// following it would carry credentials to a URL nobody configured.
	HTTPClient *http.Client
	// Now is the clock of DingTalk signatures and Retry-After dates; time.Now when nil.
	Now func() time.Time
	// UserAgent is sent with every request; "problemhook" when empty.
	UserAgent string
}

// Result is a send that was accepted.
type Result struct {
	// Detail says what the service answered, in a line that is safe to
	// show, e.g. "Twilio accepted message SM… (queued)".
	Detail string
}

// Error is a send that failed. Its text is safe to show anywhere.
type Error struct {
	// Retryable is true for failures that may pass when tried again
	// later: 408, 429 and 5xx answers, timeouts, refused connections,
	// and DingTalk's "sending too fast".
	Retryable bool
	// RetryAfter is how long the service asked to wait, from a
	// Retry-After header; 0 when it did not say.
	RetryAfter time.Duration
	// StatusCode is the HTTP status of the answer; 0 when there was none.
	StatusCode int
	// Message says what went wrong.
	Message string
}

func (e *Error) Error() string { return e.Message }

// IsRetryable reports whether err is a retryable *Error, and how long the
// service asked to wait before the next try.
func IsRetryable(err error) (bool, time.Duration) {
	var e *Error
	if !errors.As(err, &e) {
		return false, 0
	}
	return e.Retryable, e.RetryAfter
}

func permanent(format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...)}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return defaultHTTPClient
}

var defaultHTTPClient = NewHTTPClient(nil)

// NewHTTPClient returns the client a Client sends with: each attempt
// bounded by DefaultTimeout, no redirect followed (an endpoint that
// redirects is misconfigured, and following would resend credentials
// elsewhere), and every connection checked against policy.
func NewHTTPClient(policy *egress.Policy) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = policy.Dialer(10*time.Second, 30*time.Second).DialContext
	transport.Proxy = policy.Proxy()
	return &http.Client{
		Timeout:   DefaultTimeout,
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) userAgent() string {
	if c.UserAgent != "" {
		return c.UserAgent
	}
	return "problemhook"
}

// answer is a response read in full, within maxAnswerBytes.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends req and reads its answer. where names the endpoint in errors
// without the credentials it may carry, e.g. "Twilio" or "the URL in
// Secret itsm". A failure to get an answer is a retryable *Error unless
// retrying cannot help (a certificate the client does not trust).
func (c *Client) do(req *http.Request, where string) (*answer, error) {
	req.Header.Set("User-Agent", c.userAgent())
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, transportError(err, where)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, transportError(err, where)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// transportError describes a request that got no answer. The URL of a
// *url.Error is dropped: it may carry a token.
func transportError(err error, where string) *Error {
	cause := err
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		cause = urlErr.Err
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
	)
	if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return permanent("Calling %s: its TLS certificate is not trusted: %v", where, cause)
	}
	var refused *egress.RefusedError
	if errors.As(err, &refused) {
		return permanent("Calling %s: %v", where, refused)
	}
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return &Error{Retryable: true, Message: fmt.Sprintf("Calling %s: no answer in time: %v", where, cause)}
	}
	return &Error{Retryable: true, Message: fmt.Sprintf("Calling %s: %v", where, cause)}
}

// statusError describes an answer whose status is not a success, with
// detail (what the service said, already safe to show) when there is any.
func (c *Client) statusError(a *answer, where, detail string) *Error {
	e := &Error{StatusCode: a.status, Retryable: retryableStatus(a.status)}
	if e.Retryable {
		e.RetryAfter = RetryAfter(a.header.Get("Retry-After"), c.now())
	}
	e.Message = fmt.Sprintf("%s answered %d %s", where, a.status, http.StatusText(a.status))
	if detail != "" {
		e.Message += ": " + detail
	}
	return e
}

func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// RetryAfter reads a Retry-After header, in seconds or as an HTTP date,
// as a wait from now. It returns 0 when the header is absent, malformed or
// in the past.
func RetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if s, err := strconv.ParseInt(value, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(value); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// excerpt is the start of an answer's body as one line of valid UTF-8, to
// quote in an error.
func excerpt(body []byte) string {
	s := strings.ToValidUTF8(string(body[:min(len(body), maxExcerpt*2)]), "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= maxExcerpt {
		return s
	}
	return string([]rune(s)[:maxExcerpt]) + "…"
}

// MaskPhone masks a phone number as problemhook shows it: the first three
// characters and the last four kept, e.g. +49*****1234. A string too short
// to keep anything hidden is masked whole.
func MaskPhone(number string) string {
	if len(number) < 8 {
		return strings.Repeat("*", len(number))
	}
	return number[:3] + "*****" + number[len(number)-4:]
}

// phoneNumbers finds what looks like a phone number in free text: seven
// digits or more, with or without a leading +.
var phoneNumbers = regexp.MustCompile(`\+?[0-9]{7,}`)

// MaskPhones masks every phone number in text, e.g. in an error message
// Twilio wrote about a recipient.
func MaskPhones(text string) string {
	return phoneNumbers.ReplaceAllStringFunc(text, MaskPhone)
}
