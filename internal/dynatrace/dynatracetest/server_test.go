package dynatracetest_test

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

const (
	token    = "dt0c01.TEST.0123456789"
	readOnly = "dt0c01.READONLY.0123456789"
	base     = "/e/abc123/api/v2"
)

// answer is what the fake answered.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    struct {
		Code                 int    `json:"code"`
		Message              string `json:"message"`
		ConstraintViolations []struct {
			Path              string `json:"path"`
			ParameterLocation string `json:"parameterLocation"`
		} `json:"constraintViolations"`
	}
}

func newServer(t *testing.T) *dynatracetest.Server {
	t.Helper()
	s := dynatracetest.NewServer(dynatracetest.ServerOptions{EnvironmentPath: "/e/abc123/"})
	t.Cleanup(s.Close)
	s.AddToken(token, dynatracetest.ScopeRead, dynatracetest.ScopeWrite)
	s.AddToken(readOnly, dynatracetest.ScopeRead)
	s.AddProblem(dynatrace.Problem{
		ProblemID: "P1", DisplayID: "P-1", Status: "OPEN", SeverityLevel: "ERROR", ImpactLevel: "SERVICES",
		StartTime: time.Now().Add(-time.Hour).UnixMilli(), EndTime: -1,
		EvidenceDetails: &dynatrace.EvidenceDetails{TotalCount: 0, Details: []dynatrace.Evidence{}},
	})
	s.AddProblem(dynatrace.Problem{
		ProblemID: "P2", DisplayID: "P-2", Status: "OPEN", SeverityLevel: "ERROR", ImpactLevel: "SERVICES",
		StartTime: time.Now().Add(-time.Minute).UnixMilli(), EndTime: -1,
	})
	return s
}

// call sends a request to the server at its root with the token and an
// Accept header; header overrides those ("" removes one).
func call(t *testing.T, s *dynatracetest.Server, method, target string, header map[string]string, body string) answer {
	t.Helper()
	root := strings.TrimSuffix(s.URL(), "/e/abc123")
	req, err := http.NewRequest(method, root+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Api-Token "+token)
	req.Header.Set("Accept", "application/json")
	for k, v := range header {
		req.Header.Del(k)
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	a := answer{status: resp.StatusCode, header: resp.Header}
	if a.body, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		var wrapper struct {
			Error *json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(a.body, &wrapper); err != nil || wrapper.Error == nil {
			t.Fatalf("error body %q is not a Dynatrace error: %v", a.body, err)
		}
		if err := json.Unmarshal(*wrapper.Error, &a.err); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func TestServerRefuses(t *testing.T) {
	jsonType := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name          string
		method        string
		target        string
		header        map[string]string
		body          string
		wantStatus    int
		wantMessage   string
		wantViolation string
	}{
		{name: "SaaS path on a Managed environment", method: "GET", target: "/api/v2/problems", wantStatus: 404},
		{name: "other environment", method: "GET", target: "/e/other/api/v2/problems", wantStatus: 404},
		{name: "unknown path", method: "GET", target: base + "/events", wantStatus: 404},
		{name: "trailing slash", method: "GET", target: base + "/problems/", wantStatus: 404},
		{name: "path deeper than any endpoint", method: "GET", target: base + "/problems/P1/comments/1", wantStatus: 404},
		{name: "unknown problem", method: "GET", target: base + "/problems/P9", wantStatus: 404, wantMessage: `"P9" not found`},
		{name: "comments of an unknown problem", method: "GET", target: base + "/problems/P9/comments", wantStatus: 404},
		{name: "comment on an unknown problem", method: "POST", target: base + "/problems/P9/comments",
			header: jsonType, body: `{"message":"x"}`, wantStatus: 404},
		{name: "DELETE a problem", method: "DELETE", target: base + "/problems/P1", wantStatus: 405},
		{name: "POST the list", method: "POST", target: base + "/problems", header: jsonType, body: "{}", wantStatus: 405},
		{name: "PUT a comment", method: "PUT", target: base + "/problems/P1/comments", wantStatus: 405, wantMessage: "allowed: GET, POST"},
		{name: "no Authorization", method: "GET", target: base + "/problems",
			header: map[string]string{"Authorization": ""}, wantStatus: 401, wantMessage: "Missing authorization parameter."},
		{name: "bearer token", method: "GET", target: base + "/problems",
			header: map[string]string{"Authorization": "Bearer " + token}, wantStatus: 401},
		{name: "lower-case scheme", method: "GET", target: base + "/problems",
			header: map[string]string{"Authorization": "api-token " + token}, wantStatus: 401},
		{name: "unknown token", method: "GET", target: base + "/problems",
			header: map[string]string{"Authorization": "Api-Token dt0c01.OTHER"}, wantStatus: 401},
		{name: "comment without problems.write", method: "POST", target: base + "/problems/P1/comments",
			header: map[string]string{"Authorization": "Api-Token " + readOnly, "Content-Type": "application/json"},
			body:   `{"message":"x"}`, wantStatus: 403, wantMessage: "Token is missing required scope problems.write"},
		{name: "HTML only", method: "GET", target: base + "/problems", header: map[string]string{"Accept": "text/html"}, wantStatus: 406},
		{name: "comment as text", method: "POST", target: base + "/problems/P1/comments",
			header: map[string]string{"Content-Type": "text/plain"}, body: `{"message":"x"}`, wantStatus: 400, wantViolation: "Content-Type"},
		{name: "comment without Content-Type", method: "POST", target: base + "/problems/P1/comments",
			body: `{"message":"x"}`, wantStatus: 400, wantViolation: "Content-Type"},
		{name: "comment in Latin-1", method: "POST", target: base + "/problems/P1/comments",
			header: map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}, body: `{"message":"x"}`,
			wantStatus: 400, wantViolation: "Content-Type"},
		{name: "comment not JSON", method: "POST", target: base + "/problems/P1/comments",
			header: jsonType, body: `message=x`, wantStatus: 400, wantMessage: "Could not map JSON"},
		{name: "comment not an object", method: "POST", target: base + "/problems/P1/comments",
			header: jsonType, body: `["x"]`, wantStatus: 400, wantMessage: "Could not map JSON"},
		{name: "comment in the v1 shape", method: "POST", target: base + "/problems/P1/comments",
			header: jsonType, body: `{"comment":"x","user":"me","context":"y"}`, wantStatus: 400, wantViolation: "comment"},
		{name: "comment with an unknown field", method: "POST", target: base + "/problems/P1/comments",
			header: jsonType, body: `{"message":"x","author":"me"}`, wantStatus: 400, wantViolation: "author"},
		{name: "comment without message", method: "POST", target: base + "/problems/P1/comments",
			header: jsonType, body: `{"context":"x"}`, wantStatus: 400, wantViolation: "message"},
		{name: "null message", method: "POST", target: base + "/problems/P1/comments",
			header: jsonType, body: `{"message":null}`, wantStatus: 400, wantViolation: "message"},
		{name: "empty message", method: "POST", target: base + "/problems/P1/comments",
			header: jsonType, body: `{"message":"  "}`, wantStatus: 400, wantViolation: "message"},
		{name: "message not a string", method: "POST", target: base + "/problems/P1/comments",
			header: jsonType, body: `{"message":5}`, wantStatus: 400, wantViolation: "message"},
		{name: "context not a string", method: "POST", target: base + "/problems/P1/comments",
			header: jsonType, body: `{"message":"x","context":{}}`, wantStatus: 400, wantViolation: "context"},
		{name: "unknown field of a problem", method: "GET", target: base + "/problems/P1?fields=%2Bcomments", wantStatus: 400, wantViolation: "fields"},
		{name: "unescaped + of a field", method: "GET", target: base + "/problems/P1?fields=+evidenceDetails", wantStatus: 400, wantViolation: "fields"},
		{name: "unknown parameter", method: "GET", target: base + "/problems/P1?from=now-1h", wantStatus: 400, wantViolation: "from"},
		{name: "repeated parameter", method: "GET", target: base + "/problems?from=now-1h&from=now-2h", wantStatus: 400, wantViolation: "from"},
		{name: "page key with other parameters", method: "GET", target: base + "/problems?nextPageKey=abc&from=now-1h&fields=%2BimpactAnalysis",
			wantStatus: 400, wantViolation: "from"},
		{name: "unknown page key", method: "GET", target: base + "/problems?nextPageKey=abc", wantStatus: 400, wantViolation: "nextPageKey"},
		{name: "page size 0", method: "GET", target: base + "/problems?pageSize=0", wantStatus: 400, wantViolation: "pageSize"},
		{name: "page size 501", method: "GET", target: base + "/problems?pageSize=501", wantStatus: 400, wantViolation: "pageSize"},
		{name: "page size not a number", method: "GET", target: base + "/problems?pageSize=ten", wantStatus: 400, wantViolation: "pageSize"},
		{name: "comments page size 501", method: "GET", target: base + "/problems/P1/comments?pageSize=501", wantStatus: 400, wantViolation: "pageSize"},
		{name: "unknown unit", method: "GET", target: base + "/problems?from=now-1x", wantStatus: 400, wantViolation: "from"},
		{name: "alignment", method: "GET", target: base + "/problems?from=now-1d%2Fd", wantStatus: 400, wantViolation: "from"},
		{name: "v1 relative time", method: "GET", target: base + "/problems?from=hour", wantStatus: 400, wantViolation: "from"},
		{name: "bad selector", method: "GET", target: base + "/problems?problemSelector=status%28%22open%22", wantStatus: 400, wantViolation: "problemSelector"},
		{name: "unsupported selector", method: "GET", target: base + "/problems?problemSelector=underMaintenance%28true%29", wantStatus: 400, wantViolation: "problemSelector"},
		{name: "unknown severity", method: "GET", target: base + "/problems?problemSelector=severityLevel%28%22FATAL%22%29", wantStatus: 400, wantViolation: "problemSelector"},
		{name: "unknown impact", method: "GET", target: base + "/problems?problemSelector=impactLevel%28%22SERVICE%22%29", wantStatus: 400, wantViolation: "problemSelector"},
		{name: "unsupported entity selector", method: "GET", target: base + "/problems?entitySelector=tag%28%22env%22%29", wantStatus: 400, wantViolation: "entitySelector"},
		{name: "unknown sort", method: "GET", target: base + "/problems?sort=title", wantStatus: 400, wantViolation: "sort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s := newServer(t)

			a := call(t, s, tt.method, tt.target, tt.header, tt.body)

			g.Expect(a.status).To(Equal(tt.wantStatus), "%s", a.body)
			g.Expect(a.header.Get("Content-Type")).To(HavePrefix("application/json"))
			g.Expect(a.err.Code).To(Equal(tt.wantStatus))
			g.Expect(a.err.Message).NotTo(BeEmpty())
			g.Expect(a.err.Message).To(ContainSubstring(tt.wantMessage))
			if tt.wantViolation != "" {
				g.Expect(a.err.ConstraintViolations).To(ContainElement(HaveField("Path", tt.wantViolation)))
			}
			g.Expect(s.Comments("P1")).To(BeEmpty())
			g.Expect(s.Requests()).To(HaveLen(1))
		})
	}
}

func TestServerAccepts(t *testing.T) {
	jsonType := map[string]string{"Content-Type": "application/json;charset=UTF-8"}
	tests := []struct {
		name       string
		method     string
		target     string
		header     map[string]string
		body       string
		wantStatus int
	}{
		{"list", "GET", base + "/problems", nil, "", 200},
		{"every way to give a time", "GET", base + "/problems?from=2025-06-01T08:00:00.000%2B02:00&to=1900000000000", nil, "", 200},
		{"largest page", "GET", base + "/problems?pageSize=500", nil, "", 200},
		{"selectors", "GET", base + "/problems?problemSelector=status%28%22OPEN%22%29%2CseverityLevel%28%22ERROR%22%2C%22AVAILABILITY%22%29" +
			"&entitySelector=type%28%22SERVICE%22%29", nil, "", 200},
		{"fields without +", "GET", base + "/problems/P1?fields=evidenceDetails,impactAnalysis", nil, "", 200},
		{"any Accept", "GET", base + "/problems/P1", map[string]string{"Accept": "*/*"}, "", 200},
		{"no Accept", "GET", base + "/problems/P1", map[string]string{"Accept": ""}, "", 200},
		{"comment", "POST", base + "/problems/P1/comments", jsonType, `{"message":"x","context":null}`, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			a := call(t, newServer(t), tt.method, tt.target, tt.header, tt.body)
			g.Expect(a.status).To(Equal(tt.wantStatus), "%s", a.body)
		})
	}
}

func TestServerAnswersOnlyTheFieldsAskedFor(t *testing.T) {
	optional := []string{"evidenceDetails", "impactAnalysis", "recentComments"}
	tests := []struct {
		query string
		want  []string
	}{
		{"", nil},
		{"?fields=%2BevidenceDetails", []string{"evidenceDetails"}},
		{"?fields=%2BimpactAnalysis,%2BrecentComments", []string{"impactAnalysis", "recentComments"}},
		{"?fields=%2BevidenceDetails,%2BimpactAnalysis,%2BrecentComments", optional},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			g := NewWithT(t)
			s := newServer(t)

			one := call(t, s, "GET", base+"/problems/P1"+tt.query, nil, "")
			list := call(t, s, "GET", base+"/problems"+tt.query, nil, "")

			var problem map[string]json.RawMessage
			g.Expect(json.Unmarshal(one.body, &problem)).To(Succeed())
			var page struct {
				Problems []map[string]json.RawMessage `json:"problems"`
			}
			g.Expect(json.Unmarshal(list.body, &page)).To(Succeed())
			g.Expect(page.Problems).To(HaveLen(2))
			for _, p := range append(page.Problems, problem) {
				g.Expect(p).To(HaveKey("problemId"))
				g.Expect(p).To(HaveKeyWithValue("affectedEntities", BeEquivalentTo("[]")))
				g.Expect(p).To(HaveKeyWithValue("rootCauseEntity", BeEquivalentTo("null")))
				for _, field := range optional {
					if slices.Contains(tt.want, field) {
						g.Expect(p).To(HaveKey(field))
					} else {
						g.Expect(p).NotTo(HaveKey(field))
					}
				}
			}
		})
	}
}

func TestServerPages(t *testing.T) {
	g := NewWithT(t)
	s := newServer(t)
	for range 3 {
		g.Expect(call(t, s, "POST", base+"/problems/P1/comments", map[string]string{"Content-Type": "application/json"},
			`{"message":"x"}`).status).To(Equal(201))
	}
	var problems struct {
		TotalCount  int     `json:"totalCount"`
		NextPageKey *string `json:"nextPageKey"`
	}
	g.Expect(json.Unmarshal(call(t, s, "GET", base+"/problems?pageSize=1", nil, "").body, &problems)).To(Succeed())
	g.Expect(problems.TotalCount).To(Equal(2))
	g.Expect(problems.NextPageKey).NotTo(BeNil())
	key := *problems.NextPageKey

	g.Expect(call(t, s, "GET", base+"/problems?nextPageKey="+key+"&fields=%2BrecentComments", nil, "").status).To(Equal(200))
	g.Expect(call(t, s, "GET", base+"/problems?nextPageKey="+key, nil, "").status).To(Equal(200), "a key may be used again")
	g.Expect(call(t, s, "GET", base+"/problems?nextPageKey="+key+"&pageSize=1", nil, "").status).To(Equal(400))
	g.Expect(call(t, s, "GET", base+"/problems/P1/comments?nextPageKey="+key, nil, "").status).To(Equal(400), "key of another listing")

	var comments struct {
		TotalCount  int                 `json:"totalCount"`
		NextPageKey *string             `json:"nextPageKey"`
		Comments    []dynatrace.Comment `json:"comments"`
	}
	g.Expect(json.Unmarshal(call(t, s, "GET", base+"/problems/P1/comments?pageSize=2", nil, "").body, &comments)).To(Succeed())
	g.Expect(comments.TotalCount).To(Equal(3))
	g.Expect(comments.Comments).To(HaveLen(2))
	g.Expect(comments.NextPageKey).NotTo(BeNil())
	g.Expect(call(t, s, "GET", base+"/problems/P2/comments?nextPageKey="+*comments.NextPageKey, nil, "").status).
		To(Equal(400), "key of another problem's comments")
	last := call(t, s, "GET", base+"/problems/P1/comments?nextPageKey="+*comments.NextPageKey, nil, "")
	g.Expect(json.Unmarshal(last.body, &comments)).To(Succeed())
	g.Expect(comments.Comments).To(HaveLen(1))
	g.Expect(comments.NextPageKey).To(BeNil())
}

func TestServerFailNext(t *testing.T) {
	g := NewWithT(t)
	s := newServer(t)
	s.FailNext(http.MethodPost, "/comments", 2, http.StatusServiceUnavailable, "5")
	post := func() answer {
		return call(t, s, "POST", base+"/problems/P1/comments", map[string]string{"Content-Type": "application/json"}, `{"message":"x"}`)
	}

	for range 2 {
		a := post()
		g.Expect(a.status).To(Equal(503))
		g.Expect(a.err.Code).To(Equal(503))
		g.Expect(a.header.Get("Retry-After")).To(Equal("5"))
		g.Expect(call(t, s, "GET", base+"/problems/P1/comments", nil, "").status).To(Equal(200), "other requests pass")
	}
	g.Expect(post().status).To(Equal(201))
	g.Expect(s.Comments("P1")).To(HaveLen(1))
	reqs := s.Requests()
	g.Expect(reqs).To(HaveLen(5))
	g.Expect(slices.Collect(maps.Keys(reqs[0].Header))).NotTo(ContainElement("Authorization"))
}

func TestServerHandler(t *testing.T) {
	g := NewWithT(t)
	s := newServer(t)
	g.Expect(s.CAPEM()).To(BeNil())
	g.Expect(s.URL()).To(HaveSuffix("/e/abc123"))
	req := httptest.NewRequest(http.MethodGet, base+"/problems/P1", nil)
	req.Header.Set("Authorization", "Api-Token "+token)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	g.Expect(rec.Code).To(Equal(200), rec.Body.String())
}
