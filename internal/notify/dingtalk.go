package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DingTalk message types.
const (
	DingTalkMarkdown = "markdown"
	DingTalkText     = "text"
)

// dingTalkTooFast is the errcode of a robot that was sent more than 20
// messages in a minute: the only DingTalk refusal that passes by waiting.
const dingTalkTooFast = 130101

// dingTalkTooFastWait is how long to wait after a "too fast" answer, which
// carries no Retry-After: the robot's one-minute window.
const dingTalkTooFastWait = time.Minute

// DingTalkMessage is one message to a DingTalk custom robot.
type DingTalkMessage struct {
	// URL is the robot's webhook with its access_token. It is a
	// credential: it never appears in a result or an error.
	URL string
	// Secret signs the request when the robot uses "additional
	// signature" security; empty when it does not.
	Secret string
	// MsgType is DingTalkMarkdown (the default) or DingTalkText.
	MsgType string
	// Title is the markdown message's title, shown in notifications.
	Title string
	// Text is the message.
	Text string
}

// SendDingTalk posts a message to a robot. With a secret, the URL carries
// timestamp (now, in milliseconds) and sign, the base64 HMAC-SHA256 of
// "timestamp\nsecret" keyed with the secret. DingTalk answers 200 even when
// it refuses a message; a non-zero errcode is a failure.
func (c *Client) SendDingTalk(ctx context.Context, m DingTalkMessage) (Result, error) {
	u, err := url.Parse(m.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Result{}, permanent("The DingTalk robot URL is not an http or https URL")
	}
	if m.Secret != "" {
		ts := strconv.FormatInt(c.now().UnixMilli(), 10)
		q := u.Query()
		q.Set("timestamp", ts)
		q.Set("sign", DingTalkSign(ts, m.Secret))
		u.RawQuery = q.Encode()
	}
	var payload any
	switch m.MsgType {
	case DingTalkText:
		payload = map[string]any{"msgtype": DingTalkText, "text": map[string]string{"content": m.Text}}
	case DingTalkMarkdown, "":
		title := m.Title
		if title == "" {
			title = "problemhook"
		}
		payload = map[string]any{"msgtype": DingTalkMarkdown, "markdown": map[string]string{"title": title, "text": m.Text}}
	default:
		return Result{}, permanent("DingTalk message type %q is neither markdown nor text", m.MsgType)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return Result{}, permanent("Encoding the DingTalk message: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return Result{}, permanent("The DingTalk robot URL is not a valid request URL")
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	a, err := c.do(req, "DingTalk")
	if err != nil {
		return Result{}, err
	}
	if a.status != http.StatusOK {
		return Result{}, c.statusError(a, "DingTalk", excerpt(a.body))
	}
	var res struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(a.body, &res); err != nil || res.ErrCode == nil {
		return Result{}, permanent("DingTalk answered 200 without an errcode: %s", excerpt(a.body))
	}
	switch *res.ErrCode {
	case 0:
		return Result{Detail: "DingTalk robot accepted the message"}, nil
	case dingTalkTooFast:
		return Result{}, &Error{Retryable: true, RetryAfter: dingTalkTooFastWait, StatusCode: a.status,
			Message: fmt.Sprintf("DingTalk error %d: %s (more than 20 messages a minute to this robot)", *res.ErrCode, res.ErrMsg)}
	default:
		return Result{}, &Error{StatusCode: a.status, Message: fmt.Sprintf("DingTalk error %d: %s", *res.ErrCode, excerpt([]byte(res.ErrMsg)))}
	}
}

// DingTalkSign is the signature of a robot request at timestamp (Unix
// milliseconds, as sent): base64(HMAC-SHA256(key = secret, timestamp + "\n" + secret)).
// The caller URL-encodes it as a query parameter.
func DingTalkSign(timestamp, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
