package webhookserver

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

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
func EventName(target, problemID string, state problemhookv1alpha1.ProblemState) string {
	return target + "-" + ProblemIDHash(problemID) + "-" + strings.ToLower(string(state))
}

// WebhookPath is the receiver path of the NotificationTarget namespace/name.
func WebhookPath(namespace, name string) string {
	return "/hooks/" + namespace + "/" + name
}

// NewProblemEvent returns the ProblemEvent that records spec for target,
// owned by target so that deleting a target deletes its events.
func NewProblemEvent(target *problemhookv1alpha1.NotificationTarget, spec *problemhookv1alpha1.ProblemEventSpec) *problemhookv1alpha1.ProblemEvent {
	ev := &problemhookv1alpha1.ProblemEvent{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: target.Namespace,
			Name:      EventName(target.Name, spec.ProblemID, spec.State),
			Labels: map[string]string{
				problemhookv1alpha1.LabelTarget:    target.Name,
				problemhookv1alpha1.LabelState:     strings.ToLower(string(spec.State)),
				problemhookv1alpha1.LabelProblemID: ProblemIDHash(spec.ProblemID),
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: problemhookv1alpha1.GroupVersion.String(),
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
