package actionkind

import (
	"cmp"
	"context"
	"fmt"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/pacing"
)

// twilio sends an SMS to each recipient, one run each.
var twilio = &Kind{
	Type:          problemhookv1alpha1.ActionTypeTwilio,
	Field:         "twilio",
	Message:       true,
	set:           func(a *problemhookv1alpha1.Action) bool { return a.Twilio != nil },
	stopOnResolve: func(a *problemhookv1alpha1.Action) *bool { return a.Twilio.StopOnResolve },
	recipients:    func(a *problemhookv1alpha1.Action) []string { return a.Twilio.To },
	secrets: []secretField{{
		field: "twilio.credentialsSecretRef",
		ref: func(a *problemhookv1alpha1.Action) (string, []string, bool) {
			return a.Twilio.CredentialsSecretRef.Name, []string{problemhookv1alpha1.TwilioAccountSIDKey, problemhookv1alpha1.TwilioAuthTokenKey}, true
		},
		validate: func(values map[string][]byte) error {
			if !notify.ValidAccountSID(string(values[problemhookv1alpha1.TwilioAccountSIDKey])) {
				return fmt.Errorf("key %s %s", problemhookv1alpha1.TwilioAccountSIDKey, notify.ErrAccountSID)
			}
			return nil
		},
	}},
	templates: []templateField{
		{field: "twilio.body", text: func(a *problemhookv1alpha1.Action) string { return a.Twilio.Body }},
	},
}

func init() {
	twilio.prepare = prepareSMS
	// In the words of Dynatrace's Python sample webhook, which texted too.
	twilio.sentLine = func(recipient string, res notify.Result) string {
		return "Mobile number has been notified: " + recipient + " (" + res.Detail + ")"
	}
}

// prepareSMS sends one SMS to the run's recipient. Twilio paces each
// sender; its 429 holds every message from it.
func prepareSMS(in Input, values map[string]map[string][]byte) (Message, error) {
	t := in.Action.Twilio
	creds := values["twilio.credentialsSecretRef"]
	body, err := in.Render("twilio.body")
	if err != nil {
		return Message{}, err
	}
	m := notify.SMS{
		APIURL: t.APIURL, AccountSID: string(creds[problemhookv1alpha1.TwilioAccountSIDKey]), AuthToken: string(creds[problemhookv1alpha1.TwilioAuthTokenKey]),
		From: t.From, MessagingServiceSID: t.MessagingServiceSID, To: in.Recipient, Body: body,
	}
	from := cmp.Or(t.MessagingServiceSID, t.From)
	return Message{
		Send: func(ctx context.Context, c *notify.Client) (notify.Result, error) { return c.SendSMS(ctx, m) },
		Pace: pacing.Key("twilio", t.APIURL, m.AccountSID, from), Why: "Twilio asked for time before more messages from " + from,
	}, nil
}
