// Package notifytest runs stand-ins for Twilio's Messages API and a DingTalk
// custom robot that check each request as strictly as the real services do:
// Twilio's basic auth and form fields, DingTalk's access token, signature
// and timestamp freshness, and both services' message formats. A request
// they would refuse is answered as they would answer it, and recorded.
package notifytest

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/problemhook/problemhook/internal/notify"
)

// Failure is an answer to give instead of handling a request.
type Failure struct {
	// Status is the HTTP status of the answer.
	Status int
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Code and Message are Twilio's error code and message, or DingTalk's
	// errcode and errmsg (DingTalk answers them with status 200).
	Code    int
	Message string
}

// server is what both stand-ins share: recorded requests, queued
// failures and a hook run before each answer.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	failures []Failure
	requests int
	onRecv   func()
}

// FailNext answers the next requests with failures, in order, before
// handling any normally. The requests are checked and counted, not recorded.
func (s *server) FailNext(f ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f...)
}

// OnRequest runs hook for each request, before it is checked and answered.
func (s *server) OnRequest(hook func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRecv = hook
}

// Requests counts the requests received, refused ones included.
func (s *server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// begin counts a request and runs the hook.
func (s *server) begin() {
	s.mu.Lock()
	s.requests++
	hook := s.onRecv
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// nextFailure returns the failure to answer a valid request with, if any.
func (s *server) nextFailure() *Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return nil
	}
	f := s.failures[0]
	s.failures = s.failures[1:]
	return &f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// SMS is a message Twilio accepted.
type SMS struct {
	SID, To, From, MessagingServiceSID, Body string
}

// Twilio stands in for Twilio's Messages API of one account.
type Twilio struct {
	server
	accountSID, authToken string
	messages              []SMS
}

// NewTwilio starts a Twilio stand-in for an account. Close it when done.
func NewTwilio(accountSID, authToken string) *Twilio {
	t := &Twilio{accountSID: accountSID, authToken: authToken}
	t.Server = httptest.NewServer(http.HandlerFunc(t.serve))
	return t
}

// Messages returns the messages accepted so far, in order.
func (t *Twilio) Messages() []SMS {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]SMS(nil), t.messages...)
}

var (
	e164       = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	serviceSID = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
)

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{
		"code": code, "message": msg, "status": status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
	})
}

func (t *Twilio) serve(w http.ResponseWriter, r *http.Request) {
	t.begin()
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+t.accountSID+"/Messages.json" {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != t.accountSID || !hmac.Equal([]byte(pass), []byte(t.authToken)) {
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if fail := t.nextFailure(); fail != nil {
		if fail.RetryAfter != "" {
			w.Header().Set("Retry-After", fail.RetryAfter)
		}
		twilioError(w, fail.Status, fail.Code, fail.Message)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		twilioError(w, http.StatusBadRequest, 20001, "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, 20001, "Malformed form: "+err.Error())
		return
	}
	for k, v := range r.PostForm {
		switch {
		case k != "To" && k != "From" && k != "MessagingServiceSid" && k != "Body":
			twilioError(w, http.StatusBadRequest, 20001, "Unexpected parameter "+k)
			return
		case len(v) != 1:
			twilioError(w, http.StatusBadRequest, 20001, "Parameter "+k+" given more than once")
			return
		}
	}
	to, from, svc, body := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("MessagingServiceSid"), r.PostForm.Get("Body")
	switch {
	case to == "":
		twilioError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
	case !e164.MatchString(to):
		twilioError(w, http.StatusBadRequest, 21211, "Invalid 'To' Phone Number: "+to)
	case from == "" && svc == "":
		twilioError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
	case from != "" && svc != "":
		twilioError(w, http.StatusBadRequest, 20001, "Give either From or MessagingServiceSid, not both")
	case from != "" && !e164.MatchString(from):
		twilioError(w, http.StatusBadRequest, 21212, "Invalid 'From' Phone Number: "+from)
	case svc != "" && !serviceSID.MatchString(svc):
		twilioError(w, http.StatusBadRequest, 21701, "The Messaging Service Sid "+svc+" is invalid.")
	case body == "":
		twilioError(w, http.StatusBadRequest, 21602, "Message body is required.")
	case utf8.RuneCountInString(body) > 1600:
		twilioError(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
	default:
		sid := "SM" + randomHex(16)
		t.mu.Lock()
		t.messages = append(t.messages, SMS{SID: sid, To: to, From: from, MessagingServiceSID: svc, Body: body})
		t.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{
			"sid": sid, "account_sid": t.accountSID, "to": to, "from": from, "body": body,
			"status": "queued", "messaging_service_sid": svc, "error_code": nil, "error_message": nil,
		})
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// DingTalkMessage is a message a robot accepted.
type DingTalkMessage struct {
	MsgType, Title, Text string
	// Timestamp is the signed timestamp, for a robot with a secret.
	Timestamp time.Time
}

// DingTalk stands in for one DingTalk custom robot. Like DingTalk, it
// takes 20 messages in any minute and refuses the rest with 130101;
// SetRate changes that, for tests that cannot wait minutes.
type DingTalk struct {
	server
	accessToken, secret string
	now                 func() time.Time
	messages            []DingTalkMessage
	limit               int
	window              time.Duration
	accepted            []time.Time
	tooFast             int
}

// SetRate makes the robot take limit messages in any window.
func (d *DingTalk) SetRate(limit int, window time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.limit, d.window = limit, window
}

// TooFast is how many messages were refused for passing the rate.
func (d *DingTalk) TooFast() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tooFast
}

// NewDingTalk starts a robot with an access token and, when secret is not
// empty, "additional signature" security. Close it when done.
func NewDingTalk(accessToken, secret string) *DingTalk {
	d := &DingTalk{accessToken: accessToken, secret: secret, now: time.Now, limit: 20, window: time.Minute}
	d.Server = httptest.NewServer(http.HandlerFunc(d.serve))
	return d
}

// WebhookURL is the robot's URL with its access token, as DingTalk shows it.
func (d *DingTalk) WebhookURL() string {
	return d.URL + "/robot/send?access_token=" + url.QueryEscape(d.accessToken)
}

// Messages returns the messages accepted so far, in order.
func (d *DingTalk) Messages() []DingTalkMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DingTalkMessage(nil), d.messages...)
}

func dingTalkError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, http.StatusOK, map[string]any{"errcode": code, "errmsg": msg})
}

func (d *DingTalk) serve(w http.ResponseWriter, r *http.Request) {
	d.begin()
	if r.Method != http.MethodPost || r.URL.Path != "/robot/send" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	if q.Get("access_token") != d.accessToken {
		dingTalkError(w, 300001, "token is not exist")
		return
	}
	var ts time.Time
	if d.secret != "" {
		ms, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
		if err != nil {
			dingTalkError(w, 310000, "sign not match: no timestamp")
			return
		}
		ts = time.UnixMilli(ms)
		if age := d.now().Sub(ts); age > time.Hour || age < -time.Hour {
			dingTalkError(w, 310000, "sign not match: timestamp is more than an hour from the server's time")
			return
		}
		want := notify.DingTalkSign(q.Get("timestamp"), d.secret)
		if !hmac.Equal([]byte(q.Get("sign")), []byte(want)) {
			dingTalkError(w, 310000, "sign not match")
			return
		}
	}
	if fail := d.nextFailure(); fail != nil {
		if fail.RetryAfter != "" {
			w.Header().Set("Retry-After", fail.RetryAfter)
		}
		if fail.Status != 0 && fail.Status != http.StatusOK {
			http.Error(w, fail.Message, fail.Status)
			return
		}
		dingTalkError(w, fail.Code, fail.Message)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		dingTalkError(w, 43004, "Content-Type must be application/json")
		return
	}
	var msg struct {
		MsgType  string                        `json:"msgtype"`
		Text     *struct{ Content string }     `json:"text"`
		Markdown *struct{ Title, Text string } `json:"markdown"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		dingTalkError(w, 40035, "invalid JSON: "+err.Error())
		return
	}
	got := DingTalkMessage{MsgType: msg.MsgType, Timestamp: ts}
	switch {
	case msg.MsgType == "text" && msg.Text != nil && strings.TrimSpace(msg.Text.Content) != "":
		got.Text = msg.Text.Content
	case msg.MsgType == "markdown" && msg.Markdown != nil && msg.Markdown.Title != "" && strings.TrimSpace(msg.Markdown.Text) != "":
		got.Title, got.Text = msg.Markdown.Title, msg.Markdown.Text
	default:
		dingTalkError(w, 40035, "missing parameter: the message of msgtype "+strconv.Quote(msg.MsgType))
		return
	}
	d.mu.Lock()
	now := d.now()
	recent := 0
	for _, t := range d.accepted {
		if now.Sub(t) < d.window {
			recent++
		}
	}
	if recent >= d.limit {
		d.tooFast++
		d.mu.Unlock()
		dingTalkError(w, 130101, fmt.Sprintf("send too fast, exceed %d times per minute", d.limit))
		return
	}
	d.accepted = append(d.accepted, now)
	d.messages = append(d.messages, got)
	d.mu.Unlock()
	dingTalkError(w, 0, "ok")
}
