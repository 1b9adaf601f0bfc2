package dynatracetest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

// The Settings stand-in refuses what Dynatrace refuses: a secret header
// without its secret (SECRET_RESUBMISSION), an unknown alerting profile, a
// token without settings.write; and gives no secret back.
func TestSettingsStandInIsStrict(t *testing.T) {
	s := dynatracetest.NewServer(dynatracetest.ServerOptions{})
	defer s.Close()
	const read, write = "dt0c01.READ", "dt0c01.WRITE"
	s.AddToken(read, dynatracetest.ScopeSettingsRead)
	s.AddToken(write, dynatracetest.ScopeSettingsRead, dynatracetest.ScopeSettingsWrite)
	do := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Api-Token "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	code, profiles := do(http.MethodGet, "/api/v2/settings/objects?schemaIds=builtin:alerting.profile", read, "")
	if code != 200 || !strings.Contains(profiles, `"name":"Default"`) {
		t.Fatalf("alerting profiles: %d %s", code, profiles)
	}
	profile := strings.Split(strings.Split(profiles, `"objectId":"`)[1], `"`)[0]
	object := func(profile, header string) string {
		return `[{"schemaId":"builtin:problem.notifications","scope":"environment","externalId":"problemhook-1","value":{"enabled":true,"displayName":"x","type":"WEBHOOK",` +
			`"alertingProfile":"` + profile + `","webHookNotification":{"url":"https://h/","payload":"{}","headers":[` + header + `]}}}]`
	}
	for _, tc := range []struct {
		name, token, body string
		code              int
		want              string
	}{
		{"no settings.write", read, object(profile, ""), 403, "Token is missing required scope settings.write"},
		{"a secret header without its secret", write, object(profile, `{"name":"Authorization","secret":true}`), 400, "Re-enter all secret token(s) before saving"},
		{"an unknown alerting profile", write, object("nope", ""), 400, "alertingProfile must be the objectId of an alerting profile"},
		{"not a list", write, `{}`, 400, "the body must be a list"},
		{"a good object", write, object(profile, `{"name":"Authorization","secret":true,"secretValue":"Basic c2VjcmV0"}`), 200, `"objectId"`},
	} {
		if code, body := do(http.MethodPost, "/api/v2/settings/objects", tc.token, tc.body); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: got %d %s, want %d with %q", tc.name, code, body, tc.code, tc.want)
		}
	}
	if _, body := do(http.MethodGet, "/api/v2/settings/objects?schemaIds=builtin:problem.notifications&externalIds=problemhook-1", read, ""); strings.Contains(body, "c2VjcmV0") || !strings.Contains(body, `"externalId":"problemhook-1"`) {
		t.Errorf("the listing gives the secret back or misses the object: %s", body)
	}
}
