package dynatrace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
)

const (
	// DefaultMaxPages is the default number of pages a listing reads.
	DefaultMaxPages = 50
	// MaxPageSize is the largest page of problems, or of comments, the API
	// returns; asking for it keeps the number of calls low.
	MaxPageSize = 500
)

// Optional fields of a problem, for ListOptions.Fields.
const (
	FieldEvidenceDetails = "evidenceDetails"
	FieldImpactAnalysis  = "impactAnalysis"
	FieldRecentComments  = "recentComments"
)

// Problem is a problem as the Problems API v2 returns it. Fields the API adds
// later are ignored, and each list keeps at most the items problemhook can
// use (see Truncated).
type Problem struct {
	// ProblemID is the internal id, the one the API takes.
	ProblemID string `json:"problemId"`
	// DisplayID is the id shown in the UI, e.g. "P-221194163".
	DisplayID string `json:"displayId"`
	// Title is the problem's title.
	Title string `json:"title"`
	// ImpactLevel is APPLICATION, SERVICES, INFRASTRUCTURE or ENVIRONMENT.
	ImpactLevel string `json:"impactLevel"`
	// SeverityLevel is AVAILABILITY, ERROR, PERFORMANCE, RESOURCE_CONTENTION,
	// CUSTOM_ALERT or MONITORING_UNAVAILABLE.
	SeverityLevel string `json:"severityLevel"`
	// Status is OPEN or CLOSED.
	Status string `json:"status"`
	// StartTime is when the problem started, in epoch milliseconds.
	StartTime int64 `json:"startTime"`
	// EndTime is when the problem ended, in epoch milliseconds; -1 while open.
	EndTime int64 `json:"endTime"`
	// AffectedEntities are the entities the problem affects.
	AffectedEntities []EntityStub `json:"affectedEntities"`
	// ImpactedEntities are the entities the problem impacts.
	ImpactedEntities []EntityStub `json:"impactedEntities"`
	// RootCauseEntity is the root cause, when Dynatrace found one.
	RootCauseEntity *EntityStub `json:"rootCauseEntity"`
	// ManagementZones are the management zones of the problem.
	ManagementZones []ManagementZone `json:"managementZones"`
	// EntityTags are the tags of the affected entities.
	EntityTags []EntityTag `json:"entityTags"`
	// ProblemFilters are the alerting profiles the problem matches.
	ProblemFilters []ProblemFilter `json:"problemFilters"`
	// EvidenceDetails is present when asked for with FieldEvidenceDetails.
	EvidenceDetails *EvidenceDetails `json:"evidenceDetails,omitempty"`
	// ImpactAnalysis is present when asked for with FieldImpactAnalysis.
	ImpactAnalysis *ImpactAnalysis `json:"impactAnalysis,omitempty"`
	// RecentComments is present when asked for with FieldRecentComments.
	RecentComments *CommentList `json:"recentComments,omitempty"`
	// K8sClusterName names the Kubernetes clusters of the problem, when known.
	K8sClusterName []string `json:"k8s.cluster.name,omitempty"`
	// K8sClusterUID holds the uids of those clusters, when known.
	K8sClusterUID []string `json:"k8s.cluster.uid,omitempty"`
	// K8sNamespaceName names the Kubernetes namespaces of the problem, when known.
	K8sNamespaceName []string `json:"k8s.namespace.name,omitempty"`
	// Truncated says that a list of the answer held more items than the
	// client keeps: it kept the first ones. Entities, tags and zones are
	// kept up to a ProblemEvent's bounds.
	Truncated bool `json:"-"`
}

// EntityStub names a monitored entity.
type EntityStub struct {
	// EntityID identifies the entity.
	EntityID EntityID `json:"entityId"`
	// Name is the entity's name.
	Name string `json:"name"`
}

// EntityID identifies a monitored entity.
type EntityID struct {
	// ID is the entity id, e.g. "HOST-0123456789ABCDEF".
	ID string `json:"id"`
	// Type is the entity type, e.g. "HOST".
	Type string `json:"type"`
}

// ManagementZone is a management zone of a problem.
type ManagementZone struct {
	// ID is the zone's id.
	ID string `json:"id"`
	// Name is the zone's name.
	Name string `json:"name"`
}

// EntityTag is a tag of an affected entity.
type EntityTag struct {
	// Context is where the tag comes from, e.g. CONTEXTLESS or KUBERNETES.
	Context string `json:"context"`
	// Key is the tag's key.
	Key string `json:"key"`
	// Value is the tag's value; empty for a key-only tag.
	Value string `json:"value,omitempty"`
	// StringRepresentation is the tag as text, e.g. "env:prod".
	StringRepresentation string `json:"stringRepresentation"`
}

// ProblemFilter is an alerting profile a problem matches.
type ProblemFilter struct {
	// ID is the profile's id.
	ID string `json:"id"`
	// Name is the profile's name.
	Name string `json:"name"`
}

// EvidenceDetails are the evidence Dynatrace found for a problem.
type EvidenceDetails struct {
	// TotalCount is the number of pieces of evidence.
	TotalCount int64 `json:"totalCount"`
	// Details are the pieces of evidence.
	Details []Evidence `json:"details"`
}

// Evidence is one piece of evidence of a problem. Only the fields common to
// the evidence types, and the event type and metric, are kept.
type Evidence struct {
	// EvidenceType is EVENT, METRIC, TRANSACTIONAL, MAINTENANCE_WINDOW or
	// AVAILABILITY_EVIDENCE.
	EvidenceType string `json:"evidenceType"`
	// DisplayName describes the evidence.
	DisplayName string `json:"displayName"`
	// Entity is the entity the evidence is about.
	Entity EntityStub `json:"entity"`
	// GroupingEntity groups the evidence, e.g. the process group of a process.
	GroupingEntity *EntityStub `json:"groupingEntity,omitempty"`
	// RootCauseRelevant says whether the evidence is part of the root cause.
	RootCauseRelevant bool `json:"rootCauseRelevant"`
	// StartTime is when the evidence started, in epoch milliseconds.
	StartTime int64 `json:"startTime"`
	// EndTime is when the evidence ended, in epoch milliseconds, when known.
	EndTime int64 `json:"endTime,omitempty"`
	// EventType is the event type of EVENT evidence.
	EventType string `json:"eventType,omitempty"`
	// MetricID is the metric of METRIC evidence.
	MetricID string `json:"metricId,omitempty"`
}

// ImpactAnalysis lists what a problem impacts.
type ImpactAnalysis struct {
	// Impacts are the impacts, one per impacted entity.
	Impacts []Impact `json:"impacts"`
}

// Impact is the impact of a problem on one entity.
type Impact struct {
	// ImpactType is APPLICATION, SERVICE, CUSTOM_APPLICATION or ENVIRONMENT.
	ImpactType string `json:"impactType"`
	// ImpactedEntity is the impacted entity.
	ImpactedEntity EntityStub `json:"impactedEntity"`
	// EstimatedAffectedUsers is Dynatrace's estimate of the users affected.
	EstimatedAffectedUsers int64 `json:"estimatedAffectedUsers"`
}

// CommentList is a page of comments: the answer of GET comments, and a
// problem's recentComments.
type CommentList struct {
	// TotalCount is the number of comments of the problem.
	TotalCount int64 `json:"totalCount"`
	// PageSize is the size of the page, when paged.
	PageSize int `json:"pageSize,omitempty"`
	// NextPageKey asks for the next page; empty on the last one.
	NextPageKey string `json:"nextPageKey,omitempty"`
	// Comments are the comments on this page.
	Comments []Comment `json:"comments"`
}

// Comment is a comment on a problem.
type Comment struct {
	// ID is the comment's id.
	ID string `json:"id"`
	// CreatedAtTimestamp is when the comment was posted, in epoch milliseconds.
	CreatedAtTimestamp int64 `json:"createdAtTimestamp"`
	// AuthorName is who posted it: the owner of the token.
	AuthorName string `json:"authorName"`
	// Content is the comment's text.
	Content string `json:"content"`
	// Context is the context given when posting, e.g. the tool that posted.
	Context string `json:"context"`
}

// CommentRequest is a comment to post.
type CommentRequest struct {
	// Message is the comment's text; required.
	Message string `json:"message"`
	// Context is an optional context, e.g. the tool that posts.
	Context string `json:"context,omitempty"`
}

// ListOptions select the problems ListProblems returns. Empty fields are not
// sent, so the API's defaults apply (from now-2h to now, page size 50).
type ListOptions struct {
	// From starts the time frame: "now-2h", ISO-8601 or epoch milliseconds.
	From string
	// To ends the time frame, in the same formats.
	To string
	// ProblemSelector selects problems, e.g. `status("open")`.
	ProblemSelector string
	// EntitySelector selects problems by affected entities.
	EntitySelector string
	// Sort orders the problems, e.g. "-startTime".
	Sort string
	// Fields adds optional fields, e.g. FieldEvidenceDetails; a "+" prefix
	// is added when missing.
	Fields []string
	// PageSize is the number of problems asked for per page.
	PageSize int
	// MaxPages bounds the pages read; default DefaultMaxPages.
	MaxPages int
	// MaxResponseBytes bounds the bodies of all pages together, and what
	// the problems they hold take once decoded; default MaxResponseBytes.
	MaxResponseBytes int
}

// problemPage is one page of GET /problems.
type problemPage struct {
	NextPageKey string
	Problems    []Problem
	Warnings    []string
}

// GetProblem returns the problem with the internal id problemID, with its
// evidence details and impact analysis. IsNotFound(err) says whether there is
// no such problem.
func (c *Client) GetProblem(ctx context.Context, problemID string) (*Problem, error) {
	if err := checkProblemID(problemID); err != nil {
		return nil, err
	}
	var p Problem
	err := c.do(ctx, call{
		method:     http.MethodGet,
		path:       []string{"problems", problemID},
		query:      url.Values{"fields": {fields([]string{FieldEvidenceDetails, FieldImpactAnalysis})}},
		idempotent: true,
	}, func(d *decoder) error {
		p = Problem{}
		_, err := decodeProblem(d, &p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("getting Dynatrace problem %q: %w", problemID, err)
	}
	return &p, nil
}

// ListProblems returns the problems o selects, reading every page. When there
// are more than o.MaxPages pages, or the pages hold more than
// o.MaxResponseBytes, it returns those it read and an error wrapping
// ErrPageLimit.
func (c *Client) ListProblems(ctx context.Context, o ListOptions) ([]Problem, error) {
	query := url.Values{}
	for name, v := range map[string]string{
		"from": o.From, "to": o.To, "problemSelector": o.ProblemSelector,
		"entitySelector": o.EntitySelector, "sort": o.Sort, "fields": fields(o.Fields),
	} {
		if v != "" {
			query.Set(name, v)
		}
	}
	if o.PageSize != 0 {
		query.Set("pageSize", strconv.Itoa(o.PageSize))
	}
	b := newBudget(cmp.Or(o.MaxResponseBytes, MaxResponseBytes))
	problems, err := pages(ctx, c, []string{"problems"}, query, o.MaxPages, b, func(d *decoder) ([]Problem, string, error) {
		var p problemPage
		_, err := d.object(func(name string) error { return p.member(d, name) })
		if err != nil {
			return nil, "", err
		}
		for _, w := range p.Warnings {
			// Say, a selector naming an unknown management zone: the list
			// is then not what the caller meant.
			logr.FromContextOrDiscard(ctx).Info("Dynatrace API warning", "endpoint", "GET /problems", "warning", w)
		}
		return p.Problems, p.NextPageKey, nil
	})
	if err != nil {
		return problems, fmt.Errorf("listing Dynatrace problems: %w", err)
	}
	return problems, nil
}

// Comments returns all comments on the problem with the internal id
// problemID, in the API's order.
func (c *Client) Comments(ctx context.Context, problemID string) ([]Comment, error) {
	return c.comments(ctx, problemID, nil)
}

// FindComment returns the first comment, in the API's order, on the problem
// with the internal id problemID that match accepts, or nil when there is
// none. It reads no further page once it has found one, and keeps no other
// comment.
func (c *Client) FindComment(ctx context.Context, problemID string, match func(*Comment) bool) (*Comment, error) {
	found, err := c.comments(ctx, problemID, match)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return &found[0], nil
}

// comments lists the comments on a problem: all of them when match is nil,
// else the first that match accepts.
func (c *Client) comments(ctx context.Context, problemID string, match func(*Comment) bool) ([]Comment, error) {
	if err := checkProblemID(problemID); err != nil {
		return nil, err
	}
	query := url.Values{"pageSize": {strconv.Itoa(MaxPageSize)}}
	size := int(reflect.TypeFor[Comment]().Size())
	comments, err := pages(ctx, c, []string{"problems", problemID, "comments"}, query, DefaultMaxPages, newBudget(MaxResponseBytes),
		func(d *decoder) (kept []Comment, next string, err error) {
			var cm Comment
			_, err = d.object(func(name string) error {
				switch name {
				case "nextPageKey":
					return d.value(&next)
				case "comments":
					return pageItems(d, "comments", func() error {
						cm = Comment{}
						if err := d.value(&cm); err != nil || cm == (Comment{}) || (match != nil && !match(&cm)) {
							return err
						}
						if err := d.charge(size); err != nil {
							return err
						}
						kept = append(kept, cm)
						if match != nil {
							next = "" // found: the rest is not read
							return errStop
						}
						return nil
					})
				}
				return d.skip()
			})
			return kept, next, err
		})
	if err != nil {
		return nil, fmt.Errorf("listing comments on Dynatrace problem %q: %w", problemID, err)
	}
	return comments, nil
}

// PostComment posts a comment on the problem with the internal id problemID.
// Posting is not idempotent, so it is retried only when Dynatrace refused it
// with 429; after any other failure the comment may or may not exist, and the
// caller should look at Comments before posting again.
func (c *Client) PostComment(ctx context.Context, problemID string, in CommentRequest) error {
	if err := checkProblemID(problemID); err != nil {
		return err
	}
	if strings.TrimSpace(in.Message) == "" {
		return fmt.Errorf("commenting on Dynatrace problem %q: the message is empty", problemID)
	}
	err := c.do(ctx, call{
		method: http.MethodPost,
		path:   []string{"problems", problemID, "comments"},
		body:   in,
	}, nil)
	if err != nil {
		return fmt.Errorf("commenting on Dynatrace problem %q: %w", problemID, err)
	}
	return nil
}

// pages reads the pages of a listing at path, starting with query, all
// within b. page decodes one page and returns its items and the next page
// key; it starts afresh when a page is read again, and a page adds its
// items once read whole. Later pages send only the key, and the fields, as
// the API requires. When the listing has more than maxPages pages, or more
// than b holds, it returns the items of the pages read whole and an error
// wrapping ErrPageLimit.
func pages[T any](ctx context.Context, c *Client, path []string, query url.Values, maxPages int, b *budget,
	page func(*decoder) ([]T, string, error)) ([]T, error) {
	if maxPages <= 0 {
		maxPages = DefaultMaxPages
	}
	var all []T
	for n := 1; ; n++ {
		var (
			got  []T
			next string
		)
		err := c.do(ctx, call{method: http.MethodGet, path: path, query: query, idempotent: true, budget: b}, func(d *decoder) (err error) {
			got, next, err = page(d)
			return err
		})
		var tooLarge *budgetError
		switch {
		case n > 1 && errors.As(err, &tooLarge):
			return all, fmt.Errorf("%w: stopped at page %d: %w; narrow the selection", ErrPageLimit, n, err)
		case err != nil:
			return nil, err
		}
		all = append(all, got...)
		if next == "" {
			return all, nil
		}
		if n == maxPages {
			return all, fmt.Errorf("%w: stopped after %d pages; narrow the selection", ErrPageLimit, n)
		}
		later := url.Values{"nextPageKey": {next}}
		if f, ok := query["fields"]; ok {
			later["fields"] = f
		}
		query = later
	}
}

// fields joins optional field names into the fields parameter, each with the
// "+" that adds it.
func fields(names []string) string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if !strings.HasPrefix(n, "+") && !strings.HasPrefix(n, "-") {
			n = "+" + n
		}
		out = append(out, n)
	}
	return strings.Join(out, ",")
}

// checkProblemID refuses ids that no escaping keeps in their path element:
// "." and ".." are path segments of their own.
func checkProblemID(id string) error {
	switch id {
	case "":
		return errors.New("dynatrace: problem id is empty")
	case ".", "..":
		return fmt.Errorf("dynatrace: problem id %q is not valid", id)
	}
	return nil
}
