package dynatrace

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Schemas of the Settings 2.0 objects problemhook keeps.
const (
	SchemaProblemNotifications = "builtin:problem.notifications"
	SchemaAlertingProfile      = "builtin:alerting.profile"
)

// SettingsObject is a Settings 2.0 object as the API lists it.
type SettingsObject struct {
	ObjectID   string `json:"objectId"`
	ExternalID string `json:"externalId,omitempty"`
	// Value holds the strings, numbers and booleans among the members of
	// the object's value, at most 64 of them: problemhook reads an alerting
	// profile's name. Nested members are not kept.
	Value map[string]any `json:"value,omitempty"`
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
// when externalID is not empty, only the object that carries it. The pages
// hold at most MaxResponseBytes together.
func (c *Client) SettingsObjects(ctx context.Context, schemaID, externalID string) ([]SettingsObject, error) {
	query := url.Values{"schemaIds": {schemaID}, "scopes": {"environment"}, "fields": {"objectId,externalId,value"}, "pageSize": {strconv.Itoa(MaxPageSize)}}
	if externalID != "" {
		query.Set("externalIds", externalID)
	}
	return pages(ctx, c, []string{"settings", "objects"}, query, 0, newBudget(MaxResponseBytes), func(d *decoder) ([]SettingsObject, string, error) {
		var p settingsPage
		_, err := d.object(func(name string) error { return p.member(d, name) })
		return p.Items, p.NextPageKey, err
	})
}

// UpsertSettings creates the object, or updates the one with its
// externalId, and returns its objectId. Every secret of the value is sent
// each time: the API gives none back and refuses an update without them.
func (c *Client) UpsertSettings(ctx context.Context, w SettingsWrite) (string, error) {
	// The answer has an item per object written: one. Only the first is
	// kept, the others counted.
	var (
		objectID string
		items    int
	)
	err := c.do(ctx, call{method: http.MethodPost, path: []string{"settings", "objects"}, body: []SettingsWrite{w}, idempotent: w.ExternalID != ""}, func(d *decoder) error {
		objectID, items = "", 0
		_, err := d.array(func() error {
			if items++; items > 1 {
				return d.skip()
			}
			var out struct {
				ObjectID string `json:"objectId"`
			}
			err := d.value(&out)
			objectID = out.ObjectID
			return err
		})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("writing %s object %s: %w", w.SchemaID, w.ExternalID, err)
	}
	if items != 1 || objectID == "" {
		return "", fmt.Errorf("writing %s object %s: the answer names no object", w.SchemaID, w.ExternalID)
	}
	return objectID, nil
}

// DeleteSettings deletes an object; one that is gone already is no error.
func (c *Client) DeleteSettings(ctx context.Context, objectID string) error {
	err := c.do(ctx, call{method: http.MethodDelete, path: []string{"settings", "objects", objectID}, idempotent: true}, nil)
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting settings object %s: %w", objectID, err)
	}
	return nil
}
