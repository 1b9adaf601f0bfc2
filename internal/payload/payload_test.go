package payload_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/payload"
)

const minimalDynatrace = `{"State":"OPEN","ProblemID":"1234","PID":"-6150203450926486413_1669823466223V2"}`

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// dynatrace returns a spec as ParseDynatrace returns it for minimalDynatrace,
// changed by edit.
func dynatrace(edit func(*problemhookv1alpha1.ProblemEventSpec)) *problemhookv1alpha1.ProblemEventSpec {
	spec := &problemhookv1alpha1.ProblemEventSpec{
		Source:    problemhookv1alpha1.FormatDynatrace,
		ProblemID: "-6150203450926486413_1669823466223V2",
		DisplayID: "1234",
		State:     problemhookv1alpha1.StateOpen,
	}
	if edit != nil {
		edit(spec)
	}
	return spec
}

// withMinimal adds members to minimalDynatrace.
func withMinimal(members string) string {
	return strings.TrimSuffix(minimalDynatrace, "}") + "," + members + "}"
}

func TestParseDynatrace(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *problemhookv1alpha1.ProblemEventSpec
	}{{
		name: "minimal payload of the old sample",
		body: minimalDynatrace,
		want: dynatrace(nil),
	}, {
		name: "every placeholder",
		body: string(readTestdata(t, "dynatrace-rich.json")),
		want: &problemhookv1alpha1.ProblemEventSpec{
			Source:    problemhookv1alpha1.FormatDynatrace,
			ProblemID: "-6150203450926486413_1669823466223V2",
			DisplayID: "221194163",
			State:     problemhookv1alpha1.StateOpen,
			Title:     "Response time degradation",
			Message: "Problem 221194163 in environment abc12345\nProblem detected at: 14:31 (UTC) 30.11.2022\n\n" +
				"2 impacted services\n\nResponse time degradation\n" +
				"The current response time (1.2 s) exceeds the auto-detected baseline (250 ms) by 380 %",
			Severity: "PERFORMANCE",
			Impact:   "SERVICE",
			URL:      "https://abc12345.live.dynatrace.com/#problems/problemdetails;pid=-6150203450926486413_1669823466223V2",
			Tags:     []string{"env:prod", "team:shop", "frontend"},
			ImpactedEntities: []problemhookv1alpha1.ImpactedEntity{
				{ID: "SERVICE-5E8C3A10C47E52D9", Name: "checkout-service", Type: "SERVICE"},
				{ID: "SERVICE-0B1C5F53E0A4D1F7", Name: "payment-service", Type: "SERVICE"},
			},
			ManagementZones: []string{"Shop", "Production"},
		},
	}, {
		name: "unquoted numbers for PID and ProblemID keep their text",
		body: `{"State":"RESOLVED","ProblemID":1234,"PID":5988270214550055152123}`,
		want: dynatrace(func(s *problemhookv1alpha1.ProblemEventSpec) {
			s.State, s.DisplayID, s.ProblemID = problemhookv1alpha1.StateResolved, "1234", "5988270214550055152123"
		}),
	}, {
		name: "ImpactedEntities quoted as a string",
		body: withMinimal(`"ImpactedEntities":"[{\"type\":\"HOST\",\"name\":\"web01\",\"entity\":\"HOST-0123456789ABCDEF\"}]"`),
		want: dynatrace(func(s *problemhookv1alpha1.ProblemEventSpec) {
			s.ImpactedEntities = []problemhookv1alpha1.ImpactedEntity{{ID: "HOST-0123456789ABCDEF", Name: "web01", Type: "HOST"}}
		}),
	}, {
		name: "entity names when ImpactedEntities is absent",
		body: withMinimal(`"ImpactedEntities":[],"ImpactedEntity":"","ImpactedEntityNames":" web01 , db01,,web01"`),
		want: dynatrace(func(s *problemhookv1alpha1.ProblemEventSpec) {
			s.ImpactedEntities = []problemhookv1alpha1.ImpactedEntity{{Name: "web01"}, {Name: "db01"}}
		}),
	}, {
		name: "tags trimmed, empty pieces and duplicates dropped, order kept",
		body: withMinimal(`"Tags":"team:shop, env:prod,, team:shop ,frontend,"`),
		want: dynatrace(func(s *problemhookv1alpha1.ProblemEventSpec) {
			s.Tags = []string{"team:shop", "env:prod", "frontend"}
		}),
	}, {
		name: "markdown details when there is no text",
		body: withMinimal(`"ProblemDetailsText":"","ProblemDetailsMarkdown":"**down**"`),
		want: dynatrace(func(s *problemhookv1alpha1.ProblemEventSpec) { s.Message = "**down**" }),
	}, {
		name: "null is the same as absent",
		body: withMinimal(`"ProblemTitle":null,"ImpactedEntities":null,"ProblemDetailsJSONv2":null,"ProblemDetailsJSON":null`),
		want: dynatrace(nil),
	}, {
		name: "v2 details fill what the placeholders did not give, SERVICES becomes SERVICE",
		body: withMinimal(`"ProblemSeverity":"ERROR","ImpactedEntityNames":"web01","ProblemDetailsJSONv2":{
			"title":"Failure rate increase","impactLevel":"SERVICES","severityLevel":"AVAILABILITY","status":"OPEN",
			"affectedEntities":[{"entityId":{"id":"HOST-1","type":"HOST"},"name":"web01"}],
			"entityTags":[{"key":"env","value":"prod","stringRepresentation":"env:prod"},{"key":"frontend"},{"key":"team","value":"shop"}],
			"managementZones":[{"id":"1","name":"Shop"}],"rootCauseEntity":null}`),
		want: dynatrace(func(s *problemhookv1alpha1.ProblemEventSpec) {
			s.Title, s.Severity, s.Impact = "Failure rate increase", "ERROR", "SERVICE"
			s.Tags = []string{"env:prod", "frontend", "team:shop"}
			s.ImpactedEntities = []problemhookv1alpha1.ImpactedEntity{{ID: "HOST-1", Name: "web01", Type: "HOST"}}
			s.ManagementZones = []string{"Shop"}
		}),
	}, {
		name: "v1 details when there are no v2 details",
		body: withMinimal(`"ProblemDetailsJSON":{"displayName":"1234","impactLevel":"INFRASTRUCTURE","severityLevel":"ERROR",
			"tagsOfAffectedEntities":[{"context":"CONTEXTLESS","key":"somekey","value":"value"},{"context":"CONTEXTLESS","key":"justatag"}],
			"rankedImpacts":[{"entityId":"PROCESS_GROUP_INSTANCE-BE13DF5ADAAC13DD","entityName":"someprocessgroupname",
				"severityLevel":"ERROR","impactLevel":"INFRASTRUCTURE","eventType":"HIGH_CONNECTIVITY_FAILURES"},
				{"entityId":"nodash","entityName":"odd"}]}`),
		want: dynatrace(func(s *problemhookv1alpha1.ProblemEventSpec) {
			s.Severity, s.Impact = "ERROR", "INFRASTRUCTURE"
			s.Tags = []string{"somekey:value", "justatag"}
			s.ImpactedEntities = []problemhookv1alpha1.ImpactedEntity{
				{ID: "PROCESS_GROUP_INSTANCE-BE13DF5ADAAC13DD", Name: "someprocessgroupname", Type: "PROCESS_GROUP_INSTANCE"},
				{ID: "nodash", Name: "odd"},
			}
		}),
	}, {
		name: "v2 details win over v1 details",
		body: withMinimal(`"ProblemDetailsJSON":{"impactLevel":"SERVICE","severityLevel":"ERROR","rankedImpacts":[{"entityId":"HOST-1"}]},
			"ProblemDetailsJSONv2":{"impactLevel":"APPLICATION"}`),
		want: dynatrace(func(s *problemhookv1alpha1.ProblemEventSpec) {
			s.Impact, s.Severity = "APPLICATION", "ERROR"
			s.ImpactedEntities = []problemhookv1alpha1.ImpactedEntity{{ID: "HOST-1", Type: "HOST"}}
		}),
	}, {
		name: "field names are case-sensitive, other fields are ignored",
		body: withMinimal(`"problemTitle":"lower case","Extra":{"ProblemTitle":"nested"}`),
		want: dynatrace(nil),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			spec, err := payload.ParseDynatrace([]byte(tt.body))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(spec).To(Equal(tt.want))
		})
	}
}

func TestDynatraceTestNotification(t *testing.T) {
	t.Run("the notification Dynatrace sends before saving", func(t *testing.T) {
		g := NewWithT(t)
		spec, err := payload.ParseDynatrace(readTestdata(t, "dynatrace-test.json"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(spec).To(Equal(&problemhookv1alpha1.ProblemEventSpec{
			Source:    problemhookv1alpha1.FormatDynatrace,
			ProblemID: "99999",
			DisplayID: "999",
			State:     problemhookv1alpha1.StateOpen,
			Title:     "Dynatrace problem notification test run",
			URL:       "https://example.com",
			Tags:      []string{"testtag1", "testtag2"},
			ImpactedEntities: []problemhookv1alpha1.ImpactedEntity{
				{ID: "HOST-XXXXXXXXXXXXX", Name: "MyHost1", Type: "HOST"},
				{ID: "SERVICE-XXXXXXXXXXXXX", Name: "MyService1", Type: "SERVICE"},
			},
			Test: true,
		}))
	})

	tests := []struct {
		problemID, pid string // as JSON
		want           bool
	}{
		{`"999"`, `"99999"`, true},
		{`999`, `99999`, true},
		{`"TESTID"`, `"TESTID"`, true},
		{`"TESTID"`, `"-6150203450926486413_1669823466223V2"`, true},
		{`"1234"`, `"TESTID"`, true},
		{`"1999"`, `"99999"`, false},
		{`"9999"`, `"99999"`, false},
		{`"999"`, `"999999"`, false},
		{`"999"`, `"199999"`, false},
		{`"99999"`, `"999"`, false},
		{`"99999"`, `"99999"`, false},
		{`"999"`, `"-6150203450926486413_1669823466223V2"`, false},
		{`"P-999"`, `"99999"`, false},
		{`" 999"`, `"99999"`, false},
		{`"testid"`, `"1"`, false},
		{`"TESTID2"`, `"1"`, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("ProblemID %s PID %s", tt.problemID, tt.pid), func(t *testing.T) {
			g := NewWithT(t)
			body := fmt.Sprintf(`{"State":"OPEN","ProblemID":%s,"PID":%s}`, tt.problemID, tt.pid)
			spec, err := payload.ParseDynatrace([]byte(body))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(spec.Test).To(Equal(tt.want))
		})
	}
}

func TestParseDynatraceFieldErrors(t *testing.T) {
	long := strings.Repeat("7", problemhookv1alpha1.MaxShortFieldLength+1)
	tests := []struct {
		name string
		body string
		want string
	}{
		{"all required fields missing", `{}`, "missing required fields: PID, ProblemID, State"},
		{"State missing", `{"ProblemID":"1234","PID":"1"}`, "missing required field: State"},
		{"ProblemID missing", `{"State":"OPEN","PID":"1"}`, "missing required field: ProblemID"},
		{"PID missing", `{"State":"OPEN","ProblemID":"1234"}`, "missing required field: PID"},
		{"empty strings are missing", `{"State":"","ProblemID":"","PID":""}`, "missing required fields: PID, ProblemID, State"},
		{"nulls are missing", `{"State":null,"ProblemID":null,"PID":null}`, "missing required fields: PID, ProblemID, State"},
		{"names are case-sensitive", `{"state":"OPEN","problemID":"1234","pid":"1"}`, "missing required fields: PID, ProblemID, State"},
		{
			"State other than OPEN and RESOLVED",
			`{"State":"CLOSED","ProblemID":"1234","PID":"1"}`,
			`invalid field State: "CLOSED" is not one of OPEN, RESOLVED`,
		},
		{
			"State is exact",
			`{"State":"open","ProblemID":"1234","PID":"1"}`,
			`invalid field State: "open" is not one of OPEN, RESOLVED`,
		},
		{
			"a long State is cut in the message",
			`{"State":"` + strings.Repeat("X", 100) + `","ProblemID":"1234","PID":"1"}`,
			`invalid field State: "` + strings.Repeat("X", 64) + `..." is not one of OPEN, RESOLVED`,
		},
		{"State of the wrong type", `{"State":true,"ProblemID":"1234","PID":"1"}`, "invalid field State: got bool, want string"},
		{"PID of the wrong type", `{"State":"OPEN","ProblemID":"1234","PID":{}}`, "invalid field PID: got object, want string or number"},
		{"PID too long", `{"State":"OPEN","ProblemID":"1234","PID":"` + long + `"}`, "invalid field PID: longer than 256 bytes"},
		{"PID too long as a number", `{"State":"OPEN","ProblemID":"1234","PID":` + long + `}`, "invalid field PID: longer than 256 bytes"},
		{"ProblemID too long", `{"State":"OPEN","ProblemID":"` + long + `","PID":"1"}`, "invalid field ProblemID: longer than 256 bytes"},
		{"optional text of the wrong type", withMinimal(`"ProblemTitle":5`), "invalid field ProblemTitle: got number, want string"},
		{"Tags not text", withMinimal(`"Tags":["env:prod"]`), "invalid field Tags: got array, want string"},
		{"ImpactedEntities a number", withMinimal(`"ImpactedEntities":5`), "invalid field ImpactedEntities: got number, want array"},
		{
			"ImpactedEntities an entity of the wrong type",
			withMinimal(`"ImpactedEntities":[{"entity":5}]`),
			"invalid field ImpactedEntities.entity: got number, want string",
		},
		{
			"ImpactedEntities a string without an array",
			withMinimal(`"ImpactedEntities":"{\"entity\":\"HOST-1\"}"`),
			"invalid field ImpactedEntities: not a JSON array: found object",
		},
		{
			"ImpactedEntities a string with broken JSON",
			withMinimal(`"ImpactedEntities":"[{\"entity\":"`),
			"invalid field ImpactedEntities: not a JSON array: unexpected EOF at byte 11",
		},
		{
			"ProblemDetailsJSONv2 not an object",
			withMinimal(`"ProblemDetailsJSONv2":"{ProblemDetailsJSONv2}"`),
			"invalid field ProblemDetailsJSONv2: got string, want object",
		},
		{
			"ProblemDetailsJSONv2 with a member of the wrong type",
			withMinimal(`"ProblemDetailsJSONv2":{"impactedEntities":{}}`),
			"invalid field ProblemDetailsJSONv2.impactedEntities: got object, want array",
		},
		{
			"ProblemDetailsJSONv2 with a nested member of the wrong type",
			withMinimal(`"ProblemDetailsJSONv2":{"impactedEntities":[{"entityId":{"id":7}}]}`),
			"invalid field ProblemDetailsJSONv2.impactedEntities.entityId.id: got number, want string",
		},
		{
			"ProblemDetailsJSON with a member of the wrong type",
			withMinimal(`"ProblemDetailsJSON":{"rankedImpacts":[{"entityId":1}]}`),
			"invalid field ProblemDetailsJSON.rankedImpacts.entityId: got number, want string",
		},
		{
			"every problem at once",
			`{"State":"CLOSED","ProblemID":"","Tags":5,"ImpactedEntities":"x"}`,
			`missing required fields: PID, ProblemID; invalid field ImpactedEntities: not a JSON array: ` +
				`invalid character 'x' looking for beginning of value at byte 1; invalid field State: "CLOSED" is not one of OPEN, RESOLVED; ` +
				`invalid field Tags: got number, want string`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			spec, err := payload.ParseDynatrace([]byte(tt.body))
			g.Expect(spec).To(BeNil())
			var fieldErr *payload.FieldError
			g.Expect(errors.As(err, &fieldErr)).To(BeTrue(), "error %v is not a *FieldError", err)
			g.Expect(err).To(MatchError(tt.want))
			g.Expect(errors.Is(err, payload.ErrNotJSON)).To(BeFalse())
		})
	}
}

func TestFieldErrorLists(t *testing.T) {
	g := NewWithT(t)
	_, err := payload.ParseDynatrace([]byte(`{"State":"CLOSED"}`))
	var fieldErr *payload.FieldError
	g.Expect(errors.As(err, &fieldErr)).To(BeTrue())
	g.Expect(fieldErr.Missing).To(Equal([]string{"PID", "ProblemID"}))
	g.Expect(fieldErr.Invalid).To(Equal([]string{`State: "CLOSED" is not one of OPEN, RESOLVED`}))
}

// nested returns a Dynatrace body whose deepest value is depth containers deep,
// counting the body itself.
func nested(depth int) string {
	inner := strings.Repeat(`{"a":`, depth-2) + "1" + strings.Repeat("}", depth-2)
	return withMinimal(`"Deep":[` + inner + `]`)
}

func TestNotJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"empty", "", "not a JSON object: empty input"},
		{"only white space", " \n\t", "not a JSON object: empty input"},
		{"an array", "[]", "not a JSON object: found array"},
		{"a string", `"x"`, "not a JSON object: found string"},
		{"a number", "1", "not a JSON object: found number"},
		{"null", "null", "not a JSON object: found null"},
		{"unfinished", "{", "not a JSON object: unexpected EOF at byte 1"},
		{"unfinished member", `{"State":`, "not a JSON object: unexpected EOF at byte 9"},
		{"syntax error", `{"State":OPEN}`, "not a JSON object: invalid character 'O' looking for beginning of value at byte 8"},
		{"trailing comma", `{"State":"OPEN",}`, "not a JSON object: invalid character '}' looking for beginning of object key string at byte 16"},
		{"a second object", "{}{}", "not a JSON object: data after the object at byte 3"},
		{"trailing garbage", minimalDynatrace + " x", "not a JSON object: data after the object at byte 81"},
		{"too deep", nested(payload.MaxDepth + 1), "not a JSON object: nested deeper than 64 levels at byte 399"},
		{"duplicate key", `{"State":"OPEN","State":"RESOLVED"}`, `not a JSON object: duplicate key "State" at byte 23`},
		{"duplicate key written differently", `{"State":"OPEN","St\u0061te":"RESOLVED"}`, `not a JSON object: duplicate key "State" at byte 28`},
		{"duplicate nested key", withMinimal(`"ProblemDetailsJSONv2":{"title":"a","x":[],"title":"b"}`), `not a JSON object: duplicate key "title" at byte 130`},
		{"duplicate key in an array", withMinimal(`"ImpactedEntities":[{},{"name":"a","name":"b"}]`), `not a JSON object: duplicate key "name" at byte 121`},
		{"too many members", manyMembers(payload.MaxMembers + 1), "not a JSON object: an object with more than 1024 members at byte 9138"},
	}
	for _, tt := range tests {
		for _, format := range []problemhookv1alpha1.PayloadFormat{problemhookv1alpha1.FormatDynatrace, problemhookv1alpha1.FormatGuance} {
			t.Run(string(format)+"/"+tt.name, func(t *testing.T) {
				g := NewWithT(t)
				spec, err := payload.Parse(format, []byte(tt.body))
				g.Expect(spec).To(BeNil())
				g.Expect(err).To(MatchError(payload.ErrNotJSON))
				g.Expect(err).To(MatchError(tt.want))
			})
		}
	}
}

func TestJSONThatIsAccepted(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"as deep as allowed", nested(payload.MaxDepth)},
		{"the same key in different objects", withMinimal(`"a":{"State":1},"b":[{"State":1},{"State":2}]`)},
		{"white space around the object", "\n\t " + minimalDynatrace + " \r\n"},
		{"a number too large for a float64", withMinimal(`"Big":1e999`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			spec, err := payload.ParseDynatrace([]byte(tt.body))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(spec).To(Equal(dynatrace(nil)))
		})
	}
}

func TestTruncation(t *testing.T) {
	// Three-byte runes: none of the bounds is a multiple of three, so every
	// cut falls inside a rune.
	longText := strings.Repeat("€", 5000)
	var manyTags []string
	for i := range 1000 {
		manyTags = append(manyTags, fmt.Sprintf("tag%d", i))
	}
	var manyZones, manyEntities []string
	for i := range 100 {
		manyZones = append(manyZones, fmt.Sprintf(`{"name":"zone%d"}`, i))
	}
	for i := range 300 {
		manyEntities = append(manyEntities, fmt.Sprintf(`{"entity":"HOST-%d","name":"host%d","type":"HOST"}`, i, i))
	}

	g := NewWithT(t)
	spec, err := payload.ParseDynatrace([]byte(withMinimal(fmt.Sprintf(
		`"ProblemTitle":%q,"ProblemDetailsText":%q,"ProblemURL":%q,"ProblemSeverity":%q,"Tags":%q,"ImpactedEntities":[%s],"ProblemDetailsJSONv2":{"managementZones":[%s]}`,
		longText, strings.Repeat(longText, 2), "https://example.com/"+strings.Repeat("p", 5000), longText,
		strings.Join(manyTags, ", "), strings.Join(manyEntities, ","), strings.Join(manyZones, ","),
	))))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.Truncated).To(BeTrue())

	for _, field := range []struct {
		name  string
		value string
		bound int
	}{
		{"title", spec.Title, problemhookv1alpha1.MaxTitleLength},
		{"message", spec.Message, problemhookv1alpha1.MaxMessageLength},
		{"severity", spec.Severity, problemhookv1alpha1.MaxShortFieldLength},
	} {
		g.Expect(utf8.ValidString(field.value)).To(BeTrue(), field.name)
		g.Expect(len(field.value)).To(BeNumerically(">", field.bound-utf8.UTFMax), field.name)
		g.Expect(len(field.value)).To(BeNumerically("<=", field.bound), field.name)
		g.Expect(strings.HasPrefix(longText, field.value)).To(BeTrue(), field.name)
	}
	g.Expect(spec.Title).To(Equal(strings.Repeat("€", problemhookv1alpha1.MaxTitleLength/3)))
	g.Expect(spec.URL).To(HaveLen(problemhookv1alpha1.MaxURLLength))
	g.Expect(spec.Tags).To(Equal(manyTags[:problemhookv1alpha1.MaxTagCount]))
	g.Expect(spec.ImpactedEntities).To(HaveLen(problemhookv1alpha1.MaxEntityCount))
	g.Expect(spec.ImpactedEntities[problemhookv1alpha1.MaxEntityCount-1]).To(Equal(problemhookv1alpha1.ImpactedEntity{ID: "HOST-255", Name: "host255", Type: "HOST"}))
	g.Expect(spec.ManagementZones).To(HaveLen(problemhookv1alpha1.MaxZoneCount))
}

func TestTruncationOfListItems(t *testing.T) {
	g := NewWithT(t)
	longTag := strings.Repeat("k", 300)
	spec, err := payload.ParseDynatrace([]byte(withMinimal(fmt.Sprintf(
		`"Tags":"%s1, %s2","ImpactedEntities":[{"entity":"HOST-1","name":%q}]`, longTag, longTag, longTag))))
	g.Expect(err).NotTo(HaveOccurred())
	// Both tags cut to the same text: one is kept.
	g.Expect(spec.Tags).To(Equal([]string{longTag[:problemhookv1alpha1.MaxShortFieldLength]}))
	g.Expect(spec.ImpactedEntities).To(Equal([]problemhookv1alpha1.ImpactedEntity{{ID: "HOST-1", Name: longTag[:problemhookv1alpha1.MaxShortFieldLength]}}))
	g.Expect(spec.Truncated).To(BeTrue())
}

func TestInvalidUTF8IsReplaced(t *testing.T) {
	g := NewWithT(t)
	spec, err := payload.ParseDynatrace([]byte(withMinimal("\"ProblemTitle\":\"disk \xff full\"")))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.Title).To(Equal("disk \uFFFD full"))
}

func TestParseFormats(t *testing.T) {
	g := NewWithT(t)
	spec, err := payload.Parse(problemhookv1alpha1.FormatGuance, readTestdata(t, "guance-warning.json"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.Source).To(Equal(problemhookv1alpha1.FormatGuance))

	spec, err = payload.Parse(problemhookv1alpha1.FormatDynatrace, []byte(minimalDynatrace))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(spec.Source).To(Equal(problemhookv1alpha1.FormatDynatrace))

	g.Expect(spec.Payload).To(Equal(minimalDynatrace))
	g.Expect(spec.Truncated).To(BeFalse())

	_, err = payload.Parse("Nagios", []byte(minimalDynatrace))
	g.Expect(err).To(MatchError(`unknown payload format "Nagios"`))
}

func TestParseKeepsTheBodyWithinItsBound(t *testing.T) {
	g := NewWithT(t)
	// A body past 64 KiB (the receiver admits up to 1 MiB) whose cut falls
	// inside a three-byte rune.
	body := withMinimal(`"ProblemDetailsText":"` + strings.Repeat("€", problemhookv1alpha1.MaxPayloadBytes/3+10) + `"`)
	spec, err := payload.Parse(problemhookv1alpha1.FormatDynatrace, []byte(body))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(spec.Payload)).To(BeNumerically("<=", problemhookv1alpha1.MaxPayloadBytes))
	g.Expect(len(spec.Payload)).To(BeNumerically(">", problemhookv1alpha1.MaxPayloadBytes-3))
	g.Expect(utf8.ValidString(spec.Payload)).To(BeTrue())
	g.Expect(body).To(HavePrefix(spec.Payload))
	g.Expect(spec.Truncated).To(BeTrue())
}

// BenchmarkParseDynatrace measures the parser against a baseline in the same
// run: encoding/json decoding the same body into a map, which checks no
// fields, no duplicates and no bounds. Compare the two, not the absolute times.
func BenchmarkParseDynatrace(b *testing.B) {
	for _, bench := range []struct {
		name string
		body []byte
	}{
		{"rich", readTestdata(b, "dynatrace-rich.json")},
		{"minimal", []byte(minimalDynatrace)},
	} {
		b.Run(bench.name+"/parse", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bench.body)))
			for b.Loop() {
				if _, err := payload.ParseDynatrace(bench.body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bench.name+"/baseline-unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bench.body)))
			for b.Loop() {
				var m map[string]any
				if err := json.Unmarshal(bench.body, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// manyMembers is an object of n members.
func manyMembers(n int) string {
	members := make([]string, n)
	for i := range members {
		members[i] = fmt.Sprintf(`"k%d":0`, i)
	}
	return "{" + strings.Join(members, ",") + "}"
}

func TestManyMembersAreAccepted(t *testing.T) {
	g := NewWithT(t)
	members := manyMembers(payload.MaxMembers - 3)
	_, err := payload.ParseDynatrace([]byte(withMinimal(members[1 : len(members)-1])))
	g.Expect(err).NotTo(HaveOccurred())
}

// TestLongListsAreCountedNotDecoded sends more list items than the parser
// decodes: the entities past the bound are still counted.
func TestLongListsAreCountedNotDecoded(t *testing.T) {
	entities := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`{"entity":"HOST-%d","name":"host%d"}`, i, i)
		}
		return strings.Join(items, ",")
	}
	v2 := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`{"entityId":{"id":"HOST-%d","type":"HOST"},"name":"host%d"}`, i, i)
		}
		return strings.Join(items, ",")
	}
	names := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf("host%d", i)
		}
		return strings.Join(items, ", ")
	}
	for _, tt := range []struct {
		name    string
		members string
		want    int32
	}{
		{"ImpactedEntities", fmt.Sprintf(`"ImpactedEntities":[%s]`, entities(5000)), 5000},
		{"ImpactedEntities after many empty ones", fmt.Sprintf(`"ImpactedEntities":[%s,%s]`, strings.Repeat("{},", 2000)+"{}", entities(300)), 300},
		{"ProblemDetailsJSONv2", fmt.Sprintf(`"ProblemDetailsJSONv2":{"impactedEntities":[%s]}`, v2(3000)), 3000},
		{"ImpactedEntityNames", fmt.Sprintf(`"ImpactedEntityNames":%q`, names(2000)), 2000},
		{"at the bound, nothing is counted twice", fmt.Sprintf(`"ImpactedEntities":[%s]`, entities(1024)), 1024},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			spec, err := payload.ParseDynatrace([]byte(withMinimal(tt.members)))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(spec.ImpactedEntities).To(HaveLen(problemhookv1alpha1.MaxEntityCount))
			g.Expect(spec.ImpactedEntityCount).To(Equal(tt.want))
			g.Expect(spec.Truncated).To(BeTrue())
		})
	}
}

// TestParsingCostsAFewTimesTheBody parses 1 MiB bodies that cost far more
// decoded than sent, and bounds what each allocates, in multiples of the
// body: a receiver parses many at once, within its memory limit. The bound
// is a property of the parser, not a speed: decoded into slices, the first
// of these allocated 182 MiB and kept most of it until the parse ended.
func TestParsingCostsAFewTimesTheBody(t *testing.T) {
	const size = 1 << 20
	fill := func(prefix, item, suffix string) string {
		n := (size - len(prefix) - len(suffix)) / (len(item) + 1)
		return prefix + strings.Repeat(item+",", n) + item + suffix
	}
	minimal := minimalDynatrace[:len(minimalDynatrace)-1] + ","
	guance := `{"timestamp":1,"df_status":"critical","df_event_id":"e","df_title":"t",`
	for _, tt := range []struct {
		name   string
		format problemhookv1alpha1.PayloadFormat
		body   string
		// times bounds what the parse allocates, in bodies.
		times int
	}{
		{"empty entities", problemhookv1alpha1.FormatDynatrace, fill(minimal+`"ImpactedEntities":[`, "{}", "]}"), 8},
		{"empty entities in a string", problemhookv1alpha1.FormatDynatrace, fill(minimal+`"ImpactedEntities":"[`, "{}", `]"}`), 16},
		{"empty v2 entities", problemhookv1alpha1.FormatDynatrace, fill(minimal+`"ProblemDetailsJSONv2":{"impactedEntities":[`, "{}", "]}}"), 8},
		{"empty v1 impacts", problemhookv1alpha1.FormatDynatrace, fill(minimal+`"ProblemDetailsJSON":{"rankedImpacts":[`, "{}", "]}}"), 8},
		{"empty tags", problemhookv1alpha1.FormatDynatrace, fill(minimal+`"ProblemDetailsJSONv2":{"entityTags":[`, "{}", "]}}"), 8},
		{"one-letter names", problemhookv1alpha1.FormatDynatrace, fill(minimal+`"ImpactedEntityNames":"`, "a", `"}`), 16},
		{"one-letter tags", problemhookv1alpha1.FormatDynatrace, fill(minimal+`"Tags":"`, "a", `"}`), 16},
		{"empty arrays", problemhookv1alpha1.FormatDynatrace, fill(minimal+`"x":[`, "[]", "]}"), 8},
		{"many members", problemhookv1alpha1.FormatDynatrace, manyMembers(size / 8), 8},
		{"many dimensions", problemhookv1alpha1.FormatGuance, guance + `"df_dimension_tags":` + strconv.Quote(manyMembers(size/8)) + "}", 16},
		// encoding/json's tokenizer, which checks every body for duplicate
		// keys and depth, allocates some 200 bytes for each string it
		// reads. That is garbage the moment it is made, which the collector
		// reclaims as the parse goes: it costs time, not memory kept.
		{"empty strings", problemhookv1alpha1.FormatDynatraceWorkflow, fill(`{"event.id":"1","event.status":"ACTIVE","event.name":"n","affected_entity_ids":[`, `""`, "]}"), 80},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(len(tt.body)).To(BeNumerically(">=", size*9/10))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			spec, err := payload.Parse(tt.format, []byte(tt.body))
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(spec)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d KiB body: allocated %.1f MiB, error: %v", len(tt.body)>>10, float64(allocated)/(1<<20), err)
			g.Expect(allocated).To(BeNumerically("<", tt.times*len(tt.body)))
		})
	}
}
