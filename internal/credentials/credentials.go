// Package credentials holds what a sender must present to a
// NotificationTarget, read from the Secrets its spec.auth references: the
// receiver checks requests against it, and the NotificationTarget
// reconciler reports whether it can be read.
package credentials

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/secretref"
)

const (
	authRealm         = `realm="problemhook"`
	bearerAuthPrefix  = "bearer "
	basicAuthScheme   = "Basic " + authRealm + `, charset="UTF-8"`
	bearerAuthScheme  = "Bearer " + authRealm
	basicAuthField    = "spec.auth.basic.secretRef"
	bearerAuthField   = "spec.auth.bearer.secretRef"
	maxCredentialSize = 4096
)

// Credentials are what a sender must present to a NotificationTarget.
// Only digests are kept, so that comparing them takes the same time
// whatever the length of what the sender presented.
type Credentials struct {
	challenge string
	username  [sha256.Size]byte
	secret    [sha256.Size]byte
	open      bool
}

// Load reads the credentials target's auth references. A
// missing Secret or key is a *secretref.Error naming the field.
func Load(ctx context.Context, r client.Reader, target *problemhookv1alpha1.NotificationTarget) (*Credentials, error) {
	mode, user, secret, err := read(ctx, r, target)
	switch {
	case err != nil:
		return nil, err
	case mode == basicMode:
		return &Credentials{challenge: basicAuthScheme, username: sha256.Sum256(user), secret: sha256.Sum256(secret)}, nil
	case mode == bearerMode:
		return &Credentials{challenge: bearerAuthScheme, secret: sha256.Sum256(secret)}, nil
	}
	return &Credentials{open: true}, nil
}

// Auth modes, as read.
const (
	openMode = iota
	basicMode
	bearerMode
)

// read reads the Secret values of target's auth mode: a username and a
// password, a bearer token, or nothing for auth.none.
func read(ctx context.Context, r client.Reader, target *problemhookv1alpha1.NotificationTarget) (mode int, user, secret []byte, err error) {
	auth := target.Spec.Auth
	switch {
	case auth.Basic != nil:
		v, err := secretref.Values(ctx, r, target.Namespace, auth.Basic.SecretRef.Name, basicAuthField, problemhookv1alpha1.BasicUsernameKey, problemhookv1alpha1.BasicPasswordKey)
		if err != nil {
			return 0, nil, nil, err
		}
		return basicMode, v[problemhookv1alpha1.BasicUsernameKey], v[problemhookv1alpha1.BasicPasswordKey], nil
	case auth.Bearer != nil:
		token, err := secretref.Value(ctx, r, target.Namespace, auth.Bearer.SecretRef, problemhookv1alpha1.DefaultBearerKey, bearerAuthField)
		if err != nil {
			return 0, nil, nil, err
		}
		return bearerMode, nil, token, nil
	}
	// The API server admits exactly one mode, so this is auth.none.
	return openMode, nil, nil, nil
}

// Allows reports whether req carries these credentials.
func (c *Credentials) Allows(req *http.Request) bool {
	if c.open {
		return true
	}
	if c.challenge == bearerAuthScheme {
		h := req.Header.Get("Authorization")
		if len(h) <= len(bearerAuthPrefix) || len(h) > maxCredentialSize || !strings.EqualFold(h[:len(bearerAuthPrefix)], bearerAuthPrefix) {
			return false
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(h[len(bearerAuthPrefix):])))
		return subtle.ConstantTimeCompare(got[:], c.secret[:]) == 1
	}
	user, pass, ok := req.BasicAuth()
	if !ok {
		return false
	}
	gotUser, gotPass := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	// Compare both, always, so that the time taken says nothing about which was wrong.
	return subtle.ConstantTimeCompare(gotUser[:], c.username[:])&subtle.ConstantTimeCompare(gotPass[:], c.secret[:]) == 1
}

// Challenge is the WWW-Authenticate value of a 401 answer.
func (c *Credentials) Challenge() string { return c.challenge }

// Authorization is the Authorization header a sender presents to target,
// or "" for auth.none: what problemhook gives Dynatrace when it registers
// the target there.
func Authorization(ctx context.Context, r client.Reader, target *problemhookv1alpha1.NotificationTarget) (string, error) {
	mode, user, secret, err := read(ctx, r, target)
	switch {
	case err != nil:
		return "", err
	case mode == basicMode:
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(string(user)+":"+string(secret))), nil
	case mode == bearerMode:
		return "Bearer " + string(secret), nil
	}
	return "", nil
}
