package dynatracetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// SSO stands in for Dynatrace SSO's token endpoint (POST
// /sso/oauth2/token) for one OAuth client of one account: it checks the
// form as SSO does and issues access tokens that the environment it was
// given takes, below PlatformPath, until they expire.
type SSO struct {
	srv                    *httptest.Server
	env                    *Server
	clientID, clientSecret string
	accountURN             string
	granted                []string
	ttl                    time.Duration

	mu     sync.Mutex
	issued int
}

// TokenPath is where SSO serves its token endpoint.
const TokenPath = "/sso/oauth2/token"

// NewSSO starts the stand-in for a client granted scopes, whose tokens env
// takes for ttl. Close it when done.
func NewSSO(env *Server, clientID, clientSecret, accountURN string, ttl time.Duration, granted ...string) *SSO {
	s := &SSO{env: env, clientID: clientID, clientSecret: clientSecret, accountURN: accountURN, granted: granted, ttl: ttl}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// TokenURL is the token endpoint's URL.
func (s *SSO) TokenURL() string { return s.srv.URL + TokenPath }

// Issued is how many access tokens were issued.
func (s *SSO) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Close stops the stand-in.
func (s *SSO) Close() { s.srv.Close() }

func (s *SSO) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, description string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
	}
	if r.Method != http.MethodPost || r.URL.Path != TokenPath {
		http.NotFound(w, r)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials":
		fail(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials")
		return
	case f.Get("client_id") != s.clientID || f.Get("client_secret") != s.clientSecret:
		fail(http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	case f.Get("resource") != s.accountURN:
		fail(http.StatusBadRequest, "invalid_request", "resource must be the client's account, urn:dtaccount:<uuid>")
		return
	}
	asked := strings.Fields(f.Get("scope"))
	if len(asked) == 0 {
		fail(http.StatusBadRequest, "invalid_scope", "scope is required")
		return
	}
	// SSO grants what was both asked for and assigned to the client.
	var scopes []string
	for _, sc := range asked {
		if slices.Contains(s.granted, sc) {
			scopes = append(scopes, sc)
		}
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	token := "eyJ" + hex.EncodeToString(b)
	s.env.addAccessToken(token, s.env.clock().Add(s.ttl), scopes)
	s.mu.Lock()
	s.issued++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token_type": "Bearer", "access_token": token, "expires_in": int(s.ttl / time.Second),
		"scope": strings.Join(scopes, " "), "resource": s.accountURN,
	})
}
