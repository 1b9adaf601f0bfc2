package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Call is one HTTP request to an ITSM tool, a chat webhook or any endpoint.
type Call struct {
	// Method is the HTTP method; POST when empty.
	Method string
	// URL is the endpoint.
	URL string
	// Where names the endpoint in results and errors. When the URL came
	// from a Secret it says so ("the URL in Secret itsm key url"), so
	// that a credential in the URL never appears; the URL's scheme, host
	// and path when empty.
	Where string
	// Header is sent as given; its values never appear in a result or
	// an error.
	Header http.Header
	// Body is sent as given. Its Content-Type, unless Header sets one, is
	// application/json when the body is JSON and text/plain otherwise.
	Body string
	// IdempotencyKey, when set and Header has none, is sent as the
	// Idempotency-Key header, so that an endpoint that honours it can tell
	// a retry from a new call.
	IdempotencyKey string
}

// CheckHeaders checks that every name and value of a header Secret can be
// sent, naming the first key that cannot, never its value.
func CheckHeaders(h map[string][]byte) error {
	for name, value := range h {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("key %q is not a valid HTTP header name", name)
		}
		if !httpguts.ValidHeaderFieldValue(string(value)) {
			return fmt.Errorf("the value of key %q is not a valid HTTP header value", name)
		}
	}
	return nil
}

// Do makes the call. Any 2xx answer is a success; any other answer is a
// failure that quotes the start of its body.
func (c *Client) Do(ctx context.Context, call Call) (Result, error) {
	u, err := url.Parse(call.URL)
	where := call.Where
	if where == "" && err == nil {
		where = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		if where == "" {
			where = "the URL"
		}
		return Result{}, permanent("%s is not an http or https URL", where)
	}
	method := call.Method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if call.Body != "" {
		body = strings.NewReader(call.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return Result{}, permanent("Building the request to %s: %v", where, err)
	}
	for name, values := range call.Header {
		req.Header[http.CanonicalHeaderKey(name)] = values
	}
	if req.Header.Get("Content-Type") == "" && call.Body != "" {
		if json.Valid([]byte(call.Body)) {
			req.Header.Set("Content-Type", "application/json")
		} else {
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	if call.IdempotencyKey != "" && req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", call.IdempotencyKey)
	}
	a, err := c.do(req, where)
	if err != nil {
		return Result{}, err
	}
	if a.status/100 != 2 {
		return Result{}, c.statusError(a, where, excerpt(a.body))
	}
	return Result{Detail: fmt.Sprintf("%s %s answered %d %s", method, where, a.status, http.StatusText(a.status))}, nil
}
