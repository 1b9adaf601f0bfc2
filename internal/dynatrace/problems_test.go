package dynatrace_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

// apiSample is a problem as the API returns it, with fields this client
// does not know.
const apiSample = `{
  "problemId": "-6150203450926486413_1669823466223V2",
  "displayId": "P-221194163",
  "title": "Response time degradation",
  "impactLevel": "SERVICES",
  "severityLevel": "PERFORMANCE",
  "status": "OPEN",
  "startTime": 1669823466223,
  "endTime": -1,
  "affectedEntities": [{"entityId": {"id": "SERVICE-5E8C3A10C47E52D9", "type": "SERVICE"}, "name": "checkout-service"}],
  "impactedEntities": [{"entityId": {"id": "SERVICE-5E8C3A10C47E52D9", "type": "SERVICE"}, "name": "checkout-service"}],
  "rootCauseEntity": {"entityId": {"id": "PROCESS_GROUP_INSTANCE-1", "type": "PROCESS_GROUP_INSTANCE"}, "name": "checkout-7f9"},
  "managementZones": [{"id": "1234", "name": "Shop"}],
  "entityTags": [{"context": "CONTEXTLESS", "key": "env", "value": "prod", "stringRepresentation": "env:prod"},
                 {"context": "CONTEXTLESS", "key": "frontend", "stringRepresentation": "frontend"}],
  "problemFilters": [{"id": "c21f969b", "name": "Default"}],
  "evidenceDetails": {"totalCount": 1, "details": [{
    "evidenceType": "EVENT", "displayName": "Response time degradation",
    "entity": {"entityId": {"id": "SERVICE-5E8C3A10C47E52D9", "type": "SERVICE"}, "name": "checkout-service"},
    "groupingEntity": {"entityId": {"id": "PROCESS_GROUP-1", "type": "PROCESS_GROUP"}, "name": "checkout"},
    "rootCauseRelevant": true, "startTime": 1669823400000, "eventId": "e1", "eventType": "SERVICE_RESPONSE_TIME_DEGRADED",
    "data": {"properties": []}}]},
  "impactAnalysis": {"impacts": [{"impactType": "SERVICE",
    "impactedEntity": {"entityId": {"id": "SERVICE-5E8C3A10C47E52D9", "type": "SERVICE"}, "name": "checkout-service"},
    "estimatedAffectedUsers": 42}]},
  "recentComments": {"comments": [{"id": "7", "createdAtTimestamp": 1669823500000, "authorName": "Jane",
    "content": "Looking", "context": "ui"}], "totalCount": 1},
  "linkedProblemInfo": null,
  "k8s.cluster.name": ["prod-eu"],
  "k8s.namespace.name": ["shop"],
  "somethingNew": {"the": "API grows"}
}`

func TestProblemDecodesAPIFields(t *testing.T) {
	g := NewWithT(t)
	var p dynatrace.Problem
	g.Expect(json.Unmarshal([]byte(apiSample), &p)).To(Succeed())
	service := dynatrace.EntityStub{EntityID: dynatrace.EntityID{ID: "SERVICE-5E8C3A10C47E52D9", Type: "SERVICE"}, Name: "checkout-service"}
	g.Expect(p).To(Equal(dynatrace.Problem{
		ProblemID:        "-6150203450926486413_1669823466223V2",
		DisplayID:        "P-221194163",
		Title:            "Response time degradation",
		ImpactLevel:      "SERVICES",
		SeverityLevel:    "PERFORMANCE",
		Status:           "OPEN",
		StartTime:        1669823466223,
		EndTime:          -1,
		AffectedEntities: []dynatrace.EntityStub{service},
		ImpactedEntities: []dynatrace.EntityStub{service},
		RootCauseEntity: &dynatrace.EntityStub{
			EntityID: dynatrace.EntityID{ID: "PROCESS_GROUP_INSTANCE-1", Type: "PROCESS_GROUP_INSTANCE"}, Name: "checkout-7f9",
		},
		ManagementZones: []dynatrace.ManagementZone{{ID: "1234", Name: "Shop"}},
		EntityTags: []dynatrace.EntityTag{
			{Context: "CONTEXTLESS", Key: "env", Value: "prod", StringRepresentation: "env:prod"},
			{Context: "CONTEXTLESS", Key: "frontend", StringRepresentation: "frontend"},
		},
		ProblemFilters: []dynatrace.ProblemFilter{{ID: "c21f969b", Name: "Default"}},
		EvidenceDetails: &dynatrace.EvidenceDetails{TotalCount: 1, Details: []dynatrace.Evidence{{
			EvidenceType: "EVENT", DisplayName: "Response time degradation", Entity: service,
			GroupingEntity: &dynatrace.EntityStub{
				EntityID: dynatrace.EntityID{ID: "PROCESS_GROUP-1", Type: "PROCESS_GROUP"}, Name: "checkout",
			},
			RootCauseRelevant: true, StartTime: 1669823400000, EventType: "SERVICE_RESPONSE_TIME_DEGRADED",
		}}},
		ImpactAnalysis: &dynatrace.ImpactAnalysis{Impacts: []dynatrace.Impact{{
			ImpactType: "SERVICE", ImpactedEntity: service, EstimatedAffectedUsers: 42,
		}}},
		RecentComments: &dynatrace.CommentList{TotalCount: 1, Comments: []dynatrace.Comment{{
			ID: "7", CreatedAtTimestamp: 1669823500000, AuthorName: "Jane", Content: "Looking", Context: "ui",
		}}},
		K8sClusterName:   []string{"prod-eu"},
		K8sNamespaceName: []string{"shop"},
	}))
}

func TestGetProblem(t *testing.T) {
	for _, envPath := range []string{"", "/e/abc123"} {
		t.Run("environment path "+envPath, func(t *testing.T) {
			g := NewWithT(t)
			s := newFake(t, dynatracetest.ServerOptions{EnvironmentPath: envPath})
			want := problem("P1", "ERROR", "SERVICES", time.Hour)
			want.EvidenceDetails = &dynatrace.EvidenceDetails{TotalCount: 1, Details: []dynatrace.Evidence{{
				EvidenceType: "METRIC", DisplayName: "Failure rate", Entity: want.AffectedEntities[0], RootCauseRelevant: true,
			}}}
			want.ImpactAnalysis = &dynatrace.ImpactAnalysis{Impacts: []dynatrace.Impact{{
				ImpactType: "SERVICE", ImpactedEntity: want.AffectedEntities[0], EstimatedAffectedUsers: 3,
			}}}
			want.RecentComments = &dynatrace.CommentList{Comments: []dynatrace.Comment{{ID: "1", Content: "seen"}}}
			s.AddProblem(want)
			c, _ := newClient(t, dynatrace.Options{URL: s.URL() + "/"})

			got, err := c.GetProblem(context.Background(), "P1")

			g.Expect(err).NotTo(HaveOccurred())
			want.RecentComments = nil // not asked for
			want.ImpactedEntities = []dynatrace.EntityStub{}
			want.ManagementZones = []dynatrace.ManagementZone{}
			want.EntityTags = []dynatrace.EntityTag{}
			want.ProblemFilters = []dynatrace.ProblemFilter{}
			g.Expect(got).To(Equal(&want))
			reqs := s.Requests()
			g.Expect(reqs).To(HaveLen(1))
			g.Expect(reqs[0].Method).To(Equal(http.MethodGet))
			g.Expect(reqs[0].Path).To(Equal(envPath + "/api/v2/problems/P1"))
			g.Expect(reqs[0].Query).To(Equal(url.Values{"fields": {"+evidenceDetails,+impactAnalysis"}}))
			g.Expect(reqs[0].Header.Get("Accept")).To(Equal("application/json"))
			g.Expect(reqs[0].Header.Get("User-Agent")).To(Equal("problemhook"))
			g.Expect(reqs[0].Header.Get("Content-Type")).To(BeEmpty())
		})
	}
}

func TestListProblemsSelects(t *testing.T) {
	s := newFake(t, dynatracetest.ServerOptions{})
	for _, p := range []dynatrace.Problem{
		problem("P1", "ERROR", "SERVICES", 30*time.Minute),
		closed(problem("P2", "AVAILABILITY", "APPLICATION", 3*time.Hour), 90*time.Minute),
		problem("P3", "PERFORMANCE", "INFRASTRUCTURE", 5*time.Hour),
		closed(problem("P4", "ERROR", "SERVICES", 3*24*time.Hour), 2*24*time.Hour),
		closed(problem("P5", "RESOURCE_CONTENTION", "INFRASTRUCTURE", 20*24*time.Hour), 10*24*time.Hour),
		problem("P6", "ERROR", "SERVICES", 40*24*time.Hour), // open, but neither starts nor ends in any frame below
	} {
		s.AddProblem(p)
	}
	c, _ := newClient(t, dynatrace.Options{URL: s.URL()})
	tests := []struct {
		name string
		opts dynatrace.ListOptions
		want []string
	}{
		{"default frame is the last 2 hours", dynatrace.ListOptions{}, []string{"P1", "P2"}},
		{"hour", dynatrace.ListOptions{From: "now-1h"}, []string{"P1"}},
		{"2 hours", dynatrace.ListOptions{From: "now-2h"}, []string{"P1", "P2"}},
		{"6 hours", dynatrace.ListOptions{From: "now-6h"}, []string{"P1", "P2", "P3"}},
		{"day", dynatrace.ListOptions{From: "now-1d"}, []string{"P1", "P2", "P3"}},
		{"week", dynatrace.ListOptions{From: "now-1w"}, []string{"P1", "P2", "P3", "P4"}},
		{"month", dynatrace.ListOptions{From: "now-30d"}, []string{"P1", "P2", "P3", "P4", "P5"}},
		{"ISO-8601", dynatrace.ListOptions{From: "2025-06-01T08:00:00Z"}, []string{"P1", "P2"}},
		{"epoch milliseconds", dynatrace.ListOptions{
			From: fmt.Sprint(ago(6 * time.Hour)), To: fmt.Sprint(ago(4 * time.Hour)),
		}, []string{"P3"}},
		{"frame in the past", dynatrace.ListOptions{From: "now-1w", To: "now-1d"}, []string{"P4"}},
		{"open", dynatrace.ListOptions{From: "now-30d", ProblemSelector: `status("open")`}, []string{"P1", "P3"}},
		{"closed", dynatrace.ListOptions{From: "now-30d", ProblemSelector: `status("closed")`}, []string{"P2", "P4", "P5"}},
		{"severity", dynatrace.ListOptions{From: "now-30d", ProblemSelector: `severityLevel("ERROR")`}, []string{"P1", "P4"}},
		{"one of two severities", dynatrace.ListOptions{
			From: "now-30d", ProblemSelector: `severityLevel("ERROR","AVAILABILITY")`,
		}, []string{"P1", "P2", "P4"}},
		{"impact", dynatrace.ListOptions{From: "now-30d", ProblemSelector: `impactLevel("INFRASTRUCTURE")`}, []string{"P3", "P5"}},
		{"criteria are ANDed", dynatrace.ListOptions{
			From: "now-30d", ProblemSelector: `status("open"),severityLevel("ERROR")`,
		}, []string{"P1"}},
		{"entity", dynatrace.ListOptions{From: "now-30d", EntitySelector: `entityId("SERVICE-P4")`}, []string{"P4"}},
		{"oldest first", dynatrace.ListOptions{From: "now-30d", Sort: "+startTime"}, []string{"P5", "P4", "P3", "P2", "P1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := c.ListProblems(context.Background(), tt.opts)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ids(got)).To(Equal(tt.want))
		})
	}
}

func TestListProblemsPages(t *testing.T) {
	g := NewWithT(t)
	s := newFake(t, dynatracetest.ServerOptions{EnvironmentPath: "/e/abc123"})
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("P%d", i)
		s.AddProblem(problem(id, "ERROR", "SERVICES", time.Duration(i+1)*time.Minute))
		want = append(want, id)
	}
	s.AddProblem(problem("OLD", "ERROR", "SERVICES", 5*time.Hour))
	c, _ := newClient(t, dynatrace.Options{URL: s.URL()})

	got, err := c.ListProblems(context.Background(), dynatrace.ListOptions{
		From: "now-1h", ProblemSelector: `status("open")`, Fields: []string{"recentComments"}, PageSize: 3,
	})

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids(got)).To(Equal(want))
	g.Expect(got[0].RecentComments).NotTo(BeNil())
	reqs := s.Requests()
	g.Expect(reqs).To(HaveLen(3))
	g.Expect(reqs[0].Query).To(Equal(url.Values{
		"from": {"now-1h"}, "problemSelector": {`status("open")`}, "fields": {"+recentComments"}, "pageSize": {"3"},
	}))
	for _, r := range reqs[1:] {
		g.Expect(r.Path).To(Equal("/e/abc123/api/v2/problems"))
		g.Expect(slices.Sorted(maps.Keys(r.Query))).To(Equal([]string{"fields", "nextPageKey"}))
		g.Expect(r.Query.Get("fields")).To(Equal("+recentComments"))
	}
	g.Expect(reqs[1].Query.Get("nextPageKey")).NotTo(Equal(reqs[2].Query.Get("nextPageKey")))

	t.Run("more pages than allowed", func(t *testing.T) {
		g := NewWithT(t)
		got, err := c.ListProblems(context.Background(), dynatrace.ListOptions{From: "now-1h", PageSize: 3, MaxPages: 2})
		g.Expect(err).To(MatchError(dynatrace.ErrPageLimit))
		g.Expect(ids(got)).To(Equal(want[:6]))
	})

	t.Run("a page larger than allowed", func(t *testing.T) {
		g := NewWithT(t)
		_, err := c.ListProblems(context.Background(), dynatrace.ListOptions{From: "now-1h", PageSize: 3, MaxResponseBytes: 512})
		g.Expect(err).To(MatchError(MatchRegexp(`^listing Dynatrace problems: GET http://127\.0\.0\.1:\d+/e/abc123/api/v2/problems: response larger than 512 bytes$`)))
	})
}

func TestComments(t *testing.T) {
	g := NewWithT(t)
	s := newFake(t, dynatracetest.ServerOptions{})
	p := problem("P1", "ERROR", "SERVICES", time.Hour)
	p.RecentComments = &dynatrace.CommentList{}
	for i := range 1001 {
		p.RecentComments.Comments = append(p.RecentComments.Comments, dynatrace.Comment{ID: fmt.Sprint(i), Content: fmt.Sprint("comment ", i)})
	}
	s.AddProblem(p)
	c, _ := newClient(t, dynatrace.Options{URL: s.URL()})
	ctx := context.Background()

	g.Expect(c.PostComment(ctx, "P1", dynatrace.CommentRequest{Message: "Sent to the incident tool", Context: "problemhook"})).To(Succeed())
	comments, err := c.Comments(ctx, "P1")

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(comments).To(HaveLen(1002))
	g.Expect(comments[0]).To(SatisfyAll(
		HaveField("ID", Not(BeEmpty())), HaveField("CreatedAtTimestamp", now.UnixMilli()),
		HaveField("AuthorName", "problemhook-test"), HaveField("Content", "Sent to the incident tool"),
		HaveField("Context", "problemhook"),
	))
	g.Expect(comments[1001].Content).To(Equal("comment 0"))
	reqs := s.Requests()[1:] // after the POST
	g.Expect(reqs).To(HaveLen(3))
	g.Expect(reqs[0].Query).To(Equal(url.Values{"pageSize": {"500"}}))
	for _, r := range reqs[1:] {
		g.Expect(r.Query).To(HaveLen(1))
		g.Expect(r.Query.Get("nextPageKey")).NotTo(BeEmpty())
	}

	t.Run("recent comments of a listed problem", func(t *testing.T) {
		g := NewWithT(t)
		got, err := c.ListProblems(ctx, dynatrace.ListOptions{Fields: []string{dynatrace.FieldRecentComments}})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(HaveLen(1))
		g.Expect(got[0].RecentComments.TotalCount).To(BeEquivalentTo(1002))
		g.Expect(got[0].RecentComments.Comments[0].Content).To(Equal("Sent to the incident tool"))
		g.Expect(got[0].EvidenceDetails).To(BeNil())
	})
}

func TestPostCommentSends(t *testing.T) {
	tests := []struct {
		name     string
		in       dynatrace.CommentRequest
		wantBody string
	}{
		{"with context", dynatrace.CommentRequest{Message: "Mobile number has been notified", Context: "problemhook"},
			`{"message":"Mobile number has been notified","context":"problemhook"}`},
		{"without context", dynatrace.CommentRequest{Message: "Calls made: 2"}, `{"message":"Calls made: 2"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s := newFake(t, dynatracetest.ServerOptions{})
			s.AddProblem(problem("P1", "ERROR", "SERVICES", time.Hour))
			c, _ := newClient(t, dynatrace.Options{URL: s.URL()})

			g.Expect(c.PostComment(context.Background(), "P1", tt.in)).To(Succeed())

			reqs := s.Requests()
			g.Expect(reqs).To(HaveLen(1))
			g.Expect(reqs[0].Method).To(Equal(http.MethodPost))
			g.Expect(reqs[0].Path).To(Equal("/api/v2/problems/P1/comments"))
			g.Expect(reqs[0].Header.Get("Content-Type")).To(Equal("application/json; charset=utf-8"))
			g.Expect(reqs[0].Header.Get("Accept")).To(Equal("application/json"))
			g.Expect(string(reqs[0].Body)).To(MatchJSON(tt.wantBody))
			g.Expect(s.Comments("P1")).To(ConsistOf(HaveField("Content", tt.in.Message)))
		})
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	get := func(id string) func(*dynatrace.Client) error {
		return func(c *dynatrace.Client) error { _, err := c.GetProblem(ctx, id); return err }
	}
	list := func(o dynatrace.ListOptions) func(*dynatrace.Client) error {
		return func(c *dynatrace.Client) error { _, err := c.ListProblems(ctx, o); return err }
	}
	comments := func(c *dynatrace.Client) error { _, err := c.Comments(ctx, "NOPE"); return err }
	post := func(id string) func(*dynatrace.Client) error {
		return func(c *dynatrace.Client) error {
			return c.PostComment(ctx, id, dynatrace.CommentRequest{Message: "hello"})
		}
	}
	tests := []struct {
		name       string
		token      string
		envPath    string // of the client's URL; the fake's is /e/abc123
		call       func(*dynatrace.Client) error
		wantStatus int
		wantText   string
	}{
		{"unknown token", unknownTok, "", get("P1"), http.StatusUnauthorized, "Token Authentication failed"},
		{"read without problems.read", writeOnly, "", get("P1"), http.StatusForbidden, "missing required scope problems.read"},
		{"comment without problems.write", readOnly, "", post("P1"), http.StatusForbidden, "missing required scope problems.write"},
		{"wrong environment", "", "/e/other", get("P1"), http.StatusNotFound, ""},
		{"unknown problem", "", "", get("NOPE"), http.StatusNotFound, `"NOPE" not found`},
		{"comments of an unknown problem", "", "", comments, http.StatusNotFound, `"NOPE" not found`},
		{"comment on an unknown problem", "", "", post("NOPE"), http.StatusNotFound, `"NOPE" not found`},
		{"page too large", "", "", list(dynatrace.ListOptions{PageSize: 501}), http.StatusBadRequest, "pageSize: must be between 1 and 500"},
		{"negative page size", "", "", list(dynatrace.ListOptions{PageSize: -1}), http.StatusBadRequest, "pageSize"},
		{"unsupported selector", "", "", list(dynatrace.ListOptions{ProblemSelector: `rootCause("x")`}), http.StatusBadRequest, "problemSelector"},
		{"bad status", "", "", list(dynatrace.ListOptions{ProblemSelector: `status("maybe")`}), http.StatusBadRequest, "problemSelector"},
		{"bad time", "", "", list(dynatrace.ListOptions{From: "yesterday"}), http.StatusBadRequest, "from:"},
		{"from after to", "", "", list(dynatrace.ListOptions{From: "now-1h", To: "now-2h"}), http.StatusBadRequest, "from:"},
		{"entity selector without type or id", "", "", list(dynatrace.ListOptions{EntitySelector: `entityName("x")`}), http.StatusBadRequest, "entitySelector"},
		{"unknown sort", "", "", list(dynatrace.ListOptions{Sort: "title"}), http.StatusBadRequest, "sort"},
		{"unknown field", "", "", list(dynatrace.ListOptions{Fields: []string{"everything"}}), http.StatusBadRequest, "fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s := newFake(t, dynatracetest.ServerOptions{EnvironmentPath: "/e/abc123"})
			s.AddProblem(problem("P1", "ERROR", "SERVICES", time.Hour))
			u := s.URL()
			if tt.envPath != "" {
				u = strings.TrimSuffix(u, "/e/abc123") + tt.envPath
			}
			c, waits := newClient(t, dynatrace.Options{URL: u, Token: tt.token})

			err := tt.call(c)

			apiErr := expectAPIError(g, err, tt.wantStatus)
			g.Expect(apiErr.Code).To(Equal(tt.wantStatus))
			g.Expect(err.Error()).To(ContainSubstring(tt.wantText))
			g.Expect(dynatrace.IsRetryable(err)).To(BeFalse())
			g.Expect(dynatrace.IsNotFound(err)).To(Equal(tt.wantStatus == http.StatusNotFound))
			g.Expect(s.Requests()).To(HaveLen(1), "not retried")
			g.Expect(*waits).To(BeEmpty())
			g.Expect(s.Comments("P1")).To(BeEmpty())
		})
	}
}

func TestProblemIDsAreEscaped(t *testing.T) {
	ctx := context.Background()
	for _, id := range []string{"../../../api/v2/problems", "a/b", "a?b#c", "%2e%2e", "..%2F", "-615_16V2 x+y"} {
		t.Run(id, func(t *testing.T) {
			g := NewWithT(t)
			s := newFake(t, dynatracetest.ServerOptions{EnvironmentPath: "/e/abc123"})
			s.AddProblem(problem(id, "ERROR", "SERVICES", time.Hour))
			c, _ := newClient(t, dynatrace.Options{URL: s.URL()})

			got, err := c.GetProblem(ctx, id)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.ProblemID).To(Equal(id))
			g.Expect(c.PostComment(ctx, id, dynatrace.CommentRequest{Message: "hi"})).To(Succeed())
			comments, err := c.Comments(ctx, id)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(comments).To(HaveLen(1))

			escaped := "/e/abc123/api/v2/problems/" + url.PathEscape(id)
			g.Expect(s.Requests()).To(HaveExactElements(
				HaveField("Path", escaped), HaveField("Path", escaped+"/comments"), HaveField("Path", escaped+"/comments")))
		})
	}

	for _, id := range []string{"", ".", ".."} {
		t.Run(fmt.Sprintf("refused %q", id), func(t *testing.T) {
			g := NewWithT(t)
			s := newFake(t, dynatracetest.ServerOptions{})
			c, _ := newClient(t, dynatrace.Options{URL: s.URL()})
			_, err := c.GetProblem(ctx, id)
			g.Expect(err).To(HaveOccurred())
			g.Expect(c.PostComment(ctx, id, dynatrace.CommentRequest{Message: "hi"})).NotTo(Succeed())
			_, err = c.Comments(ctx, id)
			g.Expect(err).To(HaveOccurred())
			g.Expect(s.Requests()).To(BeEmpty())
		})
	}
}

func TestPostCommentRefusesEmptyMessage(t *testing.T) {
	g := NewWithT(t)
	s := newFake(t, dynatracetest.ServerOptions{})
	c, _ := newClient(t, dynatrace.Options{URL: s.URL()})
	err := c.PostComment(context.Background(), "P1", dynatrace.CommentRequest{Message: " \n", Context: "x"})
	g.Expect(err).To(MatchError(ContainSubstring("message is empty")))
	g.Expect(errors.As(err, new(*dynatrace.APIError))).To(BeFalse())
	g.Expect(s.Requests()).To(BeEmpty())
}

func TestFindCommentStopsAtTheFirst(t *testing.T) {
	g := NewWithT(t)
	s := newFake(t, dynatracetest.ServerOptions{})
	p := problem("P1", "ERROR", "SERVICES", time.Hour)
	p.RecentComments = &dynatrace.CommentList{}
	for i := range 1001 {
		p.RecentComments.Comments = append(p.RecentComments.Comments, dynatrace.Comment{ID: fmt.Sprint(i), Content: fmt.Sprint("comment ", i)})
	}
	s.AddProblem(p)
	c, _ := newClient(t, dynatrace.Options{URL: s.URL()})
	ctx := context.Background()

	found, err := c.FindComment(ctx, "P1", func(cm *dynatrace.Comment) bool { return cm.Content == "comment 300" }) // on the second page, newest first

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(found).To(HaveField("ID", "300"))
	g.Expect(s.Requests()).To(HaveLen(2), "the third page is not read")

	t.Run("none", func(t *testing.T) {
		g := NewWithT(t)
		found, err := c.FindComment(ctx, "P1", func(cm *dynatrace.Comment) bool { return cm.Context == "problemhook" })
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(found).To(BeNil())
		g.Expect(s.Requests()).To(HaveLen(2 + 3))
	})
}
