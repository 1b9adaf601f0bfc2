package notifytest

// Stand-ins for the paging and chat services that routes reach through
// their HTTP action: PagerDuty's Events API v2, Opsgenie's Alert API, a
// Slack incoming webhook and a Microsoft Teams workflow webhook. Each
// checks what the service checks (required fields, their values, the
// credential) and answers as it does; the paging tools keep their
// incidents, so a test can see a RESOLVED close what its OPEN opened.

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
)

// Incident is an incident or alert a paging stand-in holds.
type Incident struct {
	// Key is PagerDuty's dedup_key or Opsgenie's alias.
	Key, Summary, Severity string
	// Open is false once it was resolved or closed.
	Open bool
	// Events counts the calls that acted on it.
	Events int
}

// paging holds the incidents of a paging stand-in.
type paging struct {
	server
	incidents map[string]*Incident
	order     []string
}

// Incidents returns the incidents, in the order they were opened.
func (p *paging) Incidents() []Incident {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Incident, 0, len(p.order))
	for _, k := range p.order {
		out = append(out, *p.incidents[k])
	}
	return out
}

func (p *paging) open(key, summary, severity string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.incidents == nil {
		p.incidents = map[string]*Incident{}
	}
	inc, ok := p.incidents[key]
	if !ok {
		inc = &Incident{Key: key}
		p.incidents[key] = inc
		p.order = append(p.order, key)
	}
	inc.Summary, inc.Severity, inc.Open = summary, severity, true
	inc.Events++
}

// close closes the incident of key, and reports whether there was one.
func (p *paging) close(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	inc, ok := p.incidents[key]
	if ok {
		inc.Open = false
		inc.Events++
	}
	return ok
}

// isJSON reports whether the request says it carries JSON.
func isJSON(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/json"
}

// PagerDuty stands in for PagerDuty's Events API v2 (POST /v2/enqueue)
// with one integration, whose routing key is given.
type PagerDuty struct {
	paging
	routingKey string
}

// NewPagerDuty starts the stand-in. Close it when done.
func NewPagerDuty(routingKey string) *PagerDuty {
	p := &PagerDuty{routingKey: routingKey}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	return p
}

func (p *PagerDuty) serve(w http.ResponseWriter, r *http.Request) {
	p.begin()
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	invalid := func(errs ...string) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs})
	}
	if !isJSON(r) {
		invalid("Content-Type must be application/json")
		return
	}
	var ev struct {
		RoutingKey  string `json:"routing_key"`
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     *struct {
			Summary, Source, Severity string
			Timestamp, Component      string
			Group, Class              string
			CustomDetails             json.RawMessage `json:"custom_details"`
		} `json:"payload"`
		Client    string          `json:"client"`
		ClientURL string          `json:"client_url"`
		Links     json.RawMessage `json:"links"`
		Images    json.RawMessage `json:"images"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		invalid("Invalid JSON: " + err.Error())
		return
	}
	var errs []string
	switch {
	case ev.RoutingKey == "":
		errs = append(errs, "'routing_key' is missing or blank")
	case ev.RoutingKey != p.routingKey:
		errs = append(errs, "'routing_key' is not the key of an integration")
	}
	if len(ev.DedupKey) > 255 {
		errs = append(errs, "'dedup_key' is longer than 255 characters")
	}
	switch ev.EventAction {
	case "trigger":
		if ev.Payload == nil {
			errs = append(errs, "'payload' is missing")
		} else {
			if ev.Payload.Summary == "" || len(ev.Payload.Summary) > 1024 {
				errs = append(errs, "'payload.summary' is missing or longer than 1024 characters")
			}
			if ev.Payload.Source == "" {
				errs = append(errs, "'payload.source' is missing")
			}
			if s := ev.Payload.Severity; s != "critical" && s != "error" && s != "warning" && s != "info" {
				errs = append(errs, "'payload.severity' must be one of critical, error, warning or info")
			}
		}
	case "acknowledge", "resolve":
		if ev.DedupKey == "" {
			errs = append(errs, "'dedup_key' is required to "+ev.EventAction)
		}
	default:
		errs = append(errs, "'event_action' must be one of trigger, acknowledge or resolve")
	}
	if len(errs) > 0 {
		invalid(errs...)
		return
	}
	if fail := p.nextFailure(); fail != nil {
		if fail.RetryAfter != "" {
			w.Header().Set("Retry-After", fail.RetryAfter)
		}
		http.Error(w, fail.Message, fail.Status)
		return
	}
	if ev.EventAction == "trigger" {
		if ev.DedupKey == "" {
			ev.DedupKey = randomHex(16)
		}
		p.open(ev.DedupKey, ev.Payload.Summary, ev.Payload.Severity)
	} else {
		p.close(ev.DedupKey) // an unknown key is accepted and does nothing
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

// Opsgenie stands in for Opsgenie's Alert API: create (POST /v2/alerts)
// and close (POST /v2/alerts/{identifier}/close), authenticated with an
// API key.
type Opsgenie struct {
	paging
	apiKey string
}

// NewOpsgenie starts the stand-in. Close it when done.
func NewOpsgenie(apiKey string) *Opsgenie {
	o := &Opsgenie{apiKey: apiKey}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	return o
}

func (o *Opsgenie) serve(w http.ResponseWriter, r *http.Request) {
	o.begin()
	answer := func(status int, msg string) {
		writeJSON(w, status, map[string]any{"message": msg, "took": 0.001, "requestId": randomHex(16)})
	}
	if r.Header.Get("Authorization") != "GenieKey "+o.apiKey {
		answer(http.StatusUnauthorized, "Could not authenticate")
		return
	}
	if r.Method != http.MethodPost || !isJSON(r) {
		answer(http.StatusUnprocessableEntity, "Request must be a POST with a JSON body")
		return
	}
	accepted := func() {
		writeJSON(w, http.StatusAccepted, map[string]any{"result": "Request will be processed", "took": 0.001, "requestId": randomHex(16)})
	}
	if r.URL.Path == "/v2/alerts" {
		var alert struct {
			Message, Alias, Description, Entity, Source, Priority, User, Note string
			Tags                                                              []string
			Details                                                           map[string]string
			Actions                                                           []string
			Responders, VisibleTo                                             json.RawMessage
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		switch err := dec.Decode(&alert); {
		case err != nil:
			answer(http.StatusUnprocessableEntity, "Invalid JSON: "+err.Error())
		case strings.TrimSpace(alert.Message) == "":
			answer(http.StatusUnprocessableEntity, "Message can not be empty.")
		case len(alert.Message) > 130 || len(alert.Alias) > 512 || len(alert.Description) > 15000:
			answer(http.StatusUnprocessableEntity, "message, alias or description is too long")
		case alert.Priority != "" && !slices.Contains([]string{"P1", "P2", "P3", "P4", "P5"}, alert.Priority):
			answer(http.StatusUnprocessableEntity, "Priority should be one of [P1, P2, P3, P4, P5]")
		default:
			key := alert.Alias
			if key == "" {
				key = randomHex(16)
			}
			o.open(key, alert.Message, alert.Priority)
			accepted()
		}
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/alerts/")
	identifier, action, _ := strings.Cut(rest, "/")
	if !ok || action != "close" || identifier == "" {
		answer(http.StatusNotFound, "No such endpoint")
		return
	}
	if t := r.URL.Query().Get("identifierType"); t != "alias" {
		answer(http.StatusUnprocessableEntity, "this stand-in closes alerts by alias only (identifierType=alias), got "+url.QueryEscape(t))
		return
	}
	// Opsgenie accepts a close of an alias it does not know and fails it
	// later; the stand-in refuses it at once, so that a test sees it.
	if !o.close(identifier) {
		answer(http.StatusNotFound, "Alert with alias ["+identifier+"] does not exist")
		return
	}
	accepted()
}

// Chat is a message a chat stand-in accepted: Slack's text, or the text
// blocks of a Teams Adaptive Card.
type Chat struct{ Text string }

// chat holds the messages of a chat stand-in.
type chat struct {
	server
	path     string
	messages []Chat
}

// Messages returns the messages accepted, in order.
func (c *chat) Messages() []Chat {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Chat(nil), c.messages...)
}

func (c *chat) accept(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.messages = append(c.messages, Chat{Text: text})
}

// WebhookURL is the webhook's URL, its credential in its path or query.
func (c *chat) WebhookURL() string { return c.URL + c.path }

// Slack stands in for one Slack incoming webhook.
type Slack struct{ chat }

// NewSlack starts the stand-in. Close it when done.
func NewSlack() *Slack {
	s := &Slack{chat{path: "/services/T0000000/B0000000/" + randomHex(12)}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *Slack) serve(w http.ResponseWriter, r *http.Request) {
	s.begin()
	plain := func(status int, body string) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
	switch {
	case r.URL.Path != s.path:
		plain(http.StatusForbidden, "invalid_token")
		return
	case r.Method != http.MethodPost || !isJSON(r):
		plain(http.StatusBadRequest, "invalid_payload")
		return
	}
	var msg struct {
		Text        string          `json:"text"`
		Blocks      json.RawMessage `json:"blocks"`
		Attachments json.RawMessage `json:"attachments"`
		Mrkdwn      *bool           `json:"mrkdwn"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		plain(http.StatusBadRequest, "invalid_payload")
		return
	}
	if strings.TrimSpace(msg.Text) == "" && len(msg.Blocks) == 0 && len(msg.Attachments) == 0 {
		plain(http.StatusBadRequest, "no_text")
		return
	}
	s.accept(msg.Text)
	plain(http.StatusOK, "ok")
}

// Teams stands in for a Microsoft Teams workflow webhook ("When a Teams
// webhook request is received"), which takes a message with Adaptive
// Cards and answers 202.
type Teams struct{ chat }

// NewTeams starts the stand-in. Close it when done.
func NewTeams() *Teams {
	t := &Teams{chat{path: "/workflows/" + randomHex(8) + "/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + randomHex(16)}}
	t.Server = httptest.NewServer(http.HandlerFunc(t.serve))
	return t
}

func (t *Teams) serve(w http.ResponseWriter, r *http.Request) {
	t.begin()
	fail := func(status int, code, msg string) {
		writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
	}
	if r.URL.RequestURI() != t.path {
		fail(http.StatusUnauthorized, "DirectApiAuthorizationRequired", "The request must be authenticated: its sig does not match")
		return
	}
	if r.Method != http.MethodPost || !isJSON(r) {
		fail(http.StatusBadRequest, "InvalidRequestContent", "The request must be a POST of JSON")
		return
	}
	var msg struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Schema  string `json:"$schema"`
				Type    string `json:"type"`
				Version string `json:"version"`
				Body    []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		fail(http.StatusBadRequest, "InvalidRequestContent", "The request content is not valid JSON: "+err.Error())
		return
	}
	if msg.Type != "message" || len(msg.Attachments) == 0 {
		fail(http.StatusBadRequest, "InvalidRequestContent", `The message must have "type": "message" and at least one attachment`)
		return
	}
	var texts []string
	for _, a := range msg.Attachments {
		c := a.Content
		if a.ContentType != "application/vnd.microsoft.card.adaptive" || c.Type != "AdaptiveCard" || c.Version == "" || len(c.Body) == 0 {
			fail(http.StatusBadRequest, "InvalidRequestContent", "Each attachment must be an Adaptive Card (contentType application/vnd.microsoft.card.adaptive, type AdaptiveCard, a version and a body)")
			return
		}
		for _, b := range c.Body {
			if b.Type == "TextBlock" {
				texts = append(texts, b.Text)
			}
		}
	}
	t.accept(strings.Join(texts, "\n"))
	w.WriteHeader(http.StatusAccepted)
}
