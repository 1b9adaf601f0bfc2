package actionkind

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	pathpkg "path"
	"strings"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/secretref"
)

// httpCall calls an HTTP endpoint: an ITSM, a paging service, a chat.
var httpCall = &Kind{
	Type:          problemhookv1alpha1.ActionTypeHTTP,
	Field:         "http",
	Message:       true,
	set:           func(a *problemhookv1alpha1.Action) bool { return a.HTTP != nil },
	stopOnResolve: func(a *problemhookv1alpha1.Action) *bool { return a.HTTP.StopOnResolve },
	secrets: []secretField{{
		field: "http.urlSecretRef",
		ref: func(a *problemhookv1alpha1.Action) (string, []string, bool) {
			if u := a.HTTP.URLSecretRef; u != nil {
				return u.Name, keyOr(*u, problemhookv1alpha1.DefaultHTTPURLKey), true
			}
			return "", nil, false
		},
	}, {
		field: "http.headersSecretRef",
		ref: func(a *problemhookv1alpha1.Action) (string, []string, bool) {
			if h := a.HTTP.HeadersSecretRef; h != nil {
				return h.Name, nil, true
			}
			return "", nil, false
		},
		validate: notify.CheckHeaders,
	}, {
		field: "http.secretRef",
		ref: func(a *problemhookv1alpha1.Action) (string, []string, bool) {
			if s := a.HTTP.SecretRef; s != nil {
				return s.Name, nil, true
			}
			return "", nil, false
		},
	}},
	templates: []templateField{
		{field: "http.body", text: func(a *problemhookv1alpha1.Action) string { return a.HTTP.Body }, secrets: "http.secretRef"},
		{field: "http.path", text: func(a *problemhookv1alpha1.Action) string { return a.HTTP.Path }},
	},
}

func init() { httpCall.prepare = prepareCall }

// prepareCall makes one call: the URL from the action or its Secret, with
// the rendered path appended, the headers of its headers Secret and the
// body rendered with the values of its body Secret.
func prepareCall(in Input, values map[string]map[string][]byte) (Message, error) {
	h := in.Action.HTTP
	call := notify.Call{Method: h.Method, URL: h.URL, IdempotencyKey: in.IdempotencyKey}
	if ref := h.URLSecretRef; ref != nil {
		call.URL = string(only(values["http.urlSecretRef"]))
		call.Where = fmt.Sprintf("the URL in Secret %s key %s", ref.Name, secretref.KeyOrDefault(*ref, problemhookv1alpha1.DefaultHTTPURLKey))
	}
	if ref := h.HeadersSecretRef; ref != nil {
		headers := values["http.headersSecretRef"]
		if err := notify.CheckHeaders(headers); err != nil {
			return Message{}, &PrepareError{Msg: fmt.Sprintf("http.headersSecretRef: %v (Secret %s)", err, ref.Name)}
		}
		call.Header = http.Header{}
		for k, v := range headers {
			call.Header.Set(k, string(v))
		}
	}
	if h.Path != "" {
		path, err := in.Render("http.path")
		if err != nil {
			return Message{}, err
		}
		if call.URL, err = JoinPath(call.URL, path); err != nil {
			return Message{}, &PrepareError{Msg: "http.path: " + err.Error()}
		}
	}
	var err error
	if call.Body, err = in.RenderWithSecrets("http.body", values["http.secretRef"]); err != nil {
		return Message{}, err
	}
	return Message{Send: func(ctx context.Context, c *notify.Client) (notify.Result, error) { return c.Do(ctx, call) }}, nil
}

// JoinPath appends a rendered http.path to the action's URL, as a call
// is sent. What the problem put in it may add path elements and a query,
// never reach another host.
func JoinPath(base, path string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", errors.New("the URL does not parse")
	}
	joined := strings.TrimRight(base, "/") + "/" + strings.TrimLeft(path, "/")
	if b.RawQuery != "" || b.Fragment != "" {
		return "", errors.New("a URL with a query cannot take a path")
	}
	j, err := url.Parse(joined)
	if err != nil {
		// url.Parse's error quotes the whole URL, which may hold a
		// credential from a Secret: say only what is wrong with it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("the URL with the path does not parse: %w", err)
	}
	// A server resolves dot segments, encoded or not: so does the check.
	if j.Scheme != b.Scheme || j.Host != b.Host || j.User.String() != b.User.String() ||
		!strings.HasPrefix(pathpkg.Clean(j.Path)+"/", strings.TrimRight(b.Path, "/")+"/") {
		return "", fmt.Errorf("the path %q leaves the URL's host or path", path)
	}
	return joined, nil
}
