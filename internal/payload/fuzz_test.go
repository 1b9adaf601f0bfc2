package payload_test

import (
	"errors"
	"testing"
	"unicode/utf8"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/payload"
)

func FuzzParseDynatrace(f *testing.F) {
	for _, name := range []string{"dynatrace-rich.json", "dynatrace-test.json"} {
		f.Add(readTestdata(f, name))
	}
	for _, body := range []string{
		minimalDynatrace,
		`{"State":"RESOLVED","ProblemID":999,"PID":99999,"Tags":"a, b,,a"}`,
		`{"State":"OPEN","ProblemID":"1","PID":"1","ImpactedEntities":"[{\"entity\":\"HOST-1\"}]"}`,
		`{"State":"OPEN","ProblemID":"1","PID":"1","ProblemDetailsJSON":{"rankedImpacts":[{"entityId":"HOST-1"}]}}`,
		`{"State":"OPEN","ProblemID":"1","PID":"1","ProblemDetailsJSONv2":{"impactLevel":"SERVICES","entityTags":[{"key":"k"}]}}`,
		`{"State":"OPEN","State":"OPEN"}`,
		`{}`, `[]`, ``, `{"a":[{"b":{}}]}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, err := payload.ParseDynatrace(body)
		checkParsed(t, spec, err)
	})
}

func FuzzParseGuance(f *testing.F) {
	for _, name := range []string{"guance-warning.json", "guance-ok.json"} {
		f.Add(readTestdata(f, name))
	}
	for _, body := range []string{
		`{"timestamp":1,"df_status":"ok","df_event_id":"e","df_title":"t","df_dimension_tags":"{}"}`,
		`{"timestamp":1.5,"df_status":"OK","df_event_id":1,"df_title":"","df_dimension_tags":"[]"}`,
		`{"timestamp":1,"df_status":"error","df_event_id":"e","df_title":"t","df_dimension_tags":"{\"host\":\"h\",\"a\":\"\"}"}`,
		`{}`, `[]`, ``,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, err := payload.ParseGuance(body)
		checkParsed(t, spec, err)
	})
}

// checkParsed checks what every parse result must satisfy: an error the
// receiver can map to a status, or a spec the API server will accept.
func checkParsed(t *testing.T, spec *problemhookv1alpha1.ProblemEventSpec, err error) {
	t.Helper()
	if err != nil {
		var fieldErr *payload.FieldError
		if !errors.Is(err, payload.ErrNotJSON) && !errors.As(err, &fieldErr) {
			t.Fatalf("error %q (%T) is neither ErrNotJSON nor a *FieldError", err, err)
		}
		if spec != nil {
			t.Fatalf("spec %+v returned with error %q", spec, err)
		}
		return
	}
	if spec.ProblemID == "" {
		t.Error("empty ProblemID")
	}
	if spec.State != problemhookv1alpha1.StateOpen && spec.State != problemhookv1alpha1.StateResolved {
		t.Errorf("State %q", spec.State)
	}
	checkString(t, "ProblemID", spec.ProblemID, problemhookv1alpha1.MaxShortFieldLength)
	checkString(t, "DisplayID", spec.DisplayID, problemhookv1alpha1.MaxShortFieldLength)
	checkString(t, "Title", spec.Title, problemhookv1alpha1.MaxTitleLength)
	checkString(t, "Message", spec.Message, problemhookv1alpha1.MaxMessageLength)
	checkString(t, "Severity", spec.Severity, problemhookv1alpha1.MaxShortFieldLength)
	checkString(t, "Impact", spec.Impact, problemhookv1alpha1.MaxShortFieldLength)
	checkString(t, "URL", spec.URL, problemhookv1alpha1.MaxURLLength)
	checkList(t, "Tags", spec.Tags, problemhookv1alpha1.MaxTagCount)
	checkList(t, "ManagementZones", spec.ManagementZones, problemhookv1alpha1.MaxZoneCount)
	if len(spec.ImpactedEntities) > problemhookv1alpha1.MaxEntityCount {
		t.Errorf("%d ImpactedEntities", len(spec.ImpactedEntities))
	}
	for _, e := range spec.ImpactedEntities {
		checkString(t, "ImpactedEntities.ID", e.ID, problemhookv1alpha1.MaxShortFieldLength)
		checkString(t, "ImpactedEntities.Name", e.Name, problemhookv1alpha1.MaxShortFieldLength)
		checkString(t, "ImpactedEntities.Type", e.Type, problemhookv1alpha1.MaxShortFieldLength)
	}
}

func checkList(t *testing.T, name string, list []string, count int) {
	t.Helper()
	if len(list) > count {
		t.Errorf("%d %s", len(list), name)
	}
	for _, item := range list {
		checkString(t, name, item, problemhookv1alpha1.MaxShortFieldLength)
	}
}

func checkString(t *testing.T, name, s string, bound int) {
	t.Helper()
	if len(s) > bound {
		t.Errorf("%s is %d bytes long", name, len(s))
	}
	if !utf8.ValidString(s) {
		t.Errorf("%s %q is not valid UTF-8", name, s)
	}
}
