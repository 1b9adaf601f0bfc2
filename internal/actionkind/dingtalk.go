package actionkind

import (
	"cmp"
	"context"
	"fmt"
	"time"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/pacing"
)

// DingTalkRate is what one DingTalk custom robot takes: 20 messages a
// minute; past that it answers 130101 and drops the message. The window is
// a second longer than DingTalk's, for the time a request takes to arrive.
var DingTalkRate = pacing.Rate{Messages: 20, Per: time.Minute + time.Second}

// dingTalk sends a message to a DingTalk custom robot, signed when the
// robot asks for it.
var dingTalk = &Kind{
	Type:          problemhookv1alpha1.ActionTypeDingTalk,
	Field:         "dingtalk",
	Message:       true,
	set:           func(a *problemhookv1alpha1.Action) bool { return a.DingTalk != nil },
	stopOnResolve: func(a *problemhookv1alpha1.Action) *bool { return a.DingTalk.StopOnResolve },
	secrets: []secretField{{
		field: "dingtalk.urlSecretRef",
		ref: func(a *problemhookv1alpha1.Action) (string, []string, bool) {
			return a.DingTalk.URLSecretRef.Name, keyOr(a.DingTalk.URLSecretRef, problemhookv1alpha1.DefaultDingTalkURLKey), true
		},
	}, {
		field: "dingtalk.signSecretRef",
		ref: func(a *problemhookv1alpha1.Action) (string, []string, bool) {
			if s := a.DingTalk.SignSecretRef; s != nil {
				return s.Name, keyOr(*s, problemhookv1alpha1.DefaultDingTalkSignKey), true
			}
			return "", nil, false
		},
	}},
	templates: []templateField{
		{field: "dingtalk.title", text: func(a *problemhookv1alpha1.Action) string { return a.DingTalk.Title }},
		{field: "dingtalk.text", text: func(a *problemhookv1alpha1.Action) string { return a.DingTalk.Text }},
	},
}

func init() { dingTalk.prepare = prepareDingTalk }

// prepareDingTalk sends one robot message, signed when the action has a
// signing secret, in the robot's turn.
func prepareDingTalk(in Input, values map[string]map[string][]byte) (Message, error) {
	d := in.Action.DingTalk
	m := notify.DingTalkMessage{URL: string(only(values["dingtalk.urlSecretRef"])), MsgType: string(d.MsgType)}
	if sign, ok := values["dingtalk.signSecretRef"]; ok {
		m.Secret = string(only(sign))
	}
	var err error
	if m.Title, err = in.Render("dingtalk.title"); err != nil {
		return Message{}, err
	}
	if m.Text, err = in.Render("dingtalk.text"); err != nil {
		return Message{}, err
	}
	rate := cmp.Or(in.Rate, DingTalkRate)
	return Message{
		Send: func(ctx context.Context, c *notify.Client) (notify.Result, error) { return c.SendDingTalk(ctx, m) },
		Pace: pacing.Key("dingtalk", m.URL), Rate: rate,
		Why: fmt.Sprintf("the DingTalk robot takes %d messages in %s", rate.Messages, rate.Per),
	}, nil
}
