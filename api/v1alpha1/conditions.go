package v1alpha1

// ConditionReady is the condition every problemhook kind carries. Argo CD,
// Flux and `kubectl wait --for=condition=Ready` read health from it.
const ConditionReady = "Ready"

// Reasons for the Ready condition.
const (
	// ReasonReady means the object is valid and in use.
	ReasonReady = "Ready"
	// ReasonSuspended means spec.suspend is true.
	ReasonSuspended = "Suspended"
	// ReasonSecretNotFound means a referenced Secret does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyMissing means a referenced Secret lacks a key, or the key is empty.
	ReasonSecretKeyMissing = "SecretKeyMissing"
	// ReasonInvalidCABundle means spec.dynatrace.caBundle holds no usable PEM certificate.
	ReasonInvalidCABundle = "InvalidCABundle"
	// ReasonInvalidSpec means a field holds a value the API server could not refuse by itself.
	ReasonInvalidSpec = "InvalidSpec"
)

// Labels the receiver puts on every ProblemEvent, so that events can be
// selected by target, state and problem without reading their specs.
const (
	// LabelTarget holds the name of the NotificationTarget that received the event.
	LabelTarget = "problemhook.io/target"
	// LabelState holds the problem state in lower case: open or resolved.
	LabelState = "problemhook.io/state"
	// LabelProblemID holds a hash of the problem id (problem ids are not valid label values).
	LabelProblemID = "problemhook.io/problem-id"
)
