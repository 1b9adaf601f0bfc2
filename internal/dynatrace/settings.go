package dynatrace

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Schemas of the Settings 2.0 objects problemhook keeps.
const (
	SchemaProblemNotifications = "builtin:problem.notifications"
	SchemaAlertingProfile      = "builtin:alerting.profile"
)

// SettingsObject is a Settings 2.0 object as the API lists it.
type SettingsObject struct {
	ObjectID   string         `json:"objectId"`
	ExternalID string         `json:"externalId,omitempty"`
	Value      map[string]any `json:"value,omitempty"`
}

// SettingsWrite is one object to create or, with an externalId already
// known, update.
type SettingsWrite struct {
	SchemaID   string `json:"schemaId"`
	Scope      string `json:"scope"`
	ExternalID string `json:"externalId,omitempty"`
	Value      any    `json:"value"`
}

// SettingsObjects lists the objects of a schema in the environment scope;
// when externalID is not empty, only the object that carries it.
func (c *Client) SettingsObjects(ctx context.Context, schemaID, externalID string) ([]SettingsObject, error) {
	query := url.Values{"schemaIds": {schemaID}, "scopes": {"environment"}, "fields": {"objectId,externalId,value"}, "pageSize": {"500"}}
	if externalID != "" {
		query.Set("externalIds", externalID)
	}
	return allPages(ctx, c, []string{"settings", "objects"}, query, 0, 0, func(p *struct {
		Items       []SettingsObject `json:"items"`
		NextPageKey string           `json:"nextPageKey"`
	}) ([]SettingsObject, string) {
		return p.Items, p.NextPageKey
	})
}

// UpsertSettings creates the object, or updates the one with its
// externalId, and returns its objectId. Every secret of the value is sent
// each time: the API gives none back and refuses an update without them.
func (c *Client) UpsertSettings(ctx context.Context, w SettingsWrite) (string, error) {
	var out []struct {
		Code     int    `json:"code"`
		ObjectID string `json:"objectId"`
	}
	err := c.do(ctx, call{method: http.MethodPost, path: []string{"settings", "objects"}, body: []SettingsWrite{w}, idempotent: w.ExternalID != ""}, &out)
	if err != nil {
		return "", fmt.Errorf("writing %s object %s: %w", w.SchemaID, w.ExternalID, err)
	}
	if len(out) != 1 || out[0].ObjectID == "" {
		return "", fmt.Errorf("writing %s object %s: the answer names no object", w.SchemaID, w.ExternalID)
	}
	return out[0].ObjectID, nil
}

// DeleteSettings deletes an object; one that is gone already is no error.
func (c *Client) DeleteSettings(ctx context.Context, objectID string) error {
	err := c.do(ctx, call{method: http.MethodDelete, path: []string{"settings", "objects", objectID}, idempotent: true}, nil)
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting settings object %s: %w", objectID, err)
	}
	return nil
}
