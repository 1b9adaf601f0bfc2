package actionkind

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/notify"
	"github.com/problemhook/problemhook/internal/pacing"
	"github.com/problemhook/problemhook/internal/secretref"
)

// Input is what preparing one run of a message action takes.
type Input struct {
	// Reader reads the action's Secrets, in Namespace.
	Reader    client.Reader
	Namespace string
	Action    *problemhookv1alpha1.Action
	// Recipient is the run's recipient, for a kind with Recipients.
	Recipient string
	// IdempotencyKey names the action's run across its attempts, for the
	// services that take one.
	IdempotencyKey string
	// Render renders one of the action's templates (e.g. "twilio.body")
	// for the event's problem, and RenderWithSecrets one that reads a
	// Secret's values. Their errors are the route's, for its author to
	// fix: *PrepareError.
	Render            func(field string) (string, error)
	RenderWithSecrets func(field string, values map[string][]byte) (string, error)
	// Rate, when set, replaces the known rate of a destination that has
	// one (a DingTalk robot's).
	Rate pacing.Rate
}

// Message is one run of a message action, its Secrets read and its
// templates rendered, ready to send.
type Message struct {
	// Send sends it through c.
	Send func(ctx context.Context, c *notify.Client) (notify.Result, error)
	// Pace names the destination whose turns it waits for
	// (pacing.Key), with the destination's known Rate (none: only what
	// the service asks for) and, for status, Why; empty for none.
	Pace, Why string
	Rate      pacing.Rate
	// Secrets are the values of the Secrets the run read, by reference
	// field: what a message about it (a service's answer that echoes a
	// key) must not show.
	Secrets map[string]map[string][]byte
}

// PrepareError is a message that cannot be sent as the route describes it.
type PrepareError struct{ Msg string }

func (e *PrepareError) Error() string { return e.Msg }

// Prepare reads the Secrets and renders the templates of one run of a
// message action. An error that the route's author must fix is a
// *secretref.Error or a *PrepareError; any other is for the caller to
// retry.
func (k *Kind) Prepare(ctx context.Context, in Input) (Message, error) {
	if k.prepare == nil {
		return Message{}, &PrepareError{Msg: "the action is not a message action"}
	}
	values, err := k.readSecrets(ctx, in)
	if err != nil {
		return Message{}, err
	}
	m, err := k.prepare(in, values)
	m.Secrets = values
	return m, err
}

// Read reads the keys ref names, or every key when it names none, from
// namespace. field names the reference in errors.
func (ref SecretRef) Read(ctx context.Context, r client.Reader, namespace, field string) (map[string][]byte, error) {
	if len(ref.Keys) == 0 {
		return secretref.Data(ctx, r, namespace, ref.Name, field)
	}
	return secretref.Values(ctx, r, namespace, ref.Name, field, ref.Keys...)
}

// readSecrets reads a's Secrets for sending: the values of each
// reference, by its field.
func (k *Kind) readSecrets(ctx context.Context, in Input) (map[string]map[string][]byte, error) {
	out := map[string]map[string][]byte{}
	for _, ref := range k.SecretRefs(in.Action) {
		data, err := ref.Read(ctx, in.Reader, in.Namespace, ref.Field)
		if err != nil {
			return nil, err
		}
		out[ref.Field] = data
	}
	return out, nil
}
