package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WebhookPath is the receiver path of the NotificationTarget namespace/name.
func WebhookPath(namespace, name string) string {
	return "/hooks/" + namespace + "/" + name
}

// GetWebhookPath is the receiver path senders post this target's
// notifications to.
func (in *NotificationTarget) GetWebhookPath() string {
	return WebhookPath(in.Namespace, in.Name)
}

// ProblemIDHash is the label value that stands for a problem id: problem
// ids are not valid label values. 64 bits make a collision between two
// problems of one target negligible.
func ProblemIDHash(problemID string) string {
	sum := sha256.Sum256([]byte(problemID))
	return hex.EncodeToString(sum[:8])
}

// EventName is the deterministic name of the ProblemEvent that records
// problemID in state for target. Every delivery of the same notification,
// on any replica, maps to the same name, so the API server's AlreadyExists
// is what detects a duplicate.
func EventName(target, problemID string, state ProblemState) string {
	return target + "-" + ProblemIDHash(problemID) + "-" + strings.ToLower(string(state))
}

// ProblemKey is what names the events of one occurrence of a problem: the
// problem id, and the time it reopened when it did, so that a reopened
// problem is recorded anew and its RESOLVED pairs with that OPEN.
func (in *ProblemEventSpec) ProblemKey() string {
	if in.ReopenedAt == "" {
		return in.ProblemID
	}
	return in.ProblemID + "@" + in.ReopenedAt
}

// NewProblemEvent returns the ProblemEvent that records spec for target,
// owned by target so that deleting a target deletes its events. The
// receiver and the catch-up poller both build events with it, so that a
// notification and a polled problem state find each other by name.
func NewProblemEvent(target *NotificationTarget, spec *ProblemEventSpec) *ProblemEvent {
	ev := &ProblemEvent{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: target.Namespace,
			Name:      EventName(target.Name, spec.ProblemKey(), spec.State),
			Labels: map[string]string{
				LabelTarget:    target.Name,
				LabelState:     strings.ToLower(string(spec.State)),
				LabelProblemID: ProblemIDHash(spec.ProblemID),
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: GroupVersion.String(),
				Kind:       "NotificationTarget",
				Name:       target.Name,
				UID:        target.UID,
			}},
		},
		Spec: *spec,
	}
	ev.Spec.Target = target.Name
	return ev
}
