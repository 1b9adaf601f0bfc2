package dynatracetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// Scopes of the Settings 2.0 API: a classic token's, and the platform's.
const (
	ScopeSettingsRead          = "settings.read"
	ScopeSettingsWrite         = "settings.write"
	PlatformScopeSettingsRead  = "settings:objects:read"
	PlatformScopeSettingsWrite = "settings:objects:write"
)

// settingsObject is a Settings 2.0 object the stand-in holds, secrets
// included (the API never gives them back).
type settingsObject struct {
	id, schemaID, externalID string
	value                    map[string]any
}

var (
	listSettings   = endpoint{ScopeSettingsRead, []string{"schemaIds", "scopes", "externalIds", "fields", "pageSize", "nextPageKey", "filter"}, (*Server).listSettings}
	writeSettings  = endpoint{ScopeSettingsWrite, []string{"validateOnly"}, (*Server).writeSettings}
	deleteSettings = endpoint{ScopeSettingsWrite, []string{"updateToken"}, (*Server).deleteSettings}
	webhookURL     = regexp.MustCompile(`^https?://`)
)

// AddAlertingProfile adds a builtin:alerting.profile object named name
// and returns its objectId. Every environment has one named Default.
func (s *Server) AddAlertingProfile(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addSettings("builtin:alerting.profile", "", map[string]any{"name": name, "severityRules": []any{}, "eventFilters": []any{}})
}

func (s *Server) addSettings(schemaID, externalID string, value map[string]any) string {
	s.seq++
	id := fmt.Sprintf("vu9U3hXa3q0AAAABAB%s$%d", strings.ReplaceAll(schemaID, ":", "_"), s.seq)
	s.settings[id] = &settingsObject{id: id, schemaID: schemaID, externalID: externalID, value: value}
	return id
}

// ProblemNotification returns the value of the builtin:problem.notifications
// object with externalID, secrets included, and whether there is one.
func (s *Server) ProblemNotification(externalID string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.settings {
		if o.schemaID == "builtin:problem.notifications" && o.externalID == externalID {
			return o.value, true
		}
	}
	return nil, false
}

// ProblemNotifications counts the builtin:problem.notifications objects.
func (s *Server) ProblemNotifications() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.settings {
		if o.schemaID == "builtin:problem.notifications" {
			n++
		}
	}
	return n
}

func (s *Server) listSettings(req *apiRequest) (int, any) {
	schema := req.query.Get("schemaIds")
	if schema == "" && req.query.Get("scopes") == "" && req.query.Get("nextPageKey") == "" {
		return http.StatusBadRequest, &apiError{Code: http.StatusBadRequest, Message: "schemaIds or scopes is required"}
	}
	var external []string
	if e := req.query.Get("externalIds"); e != "" {
		external = strings.Split(e, ",")
	}
	items := []map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(s.settings)) {
		o := s.settings[id]
		if (schema != "" && o.schemaID != schema) || (external != nil && !slices.Contains(external, o.externalID)) {
			continue
		}
		item := map[string]any{"objectId": o.id, "value": withoutSecrets(o.value)}
		if o.externalID != "" {
			item["externalId"] = o.externalID
		}
		items = append(items, item)
	}
	return http.StatusOK, map[string]any{"items": items, "totalCount": len(items), "pageSize": 500}
}

// withoutSecrets is a value as the API gives it back: no secret in it.
func withoutSecrets(v map[string]any) map[string]any {
	data, _ := json.Marshal(v)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	if hook, ok := out["webHookNotification"].(map[string]any); ok {
		if headers, ok := hook["headers"].([]any); ok {
			for _, h := range headers {
				if h, ok := h.(map[string]any); ok {
					delete(h, "secretValue")
				}
			}
		}
	}
	return out
}

type settingsItemError struct {
	Code  int       `json:"code"`
	Error *apiError `json:"error"`
}

func (s *Server) writeSettings(req *apiRequest) (int, any) {
	var writes []struct {
		SchemaID   string         `json:"schemaId"`
		Scope      string         `json:"scope"`
		ExternalID string         `json:"externalId"`
		ObjectID   string         `json:"objectId"`
		Value      map[string]any `json:"value"`
	}
	if err := json.Unmarshal(req.body, &writes); err != nil {
		return http.StatusBadRequest, &apiError{Code: http.StatusBadRequest, Message: "Could not map JSON: the body must be a list of settings objects: " + err.Error()}
	}
	var errs []any
	for _, w := range writes {
		if msg, path := s.checkSettings(w.SchemaID, w.Scope, w.ExternalID, w.Value); msg != "" {
			errs = append(errs, settingsItemError{Code: http.StatusBadRequest, Error: &apiError{Code: http.StatusBadRequest, Message: msg,
				ConstraintViolations: []violation{{Path: path, Message: msg, ParameterLocation: "PAYLOAD_BODY"}}}})
		}
	}
	if len(errs) > 0 {
		return http.StatusBadRequest, errs
	}
	var out []map[string]any
	for _, w := range writes {
		id := ""
		for _, o := range s.settings {
			if w.ExternalID != "" && o.externalID == w.ExternalID && o.schemaID == w.SchemaID {
				o.value, id = w.Value, o.id
			}
		}
		if id == "" {
			id = s.addSettings(w.SchemaID, w.ExternalID, w.Value)
		}
		out = append(out, map[string]any{"code": http.StatusOK, "objectId": id})
	}
	return http.StatusOK, out
}

// checkSettings validates an object as the schema does, and returns what is
// wrong and where, or "".
func (s *Server) checkSettings(schemaID, scope, externalID string, v map[string]any) (string, string) {
	switch {
	case schemaID != "builtin:problem.notifications":
		return "Unknown schema " + schemaID + " for this stand-in", "schemaId"
	case scope != "environment":
		return "Given scope is not valid for this schema: " + scope, "scope"
	case len(externalID) > 500:
		return "externalId is longer than 500 characters", "externalId"
	}
	name, _ := v["displayName"].(string)
	if strings.TrimSpace(name) == "" || len(name) > 100 {
		return "displayName must be 1 to 100 characters, not blank", "displayName"
	}
	if v["type"] != "WEBHOOK" {
		return "type must be WEBHOOK for a webhook notification", "type"
	}
	profile, _ := v["alertingProfile"].(string)
	if o, ok := s.settings[profile]; !ok || o.schemaID != "builtin:alerting.profile" {
		return "alertingProfile must be the objectId of an alerting profile", "alertingProfile"
	}
	hook, ok := v["webHookNotification"].(map[string]any)
	if !ok {
		return "webHookNotification is required for type WEBHOOK", "webHookNotification"
	}
	u, _ := hook["url"].(string)
	if !webhookURL.MatchString(u) || len(u) > 1000 {
		return "url must be an http or https URL of at most 1000 characters", "webHookNotification.url"
	}
	if p, _ := hook["payload"].(string); p == "" || len(p) > 5000 {
		return "payload must be 1 to 5000 characters", "webHookNotification.payload"
	}
	headers, _ := hook["headers"].([]any)
	for i, h := range headers {
		h, _ := h.(map[string]any)
		name, _ := h["name"].(string)
		secret, _ := h["secret"].(bool)
		secretValue, _ := h["secretValue"].(string)
		value, hasValue := h["value"].(string)
		switch {
		case name == "" || len(name) > 500:
			return "header name must be 1 to 500 characters", fmt.Sprintf("webHookNotification.headers[%d].name", i)
		case secret && secretValue == "":
			// SECRET_RESUBMISSION: the API gives no secret back, so every
			// write must send every secret again.
			return "Re-enter all secret token(s) before saving", fmt.Sprintf("webHookNotification.headers[%d].secretValue", i)
		case !secret && (!hasValue || value == ""):
			return "header value is required", fmt.Sprintf("webHookNotification.headers[%d].value", i)
		}
	}
	return "", ""
}

func (s *Server) deleteSettings(req *apiRequest) (int, any) {
	if _, ok := s.settings[req.problemID]; !ok {
		return http.StatusNotFound, &apiError{Code: http.StatusNotFound, Message: "Settings not found"}
	}
	delete(s.settings, req.problemID)
	return http.StatusNoContent, nil
}
