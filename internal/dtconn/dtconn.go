// Package dtconn opens the Dynatrace API connection a NotificationTarget
// declares: the controllers, the catch-up poller, the dashboard and the
// command line all read the token and CA bundle the same way.
package dtconn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/egress"
	"github.com/problemhook/problemhook/internal/secretref"
)

// CallTimeout bounds one call made for a target through its connection
// (an enrichment, a comment, a registration), retries included.
const CallTimeout = 30 * time.Second

// ErrNoConnection is returned for a target without spec.dynatrace.
var ErrNoConnection = errors.New("has no Dynatrace API connection (spec.dynatrace)")

// NewFunc builds a Dynatrace client; dynatrace.New by default.
type NewFunc func(dynatrace.Options) (*dynatrace.Client, error)

// Credential reads what target's connection authenticates with: its API
// token (tokenSecretRef), or its OAuth client (oauth), in the Options of a
// client.
func Credential(ctx context.Context, r client.Reader, target *problemhookv1alpha1.NotificationTarget) (dynatrace.Options, error) {
	dt := target.Spec.Dynatrace
	if dt == nil {
		return dynatrace.Options{}, fmt.Errorf("NotificationTarget %s/%s %w", target.Namespace, target.Name, ErrNoConnection)
	}
	o := dynatrace.Options{URL: dt.URL, CABundle: dt.CABundle}
	switch {
	case dt.OAuth != nil:
		values, err := secretref.Values(ctx, r, target.Namespace, dt.OAuth.ClientSecretRef.Name, "spec.dynatrace.oauth.clientSecretRef", problemhookv1alpha1.OAuthClientIDKey, problemhookv1alpha1.OAuthClientSecretKey)
		if err != nil {
			return o, err
		}
		o.OAuth = &dynatrace.OAuthClient{
			ClientID: string(values[problemhookv1alpha1.OAuthClientIDKey]), ClientSecret: string(values[problemhookv1alpha1.OAuthClientSecretKey]),
			AccountURN: dt.OAuth.AccountURN, Scopes: dt.OAuth.Scopes, TokenURL: dt.OAuth.TokenURL,
		}
	case dt.TokenSecretRef != nil:
		token, err := secretref.Value(ctx, r, target.Namespace, *dt.TokenSecretRef, problemhookv1alpha1.DefaultDynatraceTokenKey, "spec.dynatrace.tokenSecretRef")
		if err != nil {
			return o, err
		}
		o.Token = string(token)
	default:
		return o, fmt.Errorf("NotificationTarget %s/%s: spec.dynatrace has neither tokenSecretRef nor oauth", target.Namespace, target.Name)
	}
	return o, nil
}

// Clients keeps one client per target, and with it one pool of connections
// to its environment, replaced when the target's URL, CA bundle or token
// changes. A client per call would open a connection per call and leave it
// idle. The zero value is ready to use.
type Clients struct {
	// New builds clients; dynatrace.New when nil.
	New NewFunc
	// Egress decides which addresses the clients may connect to; every
	// address when nil.
	Egress *egress.Policy

	mu       sync.Mutex
	byTarget map[types.UID]cachedClient
}

type cachedClient struct {
	fingerprint [sha256.Size]byte
	client      *dynatrace.Client
}

// For returns the client of target's connection, reading its token through r.
func (c *Clients) For(ctx context.Context, r client.Reader, target *problemhookv1alpha1.NotificationTarget) (*dynatrace.Client, error) {
	o, err := Credential(ctx, r, target)
	if err != nil {
		return nil, err
	}
	o.Egress = c.Egress
	h := sha256.New()
	parts := []string{o.URL, o.Token, string(o.CABundle)}
	if oc := o.OAuth; oc != nil {
		parts = append(parts, oc.ClientID, oc.ClientSecret, oc.AccountURN, oc.TokenURL, strings.Join(oc.Scopes, " "))
	}
	for _, part := range parts {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var fingerprint [sha256.Size]byte
	h.Sum(fingerprint[:0])

	c.mu.Lock()
	defer c.mu.Unlock()
	if cached, ok := c.byTarget[target.UID]; ok && cached.fingerprint == fingerprint {
		return cached.client, nil
	}
	newClient := c.New
	if newClient == nil {
		newClient = dynatrace.New
	}
	dc, err := newClient(o)
	if err != nil {
		return nil, fmt.Errorf("connecting to Dynatrace for NotificationTarget %s/%s: %w", target.Namespace, target.Name, err)
	}
	if c.byTarget == nil {
		c.byTarget = map[types.UID]cachedClient{}
	}
	c.byTarget[target.UID] = cachedClient{fingerprint: fingerprint, client: dc}
	return dc, nil
}

// ProblemURL links to a problem in the Dynatrace UI of target's
// environment, or is empty when the connection is through an ActiveGate,
// which serves no UI.
func ProblemURL(target *problemhookv1alpha1.NotificationTarget, problemID string) string {
	base := UIBase(target)
	if base == "" {
		return ""
	}
	return base + "/#problems/problemdetails;pid=" + url.PathEscape(problemID)
}

// UIBase is the base URL of the Dynatrace UI of target's environment, or
// empty when there is none to link to.
func UIBase(target *problemhookv1alpha1.NotificationTarget) string {
	if target.Spec.Dynatrace == nil {
		return ""
	}
	u, err := url.Parse(target.Spec.Dynatrace.URL)
	if err != nil || u.Port() == "9999" {
		return ""
	}
	return strings.TrimRight(u.String(), "/")
}
