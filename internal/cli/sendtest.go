package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/payload"
	"github.com/problemhook/problemhook/internal/secretref"
)

const (
	// sendTimeout bounds the whole exchange with the receiver.
	sendTimeout = 15 * time.Second
	// maxAnswerBytes bounds the receiver's answer read; its answers are a
	// few hundred bytes.
	maxAnswerBytes = 64 << 10
	// portForwardHint says how to reach the receiver from outside the cluster.
	portForwardHint = "pass --receiver-url, e.g. --receiver-url http://localhost:9292 after " +
		"`kubectl -n problemhook-system port-forward svc/problemhook-receiver 9292`"
)

// SendTestOptions say which target SendTest posts a test notification for,
// and where.
type SendTestOptions struct {
	// Target is the NotificationTarget to post to.
	Target types.NamespacedName
	// ReceiverURL is the base URL of the receiver, e.g. http://localhost:9292;
	// the target's status.webhookURL when empty.
	ReceiverURL string
	// HTTPClient posts the notification; a client with a 15s timeout that
	// does not follow redirects when nil.
	HTTPClient *http.Client
}

func (o *SendTestOptions) validate() error {
	if o.Target.Namespace == "" || o.Target.Name == "" {
		return errors.New("the target's namespace and name are required")
	}
	if o.ReceiverURL != "" {
		if _, err := baseURL(o.ReceiverURL); err != nil {
			return fmt.Errorf("--receiver-url: %w", err)
		}
	}
	return nil
}

// SendTest posts a test notification in the format of opts.Target to the
// receiver, with the credentials the target's auth Secret holds, and
// prints the receiver's answer to out. It returns an error when the answer
// is not 2xx. It reads the target and its Secret through c.
func SendTest(ctx context.Context, c client.Reader, opts SendTestOptions, out io.Writer) error {
	if err := opts.validate(); err != nil {
		return err
	}
	target, err := getTarget(ctx, c, opts.Target)
	if err != nil {
		return err
	}
	base, err := receiverBase(opts.ReceiverURL, target)
	if err != nil {
		return err
	}
	authorize, authMode, err := credentials(ctx, c, target)
	if err != nil {
		return fmt.Errorf("reading the credentials of NotificationTarget %s: %w", opts.Target, err)
	}
	body, err := testNotification(target.Spec.Format)
	if err != nil {
		return err
	}
	endpoint := base + problemhookv1alpha1.WebhookPath(target.Namespace, target.Name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "problemhook-send-test")
	authorize(req)

	_, _ = fmt.Fprintf(out, "POST %s (%s test notification, %s)\n", endpoint, target.Spec.Format, authMode)
	httpClient := opts.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{
			Timeout: sendTimeout,
			// The receiver does not redirect; a redirect is an answer to show.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		if opts.ReceiverURL == "" {
			return fmt.Errorf("posting to the target's status.webhookURL: %w; when it is not reachable from here, %s", err, portForwardHint)
		}
		return fmt.Errorf("posting to %s: %w", endpoint, err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("reading the receiver's answer (%s): %w", resp.Status, err)
	}
	_, _ = fmt.Fprintln(out, resp.Status)
	var indented bytes.Buffer
	if json.Indent(&indented, answer, "", "  ") == nil {
		answer = indented.Bytes()
	}
	if len(answer) > 0 {
		_, _ = fmt.Fprintln(out, strings.TrimRight(string(answer), "\n"))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}

// receiverBase is the base URL to post to: flagURL when set, else the
// target's status.webhookURL without its webhook path.
func receiverBase(flagURL string, target *problemhookv1alpha1.NotificationTarget) (string, error) {
	if flagURL != "" {
		return baseURL(flagURL)
	}
	key := types.NamespacedName{Namespace: target.Namespace, Name: target.Name}
	status := target.Status
	if status.WebhookURL == "" {
		return "", fmt.Errorf("NotificationTarget %s has no status.webhookURL (is the operator running?); %s", key, portForwardHint)
	}
	base := status.WebhookURL
	if status.WebhookPath != "" {
		base = strings.TrimSuffix(base, status.WebhookPath)
	}
	u, err := baseURL(base)
	if err != nil {
		return "", fmt.Errorf("NotificationTarget %s: status.webhookURL %q is not usable: %w; %s", key, status.WebhookURL, err, portForwardHint)
	}
	return u, nil
}

// baseURL checks a receiver base URL and returns it without a trailing
// slash, and without the webhook path when it was given the full URL.
func baseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", err
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q is not an http or https URL", raw)
	case u.Host == "":
		return "", fmt.Errorf("%q has no host", raw)
	case u.User != nil:
		return "", fmt.Errorf("%q must not hold credentials: they are read from the target's Secret", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q must not have a query or fragment", raw)
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	if i := strings.Index(path, "/hooks/"); i >= 0 {
		path = path[:i]
	}
	return u.Scheme + "://" + u.Host + path, nil
}

// credentials returns what adds target's credentials to a request, and the
// name of the auth mode. credentials.Load keeps only digests,
// so the Secret is read here with the same keys and defaults.
func credentials(ctx context.Context, c client.Reader, target *problemhookv1alpha1.NotificationTarget) (func(*http.Request), string, error) {
	auth := target.Spec.Auth
	switch {
	case auth.Basic != nil:
		v, err := secretref.Values(ctx, c, target.Namespace, auth.Basic.SecretRef.Name, "spec.auth.basic.secretRef",
			problemhookv1alpha1.BasicUsernameKey, problemhookv1alpha1.BasicPasswordKey)
		if err != nil {
			return nil, "", err
		}
		user, password := string(v[problemhookv1alpha1.BasicUsernameKey]), string(v[problemhookv1alpha1.BasicPasswordKey])
		return func(req *http.Request) { req.SetBasicAuth(user, password) }, "basic auth", nil
	case auth.Bearer != nil:
		token, err := secretref.Value(ctx, c, target.Namespace, auth.Bearer.SecretRef, problemhookv1alpha1.DefaultBearerKey, "spec.auth.bearer.secretRef")
		if err != nil {
			return nil, "", err
		}
		// The receiver trims the token as it compares; so does this.
		header := "Bearer " + strings.TrimSpace(string(token))
		return func(req *http.Request) { req.Header.Set("Authorization", header) }, "bearer token", nil
	default:
		return func(*http.Request) {}, "no auth", nil
	}
}

// dynatraceEntity is an element of the {ImpactedEntities} placeholder.
type dynatraceEntity struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Entity string `json:"entity"`
}

// dynatraceTest is the test notification Dynatrace sends before it saves a
// custom webhook integration, with every placeholder the receiver reads.
// The receiver recognises it by ProblemID 999 and PID 99999.
type dynatraceTest struct {
	State            string            `json:"State"`
	ProblemID        string            `json:"ProblemID"`
	PID              string            `json:"PID"`
	ProblemTitle     string            `json:"ProblemTitle"`
	ProblemURL       string            `json:"ProblemURL"`
	ProblemSeverity  string            `json:"ProblemSeverity"`
	ProblemImpact    string            `json:"ProblemImpact"`
	ImpactedEntity   string            `json:"ImpactedEntity"`
	ImpactedEntities []dynatraceEntity `json:"ImpactedEntities"`
	Tags             string            `json:"Tags"`
}

// guanceTest is a Guance event with the fields the receiver requires and
// those it reads.
type guanceTest struct {
	Timestamp     int64  `json:"timestamp"`
	Status        string `json:"df_status"`
	EventID       string `json:"df_event_id"`
	Title         string `json:"df_title"`
	Message       string `json:"df_message"`
	DimensionTags string `json:"df_dimension_tags"`
	MonitorID     string `json:"df_monitor_id"`
	MonitorName   string `json:"df_monitor_name"`
}

// testNotification returns the body of a test notification in format.
func testNotification(format problemhookv1alpha1.PayloadFormat) ([]byte, error) {
	var v any
	switch format {
	case problemhookv1alpha1.FormatDynatrace:
		// Severity and impact are dummy values: the receiver needs neither.
		v = dynatraceTest{
			State:           string(problemhookv1alpha1.StateOpen),
			ProblemID:       "999",
			PID:             "99999",
			ProblemTitle:    "Dynatrace problem notification test run",
			ProblemURL:      "https://example.com",
			ProblemSeverity: "AVAILABILITY",
			ProblemImpact:   "INFRASTRUCTURE",
			ImpactedEntity:  "MyHost1, MyService1",
			ImpactedEntities: []dynatraceEntity{
				{Type: "HOST", Name: "MyHost1", Entity: "HOST-XXXXXXXXXXXXX"},
				{Type: "SERVICE", Name: "MyService1", Entity: "SERVICE-XXXXXXXXXXXXX"},
			},
			Tags: "testtag1, testtag2",
		}
	case problemhookv1alpha1.FormatGuance:
		// Guance sends no test event: the receiver knows this one as a
		// test by its df_event_id, and treats it as the target's
		// testNotifications says, like Dynatrace's own test.
		v = guanceTest{
			Timestamp:     time.Now().Unix(),
			Status:        "info",
			EventID:       payload.GuanceTestEventID,
			Title:         "problemhook test notification",
			Message:       "Sent by `manager send-test` to check that the receiver accepts this target's events and credentials.",
			DimensionTags: `{"source":"problemhook-send-test"}`,
			MonitorID:     "problemhook-send-test",
			MonitorName:   "problemhook send-test",
		}
	case problemhookv1alpha1.FormatDynatraceWorkflow:
		// Workflows send no test either: this record is known by its event.id.
		v = map[string]any{
			"event.id":          payload.WorkflowTestEventID,
			"display_id":        "P-0",
			"event.kind":        "DAVIS_PROBLEM",
			"event.name":        "problemhook test notification",
			"event.status":      "ACTIVE",
			"event.category":    "CUSTOM_ALERT",
			"event.start":       time.Now().UTC().Format(time.RFC3339Nano),
			"entity_tags":       []string{"source:problemhook-send-test"},
			"event.description": "Sent by `manager send-test` to check that the receiver accepts this target's records and credentials.",
		}
	default:
		return nil, fmt.Errorf("unknown payload format %q", format)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding the test notification: %w", err)
	}
	return body, nil
}
