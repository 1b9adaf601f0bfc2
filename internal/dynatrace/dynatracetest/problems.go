package dynatracetest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/problemhook/problemhook/internal/dynatrace"
)

const (
	defaultProblemsPageSize = 50
	defaultCommentsPageSize = 10
	maxPageSize             = 500
	// recentComments is how many comments a problem's recentComments holds.
	recentComments = 10
)

// problemList is the answer of GET /problems.
type problemList struct {
	TotalCount  int                 `json:"totalCount"`
	PageSize    int                 `json:"pageSize"`
	NextPageKey *string             `json:"nextPageKey"`
	Problems    []dynatrace.Problem `json:"problems"`
}

// commentList is the answer of GET /problems/{id}/comments.
type commentList struct {
	TotalCount  int                 `json:"totalCount"`
	PageSize    int                 `json:"pageSize"`
	NextPageKey *string             `json:"nextPageKey"`
	Comments    []dynatrace.Comment `json:"comments"`
}

// cursor is what a nextPageKey stands for: the rest of a listing, as it was
// when its first page was asked for.
type cursor struct {
	// problemID is the problem whose comments are listed; empty for problems.
	problemID  string
	problemIDs []string
	comments   []dynatrace.Comment
	offset     int
	size       int
}

func (c *cursor) total() int {
	if c.problemID != "" {
		return len(c.comments)
	}
	return len(c.problemIDs)
}

// page returns the bounds of the cursor's page and the key of the next one.
func (s *Server) page(c *cursor) (start, end int, next *string) {
	start, end = c.offset, min(c.offset+c.size, c.total())
	if end < c.total() {
		if len(s.cursors) >= maxCursors {
			clear(s.cursors)
		}
		key := rand.Text()
		rest := *c
		rest.offset = end
		s.cursors[key] = &rest
		next = &key
	}
	return start, end, next
}

// resume returns the cursor of a nextPageKey, which must have been given
// alone (but for the parameters in also) for the same listing.
func (s *Server) resume(req *apiRequest, also ...string) (*cursor, *apiError) {
	var violations []violation
	for _, name := range slices.Sorted(maps.Keys(req.query)) {
		if name != "nextPageKey" && !slices.Contains(also, name) {
			violations = append(violations, queryViolation(name, "must not be combined with nextPageKey"))
		}
	}
	if len(violations) > 0 {
		return nil, badRequest("Constraints violated.", violations...)
	}
	c, ok := s.cursors[req.query.Get("nextPageKey")]
	if !ok || c.problemID != req.problemID {
		return nil, badRequest("Constraints violated.", queryViolation("nextPageKey", "is not a valid page key"))
	}
	return c, nil
}

func (s *Server) listProblems(req *apiRequest) (int, any) {
	fields, e := parseFields(req.query)
	if e != nil {
		return e.Code, e
	}
	var c *cursor
	if req.query.Has("nextPageKey") {
		if c, e = s.resume(req, "fields"); e != nil {
			return e.Code, e
		}
	} else {
		if c, e = s.firstProblemsPage(req); e != nil {
			return e.Code, e
		}
	}
	start, end, next := s.page(c)
	out := problemList{TotalCount: c.total(), PageSize: c.size, NextPageKey: next, Problems: []dynatrace.Problem{}}
	for _, id := range c.problemIDs[start:end] {
		out.Problems = append(out.Problems, s.view(s.problems[id], fields))
	}
	return http.StatusOK, out
}

// firstProblemsPage selects and sorts the problems a listing returns.
func (s *Server) firstProblemsPage(req *apiRequest) (*cursor, *apiError) {
	size, e := pageSize(req.query.Get("pageSize"), defaultProblemsPageSize)
	if e != nil {
		return nil, e
	}
	match, e := s.problemFilter(req.query)
	if e != nil {
		return nil, e
	}
	compare, e := parseSort(req.query.Get("sort"))
	if e != nil {
		return nil, e
	}
	var ids []string
	for _, id := range s.order {
		if match(s.problems[id]) {
			ids = append(ids, id)
		}
	}
	slices.SortStableFunc(ids, func(a, b string) int { return compare(s.problems[a], s.problems[b]) })
	return &cursor{problemIDs: ids, size: size}, nil
}

func (s *Server) getProblem(req *apiRequest) (int, any) {
	fields, e := parseFields(req.query)
	if e != nil {
		return e.Code, e
	}
	p, ok := s.problems[req.problemID]
	if !ok {
		return problemNotFound(req.problemID)
	}
	return http.StatusOK, s.view(p, fields)
}

func problemNotFound(id string) (int, any) {
	return http.StatusNotFound, &apiError{Code: http.StatusNotFound, Message: fmt.Sprintf("Problem %q not found", id)}
}

func (s *Server) listComments(req *apiRequest) (int, any) {
	if _, ok := s.problems[req.problemID]; !ok {
		return problemNotFound(req.problemID)
	}
	var c *cursor
	var e *apiError
	if req.query.Has("nextPageKey") {
		c, e = s.resume(req)
	} else {
		c = &cursor{problemID: req.problemID, comments: s.newestFirst(req.problemID)}
		c.size, e = pageSize(req.query.Get("pageSize"), defaultCommentsPageSize)
	}
	if e != nil {
		return e.Code, e
	}
	start, end, next := s.page(c)
	return http.StatusOK, commentList{TotalCount: c.total(), PageSize: c.size, NextPageKey: next, Comments: c.comments[start:end]}
}

func (s *Server) newestFirst(problemID string) []dynatrace.Comment {
	comments := append([]dynatrace.Comment{}, s.comments[problemID]...)
	slices.Reverse(comments)
	return comments
}

func (s *Server) postComment(req *apiRequest) (int, any) {
	mediaType, params, err := mime.ParseMediaType(req.header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" || params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8") {
		return http.StatusBadRequest, badRequest("Content-Type must be application/json",
			violation{Path: "Content-Type", Message: "must be application/json", ParameterLocation: "HEADER"})
	}
	in, e := parseComment(req.body)
	if e != nil {
		return e.Code, e
	}
	if _, ok := s.problems[req.problemID]; !ok {
		return problemNotFound(req.problemID)
	}
	s.seq++
	now := s.now().UnixMilli()
	s.comments[req.problemID] = append(s.comments[req.problemID], dynatrace.Comment{
		ID:                 fmt.Sprintf("%d_%d", now, s.seq),
		CreatedAtTimestamp: now,
		AuthorName:         AuthorName,
		Content:            in.Message,
		Context:            in.Context,
	})
	return http.StatusCreated, nil
}

// parseComment reads a comment body as Dynatrace does: a JSON object with a
// non-empty string message, an optional string context, and nothing else.
func parseComment(body []byte) (*dynatrace.CommentRequest, *apiError) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return nil, badRequest("Could not map JSON: the body must be a JSON object")
	}
	var in dynatrace.CommentRequest
	var violations []violation
	messageIsString := false
	for _, name := range slices.Sorted(maps.Keys(members)) {
		raw := members[name]
		switch name {
		case "message":
			if string(raw) == "null" {
				break
			}
			if json.Unmarshal(raw, &in.Message) != nil {
				violations = append(violations, bodyViolation(name, "must be a string"))
			} else {
				messageIsString = true
			}
		case "context":
			if string(raw) != "null" && json.Unmarshal(raw, &in.Context) != nil {
				violations = append(violations, bodyViolation(name, "must be a string"))
			}
		default:
			violations = append(violations, bodyViolation(name, "unknown field"))
		}
	}
	if raw, ok := members["message"]; !ok || string(raw) == "null" {
		violations = append(violations, bodyViolation("message", "must not be null"))
	} else if messageIsString && strings.TrimSpace(in.Message) == "" {
		violations = append(violations, bodyViolation("message", "must not be empty"))
	}
	if len(violations) > 0 {
		return nil, badRequest("Constraints violated.", violations...)
	}
	return &in, nil
}

// view is p as an answer shows it: with the optional fields asked for only,
// and empty lists rather than null.
func (s *Server) view(p dynatrace.Problem, f fieldSet) dynatrace.Problem {
	if !f.evidenceDetails {
		p.EvidenceDetails = nil
	} else if p.EvidenceDetails == nil {
		p.EvidenceDetails = &dynatrace.EvidenceDetails{Details: []dynatrace.Evidence{}}
	}
	if !f.impactAnalysis {
		p.ImpactAnalysis = nil
	} else if p.ImpactAnalysis == nil {
		p.ImpactAnalysis = &dynatrace.ImpactAnalysis{Impacts: []dynatrace.Impact{}}
	}
	if f.recentComments {
		all := s.newestFirst(p.ProblemID)
		p.RecentComments = &dynatrace.CommentList{TotalCount: int64(len(all)), Comments: all[:min(len(all), recentComments)]}
	}
	p.AffectedEntities = nonNil(p.AffectedEntities)
	p.ImpactedEntities = nonNil(p.ImpactedEntities)
	p.ManagementZones = nonNil(p.ManagementZones)
	p.EntityTags = nonNil(p.EntityTags)
	p.ProblemFilters = nonNil(p.ProblemFilters)
	return p
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// fieldSet are the optional fields asked for.
type fieldSet struct {
	evidenceDetails, impactAnalysis, recentComments bool
}

// parseFields reads the fields parameter: a comma-separated list of optional
// fields, each with or without "+". A "+" the client forgot to escape
// arrives as a space and is refused.
func parseFields(query url.Values) (fieldSet, *apiError) {
	var f fieldSet
	raw := query.Get("fields")
	if raw == "" {
		return f, nil
	}
	for name := range strings.SplitSeq(raw, ",") {
		switch strings.TrimPrefix(name, "+") {
		case dynatrace.FieldEvidenceDetails:
			f.evidenceDetails = true
		case dynatrace.FieldImpactAnalysis:
			f.impactAnalysis = true
		case dynatrace.FieldRecentComments:
			f.recentComments = true
		default:
			return f, badRequest("Constraints violated.", queryViolation("fields",
				fmt.Sprintf("unknown field %q; allowed: +evidenceDetails, +impactAnalysis, +recentComments", name)))
		}
	}
	return f, nil
}

// pageSize reads a pageSize parameter: 1 to 500, def when absent.
func pageSize(raw string, def int) (int, *apiError) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, badRequest("Constraints violated.", queryViolation("pageSize", fmt.Sprintf("must be between 1 and %d", maxPageSize)))
	}
	return n, nil
}
