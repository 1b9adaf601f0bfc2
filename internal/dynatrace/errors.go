package dynatrace

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/problemhook/problemhook/internal/egress"
)

// ErrPageLimit is wrapped by the error of a listing that had more pages than
// it was allowed to read.
var ErrPageLimit = errors.New("dynatrace: more pages than allowed")

// maxExcerpt is the length of the part of a non-JSON error body kept in an
// APIError.
const maxExcerpt = 200

// APIError is a non-2xx answer of the API.
type APIError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// Code is the error code in the body, usually StatusCode.
	Code int
	// Message is the API's message or, when the body is not a Dynatrace
	// error, a trimmed excerpt of the body.
	Message string
	// ConstraintViolations say which parameters or fields were refused.
	ConstraintViolations []ConstraintViolation
	// RetryAfter is the wait a 429 or 503 asked for in Retry-After; zero when
	// it asked for none.
	RetryAfter time.Duration
}

// ConstraintViolation is one refused parameter or field of a request.
type ConstraintViolation struct {
	// Path names the parameter or field, e.g. "message".
	Path string `json:"path"`
	// Message says what is wrong with it.
	Message string `json:"message"`
	// ParameterLocation is where it was, e.g. PAYLOAD_BODY or QUERY.
	ParameterLocation string `json:"parameterLocation"`
	// Location is where in the request it was, when known.
	Location string `json:"location"`
}

// Error returns the status, message and constraint violations, e.g.
// "dynatrace: 403 Forbidden: Token is missing required scope problems.write".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dynatrace: %d", e.StatusCode)
	if text := http.StatusText(e.StatusCode); text != "" {
		b.WriteString(" " + text)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if len(e.ConstraintViolations) > 0 {
		violations := make([]string, len(e.ConstraintViolations))
		for i, v := range e.ConstraintViolations {
			violations[i] = v.Message
			if v.Path != "" {
				violations[i] = v.Path + ": " + v.Message
			}
		}
		b.WriteString(" (" + strings.Join(violations, "; ") + ")")
	}
	return b.String()
}

// ErrNotAnswering is returned, without a request, for calls made while an
// environment rests after a request it did not answer in time.
var ErrNotAnswering = errors.New("dynatrace: the environment is not answering")

// unanswered says whether err is an attempt that got no answer in time.
func unanswered(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
}

// IsRetryable says whether trying err's call again may succeed: true for
// 429, 5xx, timeouts, network errors and ErrNotAnswering; false for other
// answers, a certificate that is not trusted, a cancelled context and bad
// requests.
func IsRetryable(err error) bool {
	if errors.Is(err, ErrNotAnswering) {
		return true
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode >= 500
	}
	if err == nil || errors.Is(err, context.Canceled) || isTLSConfigError(err) || egress.IsRefused(err) {
		return false
	}
	var transportErr *transportError
	var netErr net.Error
	return errors.As(err, &transportErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &netErr) && netErr.Timeout()
}

// isTLSConfigError says whether err is a TLS failure that only a change of
// configuration fixes.
func isTLSConfigError(err error) bool {
	var verifyErr *tls.CertificateVerificationError
	var authorityErr x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	return errors.As(err, &verifyErr) || errors.As(err, &authorityErr) || errors.As(err, &hostnameErr) ||
		errors.As(err, &invalidErr) || errors.As(err, &recordErr)
}

// IsNotFound says whether err is a 404, e.g. for an unknown problem.
func IsNotFound(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound
}

// transportError is a request that got no answer: a network error or a
// timeout. It is always worth retrying when the request may be repeated.
type transportError struct {
	err error
}

func (e *transportError) Error() string { return e.err.Error() }

func (e *transportError) Unwrap() error { return e.err }

// apiError reads a non-2xx answer.
func (c *Client) apiError(resp *http.Response, data []byte) *APIError {
	e := &APIError{StatusCode: resp.StatusCode}
	var body struct {
		Error *struct {
			Code                 int                   `json:"code"`
			Message              string                `json:"message"`
			ConstraintViolations []ConstraintViolation `json:"constraintViolations"`
		} `json:"error"`
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		e.Message = fmt.Sprintf("redirected to %q; the URL must be the environment's own",
			c.redact(resp.Header.Get("Location")))
	case json.Unmarshal(data, &body) == nil && body.Error != nil,
		// The Settings API answers a refused object in a list, one item
		// per object: the first refusal is the error.
		firstItemError(data, &body):
		e.Code = body.Error.Code
		e.Message = c.redact(body.Error.Message)
		e.ConstraintViolations = body.Error.ConstraintViolations
		for i := range e.ConstraintViolations {
			e.ConstraintViolations[i].Message = c.redact(e.ConstraintViolations[i].Message)
		}
	default:
		e.Message = c.excerpt(data)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// excerpt is the start of a body that is not what was expected (a proxy's
// HTML page, say) on one line, for an error message.
func (c *Client) excerpt(data []byte) string {
	text := strings.Join(strings.Fields(strings.ToValidUTF8(string(data), "\uFFFD")), " ")
	if utf8.RuneCountInString(text) > maxExcerpt {
		text = string([]rune(text)[:maxExcerpt]) + "…"
	}
	return c.redact(text)
}

// redact removes the token from text that came from the server, in case it
// (or a proxy) echoes the request headers.
func (c *Client) redact(text string) string {
	if c.token == "" {
		return text // an OAuth client's: its access tokens expire within minutes
	}
	return strings.ReplaceAll(text, c.token, "[redacted]")
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date. It
// returns zero when v says nothing usable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if seconds, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(seconds) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// firstItemError finds the first item of a Settings API answer that holds
// an error, into body.
func firstItemError[B any](data []byte, body *B) bool {
	var items []json.RawMessage
	if json.Unmarshal(data, &items) != nil {
		return false
	}
	for _, item := range items {
		var probe struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(item, &probe) == nil && len(probe.Error) > 0 && json.Unmarshal(item, body) == nil {
			return true
		}
	}
	return false
}
