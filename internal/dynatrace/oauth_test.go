package dynatrace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/dynatrace/dynatracetest"
)

const accountURN = "urn:dtaccount:0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"

// An OAuth client gets its access tokens from SSO, keeps each until
// shortly before it expires, shares it across calls, and sends it as
// Bearer to the platform; a refusal or a scope not granted is an
// OAuthError that says so.
func TestOAuthClient(t *testing.T) {
	g := NewWithT(t)
	s := newFake(t, dynatracetest.ServerOptions{})
	s.AddProblem(problem("P1", "ERROR", "SERVICES", time.Minute))
	// Tokens that live 11 s are fresh for one second: oauth2 renews ten
	// seconds before expiry.
	sso := dynatracetest.NewSSO(s, "dt0s02.CLIENT", "client-secret", accountURN, 11*time.Second,
		dynatracetest.PlatformScopeRead, dynatracetest.PlatformScopeWrite)
	t.Cleanup(sso.Close)
	oauth := func(mutate func(*dynatrace.OAuthClient)) *dynatrace.Client {
		o := &dynatrace.OAuthClient{ClientID: "dt0s02.CLIENT", ClientSecret: "client-secret", AccountURN: accountURN, TokenURL: sso.TokenURL()}
		if mutate != nil {
			mutate(o)
		}
		c, _ := newClient(t, dynatrace.Options{URL: s.URL() + dynatracetest.PlatformPath, OAuth: o, MaxAttempts: 1})
		return c
	}
	c := oauth(nil)
	g.Expect(c.CheckCredential(context.Background())).To(Succeed())
	for range 3 {
		p, err := c.GetProblem(context.Background(), "P1")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(p.ProblemID).To(Equal("P1"))
	}
	g.Expect(c.PostComment(context.Background(), "P1", dynatrace.CommentRequest{Message: "m", Context: "problemhook"})).To(Succeed())
	g.Expect(sso.Issued()).To(Equal(1), "one token for every call while it is fresh")
	// golang.org/x/oauth2 reads the wall clock to tell that a token is
	// about to expire, so the stand-in's short-lived token must age for real.
	time.Sleep(1200 * time.Millisecond)
	_, err := c.GetProblem(context.Background(), "P1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sso.Issued()).To(Equal(2), "a new token shortly before the old one expires")

	var oauthErr *dynatrace.OAuthError
	err = oauth(func(o *dynatrace.OAuthClient) { o.ClientSecret = "wrong" }).CheckCredential(context.Background())
	g.Expect(errors.As(err, &oauthErr)).To(BeTrue(), "%v", err)
	g.Expect(err).To(MatchError("dynatrace: " + sso.TokenURL() + " refused the OAuth client: invalid_client: Client authentication failed"))

	err = oauth(func(o *dynatrace.OAuthClient) {
		o.Scopes = []string{dynatracetest.PlatformScopeRead, "settings:objects:write"}
	}).CheckCredential(context.Background())
	g.Expect(errors.As(err, &oauthErr)).To(BeTrue(), "%v", err)
	g.Expect(err).To(MatchError("dynatrace: the OAuth client was not granted scope settings:objects:write (granted: environment-api:problems:read)"))
	_, err = oauth(func(o *dynatrace.OAuthClient) { o.ClientSecret = "wrong" }).GetProblem(context.Background(), "P1")
	g.Expect(err).To(MatchError(ContainSubstring("invalid_client")), "a call fails at once, without a request to the environment")
}
