package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// DefaultTwilioAPIURL is Twilio's API, when an action names no regional
// edge or proxy.
const DefaultTwilioAPIURL = "https://api.twilio.com"

// SMS is one text message to one recipient through Twilio's Messages API.
type SMS struct {
	// APIURL is the base URL of Twilio's API; DefaultTwilioAPIURL when empty.
	APIURL string
	// AccountSID and AuthToken authenticate the request.
	AccountSID, AuthToken string
	// From is the sending number; MessagingServiceSID sends through a
	// Messaging Service instead. Exactly one is set.
	From, MessagingServiceSID string
	// To is the recipient, in E.164 form.
	To string
	// Body is the text.
	Body string
}

var accountSID = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)

// ErrAccountSID says what is wrong with an account SID, without its value.
const ErrAccountSID = "is not AC followed by 32 hexadecimal digits"

// ValidAccountSID reports whether sid has the form of a Twilio account SID.
func ValidAccountSID(sid string) bool {
	return accountSID.MatchString(sid)
}

// twilioMessage is the part of a Message resource problemhook reads.
type twilioMessage struct {
	SID          string `json:"sid"`
	Status       string `json:"status"`
	ErrorCode    *int   `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

// twilioError is Twilio's error document.
type twilioError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// SendSMS creates a Message with Twilio: a form-encoded POST to
// /2010-04-01/Accounts/{AccountSID}/Messages.json, with basic auth. Twilio
// answers 201 with the queued message; an error answer carries Twilio's
// code and message, which the *Error repeats with phone numbers masked.
func (c *Client) SendSMS(ctx context.Context, m SMS) (Result, error) {
	if !ValidAccountSID(m.AccountSID) {
		return Result{}, permanent("The Twilio account SID " + ErrAccountSID)
	}
	base := m.APIURL
	if base == "" {
		base = DefaultTwilioAPIURL
	}
	endpoint := strings.TrimRight(base, "/") + "/2010-04-01/Accounts/" + m.AccountSID + "/Messages.json"
	if _, err := url.Parse(endpoint); err != nil {
		return Result{}, permanent("The Twilio API URL %q is not a URL", base)
	}
	form := url.Values{"To": {m.To}, "Body": {m.Body}}
	if m.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", m.MessagingServiceSID)
	} else {
		form.Set("From", m.From)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Result{}, permanent("Building the Twilio request: %v", err)
	}
	req.SetBasicAuth(m.AccountSID, m.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	a, err := c.do(req, "Twilio")
	if err != nil {
		return Result{}, err
	}
	if a.status/100 != 2 {
		detail := MaskPhones(excerpt(a.body))
		var e twilioError
		if json.Unmarshal(a.body, &e) == nil && e.Code != 0 {
			detail = fmt.Sprintf("error %d: %s", e.Code, MaskPhones(excerpt([]byte(e.Message))))
		}
		return Result{}, c.statusError(a, "Twilio", detail)
	}
	var msg twilioMessage
	if err := json.Unmarshal(a.body, &msg); err != nil || msg.SID == "" {
		// Twilio took the request, but its answer does not say so: the
		// message may be on its way, and sending it again may repeat it.
		return Result{}, permanent("Twilio answered %d without a message SID: %s", a.status, MaskPhones(excerpt(a.body)))
	}
	if msg.Status == "failed" || msg.Status == "undelivered" {
		detail := msg.Status
		if msg.ErrorCode != nil {
			detail = fmt.Sprintf("%s, error %d: %s", msg.Status, *msg.ErrorCode, MaskPhones(msg.ErrorMessage))
		}
		return Result{}, permanent("Twilio message %s %s", msg.SID, detail)
	}
	return Result{Detail: fmt.Sprintf("Twilio message %s %s", msg.SID, msg.Status)}, nil
}
