package notifytest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The stand-ins refuse what their services refuse, in their words.
func TestPagingStandInsAreStrict(t *testing.T) {
	pd := NewPagerDuty("key")
	defer pd.Close()
	og := NewOpsgenie("genie")
	defer og.Close()
	slack := NewSlack()
	defer slack.Close()
	teams := NewTeams()
	defer teams.Close()
	for _, tc := range []struct {
		name, url, auth, body string
		status                int
		want                  string
	}{
		{"PagerDuty: a trigger needs a summary, a source and a severity", pd.URL + "/v2/enqueue", "", `{"routing_key":"key","event_action":"trigger","payload":{"source":"x","severity":"fatal"}}`,
			400, `"errors":["'payload.summary' is missing or longer than 1024 characters","'payload.severity' must be one of critical, error, warning or info"]`},
		{"PagerDuty: a resolve needs the dedup_key", pd.URL + "/v2/enqueue", "", `{"routing_key":"key","event_action":"resolve"}`, 400, `'dedup_key' is required to resolve`},
		{"PagerDuty: an unknown routing key", pd.URL + "/v2/enqueue", "", `{"routing_key":"other","event_action":"resolve","dedup_key":"1"}`, 400, `not the key of an integration`},
		{"PagerDuty: a field it does not know", pd.URL + "/v2/enqueue", "", `{"routing_key":"key","event_action":"resolve","dedup_key":"1","severity":"x"}`, 400, `unknown field`},
		{"Opsgenie: no key", og.URL + "/v2/alerts", "", `{"message":"m"}`, 401, "Could not authenticate"},
		{"Opsgenie: no message", og.URL + "/v2/alerts", "GenieKey genie", `{"alias":"a"}`, 422, "Message can not be empty."},
		{"Opsgenie: close of an alert it never had", og.URL + "/v2/alerts/nope/close?identifierType=alias", "GenieKey genie", `{}`, 404, "does not exist"},
		{"Slack: no text", slack.WebhookURL(), "", `{"text":" "}`, 400, "no_text"},
		{"Slack: a wrong webhook", slack.URL + "/services/T0/B0/x", "", `{"text":"x"}`, 403, "invalid_token"},
		{"Teams: not an Adaptive Card", teams.WebhookURL(), "", `{"type":"message","attachments":[{"contentType":"text/plain","content":{}}]}`, 400, "must be an Adaptive Card"},
		{"Teams: a wrong signature", teams.URL + "/workflows/x/triggers/manual/paths/invoke?sig=0", "", `{}`, 401, "DirectApiAuthorizationRequired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("got %d %s, want %d containing %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
	if n := len(pd.Incidents()) + len(og.Incidents()) + len(slack.Messages()) + len(teams.Messages()); n != 0 {
		t.Errorf("refused requests changed nothing, but %d incidents or messages were kept", n)
	}
}
