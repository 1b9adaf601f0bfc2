package dynatrace

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/problemhook/problemhook/internal/egress"
)

// DefaultTokenURL is Dynatrace SSO's token endpoint.
const DefaultTokenURL = "https://sso.dynatrace.com/sso/oauth2/token"

// DefaultOAuthScopes are the scopes problemhook's calls need.
var DefaultOAuthScopes = []string{"environment-api:problems:read", "environment-api:problems:write"}

// OAuthClient is an OAuth client of a Dynatrace account, whose access
// tokens (client credentials) a Client sends as Bearer to the platform.
type OAuthClient struct {
	ClientID, ClientSecret string
	// AccountURN is urn:dtaccount:<uuid>, sent as the resource.
	AccountURN string
	// Scopes asked for; DefaultOAuthScopes when empty.
	Scopes []string
	// TokenURL is the token endpoint; DefaultTokenURL when empty.
	TokenURL string
}

// tokenSource returns the client's access tokens: one kept until ten
// seconds before it expires and shared by every call (oauth2's
// ReuseTokenSource), each checked to carry every scope asked for.
func (o *OAuthClient) tokenSource(policy *egress.Policy) oauth2.TokenSource {
	scopes := o.Scopes
	if len(scopes) == 0 {
		scopes = DefaultOAuthScopes
	}
	tokenURL := o.TokenURL
	if tokenURL == "" {
		tokenURL = DefaultTokenURL
	}
	cfg := clientcredentials.Config{
		ClientID: o.ClientID, ClientSecret: o.ClientSecret, TokenURL: tokenURL, Scopes: scopes,
		EndpointParams: url.Values{"resource": {o.AccountURN}},
		// Dynatrace SSO takes the client's id and secret in the form.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = policy.Dialer(10*time.Second, 30*time.Second).DialContext
	transport.Proxy = policy.Proxy()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{
		Transport: transport, Timeout: DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	})
	return oauth2.ReuseTokenSource(nil, &grantedScopes{source: cfg.TokenSource(ctx), want: scopes, tokenURL: tokenURL})
}

// grantedScopes refuses a token that lacks a scope asked for, naming it:
// a client not granted one gets a token without it, and every call that
// needs it would be refused later, less clearly.
type grantedScopes struct {
	source   oauth2.TokenSource
	want     []string
	tokenURL string
}

func (g *grantedScopes) Token() (*oauth2.Token, error) {
	tok, err := g.source.Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 && re.Response.StatusCode != http.StatusTooManyRequests {
			what := re.ErrorCode
			if re.ErrorDescription != "" {
				what += ": " + re.ErrorDescription
			}
			if what == "" {
				what = fmt.Sprintf("%d %s", re.Response.StatusCode, http.StatusText(re.Response.StatusCode))
			}
			return nil, &OAuthError{Message: fmt.Sprintf("%s refused the OAuth client: %s", g.tokenURL, what)}
		}
		return nil, &transportError{err: fmt.Errorf("getting an OAuth access token from %s: %w", g.tokenURL, err)}
	}
	granted, ok := tok.Extra("scope").(string)
	if !ok {
		return tok, nil
	}
	have := strings.Fields(granted)
	var missing []string
	for _, s := range g.want {
		if !slices.Contains(have, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return nil, &OAuthError{Message: fmt.Sprintf("the OAuth client was not granted scope %s (granted: %s)", strings.Join(missing, ", "), granted)}
	}
	return tok, nil
}

// OAuthError is a token request the token endpoint refused, or a token
// without a scope asked for: it needs the client, or its grants, fixed.
type OAuthError struct{ Message string }

func (e *OAuthError) Error() string { return "dynatrace: " + e.Message }

// CheckCredential shows whether the client's credential is taken. For an
// OAuth client it gets an access token: its secret must hold and every
// scope asked for must be granted. For an API token it reads one problem,
// once per client: a token the environment refuses, or one without
// problems.read, is an OAuthError in Dynatrace's words, which name the
// scope; an environment that cannot be reached is no error here (the
// events say so when they need it).
func (c *Client) CheckCredential(ctx context.Context) error {
	if c.tokens == nil {
		if c.checked.Load() {
			return nil
		}
		err := c.do(ctx, call{method: http.MethodGet, path: []string{"problems"},
			query: url.Values{"pageSize": {"1"}}}, nil)
		var apiErr *APIError
		switch {
		case err == nil:
			c.checked.Store(true)
		case errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden):
			return &OAuthError{Message: fmt.Sprintf("the API token was refused: %d %s", apiErr.StatusCode, apiErr.Message)}
		}
		return nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.tokens.Token()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
