// Package dynatracetest is an in-memory Dynatrace Problems API v2, for tests
// and the local demo. It refuses requests as strictly as the real API does,
// with the same status codes and error bodies, so that a client that works
// against it sends what Dynatrace accepts.
//
// It serves GET /problems, GET /problems/{id}, and GET and POST
// /problems/{id}/comments under <EnvironmentPath>/api/v2. Comments are listed
// newest first.
package dynatracetest

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/problemhook/problemhook/internal/dynatrace"
)

const (
	// ScopeRead is the token scope the GET endpoints need.
	ScopeRead = "problems.read"
	// ScopeWrite is the token scope posting comments needs.
	ScopeWrite = "problems.write"
	// PlatformScopeRead is ScopeRead for a platform token (dt0s16.…) on
	// the platform's classic environment API.
	PlatformScopeRead = "environment-api:problems:read"
	// PlatformScopeWrite is ScopeWrite for a platform token.
	PlatformScopeWrite = "environment-api:problems:write"
	// PlatformPath is where the platform serves the classic environment
	// API: a client with a platform token uses URL()+PlatformPath.
	PlatformPath = "/platform/classic/environment-api"
	// AuthorName is the author of the comments posted to the fake.
	AuthorName = "problemhook-test"

	maxBodyBytes = 1 << 20
	// maxCursors bounds the page keys kept, for a long-running demo.
	maxCursors = 10000
)

// ServerOptions configure a Server.
type ServerOptions struct {
	// EnvironmentPath is the path of the environment, e.g. "/e/abc123", to
	// emulate Managed or an ActiveGate; empty for SaaS.
	EnvironmentPath string
	// TLS serves HTTPS with a certificate of its own; CAPEM returns it.
	TLS bool
	// Now is the clock for time frames and comment timestamps; default
	// time.Now.
	Now func() time.Time
	// Listener, when set, is where the server serves, instead of a port of
	// its own on the host's loopback: a stand-in Pods reach, say. The
	// server closes it.
	Listener net.Listener
}

// Request is a request the server received.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the escaped path as sent.
	Path string
	// Query is the parsed query.
	Query url.Values
	// Header holds the headers, without Authorization.
	Header http.Header
	// Body is the request body.
	Body []byte
}

// CredentialCheck reports whether r is the one problem read with which a
// client tries its credential (dynatrace.CheckCredential), which the
// target controller sends whenever a target is created or changed: tests
// that count a client's reads leave it out.
func (r Request) CredentialCheck() bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/problems") && len(r.Query) == 1 && r.Query.Get("pageSize") == "1"
}

// Server is a fake Dynatrace environment. It is safe for concurrent use.
type Server struct {
	envPath string
	now     func() time.Time
	srv     *httptest.Server
	// connections counts the TCP connections clients opened.
	connections atomic.Int64

	mu       sync.Mutex
	settings map[string]*settingsObject
	tokens   map[string][]string
	// expires holds when the OAuth access tokens among tokens expire.
	expires  map[string]time.Time
	problems map[string]dynatrace.Problem
	order    []string // problem ids, in the order added
	comments map[string][]dynatrace.Comment
	failures []*failure
	requests []Request
	cursors  map[string]*cursor
	seq      int64
}

// failure is a FailNext rule.
type failure struct {
	method, pathSuffix string
	left               int
	status             int
	retryAfter         string
}

// NewServer starts a fake environment. Close it when done.
func NewServer(o ServerOptions) *Server {
	s := &Server{
		envPath:  strings.TrimRight(o.EnvironmentPath, "/"),
		now:      o.Now,
		tokens:   map[string][]string{},
		expires:  map[string]time.Time{},
		settings: map[string]*settingsObject{},
		problems: map[string]dynatrace.Problem{},
		comments: map[string][]dynatrace.Comment{},
		cursors:  map[string]*cursor{},
	}
	if s.envPath != "" && !strings.HasPrefix(s.envPath, "/") {
		s.envPath = "/" + s.envPath
	}
	if s.now == nil {
		s.now = time.Now
	}
	// Every environment has an alerting profile named Default.
	s.addSettings("builtin:alerting.profile", "", map[string]any{"name": "Default", "severityRules": []any{}, "eventFilters": []any{}})
	s.srv = httptest.NewUnstartedServer(s.Handler())
	if o.Listener != nil {
		_ = s.srv.Listener.Close()
		s.srv.Listener = o.Listener
	}
	// Refused handshakes are expected in tests of certificates.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.connections.Add(1)
		}
	}
	if o.TLS {
		cert, err := newCertificate()
		if err != nil {
			panic(fmt.Sprintf("dynatracetest: %v", err)) // as httptest does when it cannot serve
		}
		s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	return s
}

// URL returns the environment URL, for dynatrace.Options.URL.
func (s *Server) URL() string { return s.srv.URL + s.envPath }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// CAPEM returns the PEM certificate of a TLS server, for
// dynatrace.Options.CABundle; nil without TLS.
func (s *Server) CAPEM() []byte {
	if s.srv.TLS == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// AddToken makes token valid with the given scopes, e.g. ScopeRead. A
// token that starts with dynatrace.PlatformTokenPrefix is a platform token:
// it is taken only as "Authorization: Bearer" below PlatformPath, with the
// platform's scopes (PlatformScopeRead); any other only as "Api-Token" below
// /api/v2, as Dynatrace does.
func (s *Server) AddToken(token string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = slices.Clone(scopes)
}

// addAccessToken makes an OAuth access token valid below PlatformPath,
// with scopes, until it expires.
func (s *Server) addAccessToken(token string, expires time.Time, scopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = slices.Clone(scopes)
	s.expires[token] = expires
}

// clock is the server's time.
func (s *Server) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// AddProblem adds p, or replaces the problem with its id. The comments in
// p.RecentComments become the problem's comments.
func (s *Server) AddProblem(p dynatrace.Problem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.problems[p.ProblemID]; !ok {
		s.order = append(s.order, p.ProblemID)
	}
	if p.RecentComments != nil {
		s.comments[p.ProblemID] = slices.Clone(p.RecentComments.Comments)
		p.RecentComments = nil
	}
	s.problems[p.ProblemID] = p
}

// Comments returns the comments on a problem, oldest first.
func (s *Server) Comments(problemID string) []dynatrace.Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.comments[problemID])
}

// FailNext makes the next n requests with method (any when empty) whose
// escaped path ends in pathSuffix (any when empty) fail with status and a
// Dynatrace error body, and a Retry-After header when retryAfter is set.
func (s *Server) FailNext(method, pathSuffix string, n int, status int, retryAfter string) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &failure{method: method, pathSuffix: pathSuffix, left: n, status: status, retryAfter: retryAfter})
}

// Connections returns how many connections clients have opened, so that a
// test can tell whether a client reuses its connections.
func (s *Server) Connections() int64 { return s.connections.Load() }

// Requests returns every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Handler returns the server's handler, to serve it elsewhere.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// apiRequest is a request routed to an endpoint and authorised.
type apiRequest struct {
	problemID string
	query     url.Values
	header    http.Header
	body      []byte
}

// endpoint is one method of one path.
type endpoint struct {
	scope  string
	params []string // the query parameters it takes
	handle func(s *Server, req *apiRequest) (int, any)
}

var (
	listProblems = endpoint{ScopeRead, []string{
		"from", "to", "problemSelector", "entitySelector", "fields", "pageSize", "nextPageKey", "sort",
	}, (*Server).listProblems}
	getProblem    = endpoint{ScopeRead, []string{"fields"}, (*Server).getProblem}
	listComments  = endpoint{ScopeRead, []string{"pageSize", "nextPageKey"}, (*Server).listComments}
	postComment   = endpoint{ScopeWrite, nil, (*Server).postComment}
	errorNotFound = &apiError{Code: http.StatusNotFound, Message: "The requested resource does not exist"}
)

// route finds the endpoints of an escaped path: methods to endpoints, and the
// problem id in the path.
func (s *Server) route(path string) (map[string]endpoint, string) {
	rest, ok := strings.CutPrefix(path, s.envPath+"/api/v2/")
	if !ok {
		rest, ok = strings.CutPrefix(path, s.envPath+PlatformPath+"/v2/")
	}
	if !ok {
		return nil, ""
	}
	segments := strings.Split(rest, "/")
	for i, seg := range segments {
		var err error
		if segments[i], err = url.PathUnescape(seg); err != nil || segments[i] == "" {
			return nil, ""
		}
	}
	switch {
	case len(segments) == 1 && segments[0] == "problems":
		return map[string]endpoint{http.MethodGet: listProblems}, ""
	case len(segments) == 2 && segments[0] == "problems":
		return map[string]endpoint{http.MethodGet: getProblem}, segments[1]
	case len(segments) == 3 && segments[0] == "problems" && segments[2] == "comments":
		return map[string]endpoint{http.MethodGet: listComments, http.MethodPost: postComment}, segments[1]
	case len(segments) == 2 && segments[0] == "settings" && segments[1] == "objects":
		return map[string]endpoint{http.MethodGet: listSettings, http.MethodPost: writeSettings}, ""
	case len(segments) == 3 && segments[0] == "settings" && segments[1] == "objects":
		return map[string]endpoint{http.MethodDelete: deleteSettings}, segments[2]
	}
	return nil, ""
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var body []byte
	var readErr error
	if r.Body != nil { // nil in requests built for a handler by hand
		body, readErr = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	}
	header := r.Header.Clone()
	header.Del("Authorization")

	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Header: header, Body: body,
	})
	if f := s.takeFailure(r); f != nil {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		writeJSON(w, f.status, &apiError{Code: f.status, Message: http.StatusText(f.status)})
		return
	}
	status, out := s.dispatch(r, body, readErr)
	writeJSON(w, status, out)
}

// dispatch checks the request in the order Dynatrace does and hands it to
// its endpoint.
func (s *Server) dispatch(r *http.Request, body []byte, readErr error) (int, any) {
	endpoints, problemID := s.route(r.URL.EscapedPath())
	if endpoints == nil {
		return http.StatusNotFound, errorNotFound
	}
	ep, ok := endpoints[r.Method]
	if !ok {
		return http.StatusMethodNotAllowed, &apiError{Code: http.StatusMethodNotAllowed,
			Message: fmt.Sprintf("Method %s is not allowed; allowed: %s", r.Method, strings.Join(slices.Sorted(maps.Keys(endpoints)), ", "))}
	}
	platform := strings.HasPrefix(r.URL.EscapedPath(), s.envPath+PlatformPath+"/")
	if e := s.authorize(r.Header.Values("Authorization"), ep.scope, platform); e != nil {
		return e.Code, e
	}
	if !acceptsJSON(r.Header.Values("Accept")) {
		return http.StatusNotAcceptable, &apiError{Code: http.StatusNotAcceptable, Message: "The API produces application/json only"}
	}
	if readErr != nil {
		return http.StatusRequestEntityTooLarge, &apiError{Code: http.StatusRequestEntityTooLarge, Message: "Request body too large"}
	}
	query, e := parseQuery(r.URL.RawQuery, ep.params)
	if e != nil {
		return e.Code, e
	}
	return ep.handle(s, &apiRequest{problemID: problemID, query: query, header: r.Header, body: body})
}

func (s *Server) takeFailure(r *http.Request) *failure {
	for i, f := range s.failures {
		if (f.method == "" || f.method == r.Method) && strings.HasSuffix(r.URL.EscapedPath(), f.pathSuffix) {
			if f.left--; f.left <= 0 {
				s.failures = slices.Delete(s.failures, i, i+1)
			}
			return f
		}
	}
	return nil
}

// authorize checks the Authorization header: exactly "Api-Token <token>" of
// a classic token known to have scope, or on the platform path "Bearer
// <token>" of a platform token with the platform's name of scope.
func (s *Server) authorize(values []string, scope string, platform bool) *apiError {
	if len(values) == 0 {
		return &apiError{Code: http.StatusUnauthorized, Message: "Missing authorization parameter."}
	}
	scheme := "Api-Token "
	if platform {
		scheme = "Bearer "
		scope = map[string]string{ScopeRead: PlatformScopeRead, ScopeWrite: PlatformScopeWrite,
			ScopeSettingsRead: PlatformScopeSettingsRead, ScopeSettingsWrite: PlatformScopeSettingsWrite}[scope]
	}
	token, ok := strings.CutPrefix(values[0], scheme)
	scopes, known := s.tokens[token]
	expires, isAccessToken := s.expires[token]
	if len(values) != 1 || !ok || !known || (strings.HasPrefix(token, dynatrace.PlatformTokenPrefix) || isAccessToken) != platform {
		return &apiError{Code: http.StatusUnauthorized, Message: "Token Authentication failed"}
	}
	if isAccessToken && !s.clock().Before(expires) {
		return &apiError{Code: http.StatusUnauthorized, Message: "Token expired"}
	}
	if !slices.Contains(scopes, scope) {
		return &apiError{Code: http.StatusForbidden, Message: "Token is missing required scope " + scope}
	}
	return nil
}

// acceptsJSON says whether an Accept header allows application/json; no
// header allows anything.
func acceptsJSON(values []string) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			mediaType, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			switch strings.ToLower(strings.TrimSpace(mediaType)) {
			case "application/json", "application/*", "*/*":
				return true
			}
		}
	}
	return false
}

// parseQuery refuses a query that is not well-formed, repeats a parameter or
// has one the endpoint does not take.
func parseQuery(raw string, allowed []string) (url.Values, *apiError) {
	query, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badRequest("Invalid query string", violation{Path: "query", Message: err.Error()})
	}
	var violations []violation
	for _, name := range slices.Sorted(maps.Keys(query)) {
		switch {
		case !slices.Contains(allowed, name):
			violations = append(violations, queryViolation(name, "unknown parameter"))
		case len(query[name]) > 1:
			violations = append(violations, queryViolation(name, "must be given once"))
		}
	}
	if len(violations) > 0 {
		return nil, badRequest("Constraints violated.", violations...)
	}
	return query, nil
}

// apiError is the "error" member of a Dynatrace error body.
type apiError struct {
	Code                 int         `json:"code"`
	Message              string      `json:"message"`
	ConstraintViolations []violation `json:"constraintViolations,omitempty"`
}

type violation struct {
	Path              string  `json:"path"`
	Message           string  `json:"message"`
	ParameterLocation string  `json:"parameterLocation"`
	Location          *string `json:"location"`
}

func badRequest(message string, violations ...violation) *apiError {
	return &apiError{Code: http.StatusBadRequest, Message: message, ConstraintViolations: violations}
}

func queryViolation(param, message string) violation {
	return violation{Path: param, Message: message, ParameterLocation: "QUERY"}
}

func bodyViolation(field, message string) violation {
	return violation{Path: field, Message: message, ParameterLocation: "PAYLOAD_BODY"}
}

// writeJSON writes v, wrapped as a Dynatrace error body when it is an
// *apiError; nothing when v is nil.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if e, ok := v.(*apiError); ok {
		v = struct {
			Error *apiError `json:"error"`
		}{e}
	}
	if v == nil {
		w.WriteHeader(status)
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
