package v1alpha1

// ConditionReady is the condition every problemhook kind carries. Argo CD,
// Flux and `kubectl wait --for=condition=Ready` read health from it.
const ConditionReady = "Ready"

// ConditionSuspended is True on an IntegrationRoute whose spec.suspend is
// true, with reason Suspended; it is absent otherwise. A suspended route
// stays Ready: it is valid, and takes new events once resumed.
const ConditionSuspended = "Suspended"

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
	// ReasonInvalidExpression means a route's match.expression does not compile.
	ReasonInvalidExpression = "InvalidExpression"
	// ReasonInvalidTemplate means a route's text template does not parse.
	ReasonInvalidTemplate = "InvalidTemplate"
	// ReasonInvalidJobTemplate means a route's Job template is not a valid Job.
	ReasonInvalidJobTemplate = "InvalidJobTemplate"
	// ReasonPrivilegedJobTemplate is a Job template that asks for the node
	// (privileged, host namespaces, hostPath, ...) while the manager does
	// not allow it (--allow-privileged-jobs).
	ReasonPrivilegedJobTemplate = "PrivilegedJobTemplate"
	// ReasonJobsForbidden is a route whose ServiceAccount may not create
	// its Jobs.
	ReasonJobsForbidden = "JobsForbidden"
	// ReasonRegistered is a target whose problem notification in Dynatrace
	// is in step with it.
	ReasonRegistered = "Registered"
	// ReasonRegistrationFailed is one that could not be put in step.
	ReasonRegistrationFailed = "RegistrationFailed"
	// ReasonCredentialRefused is a target whose Dynatrace credential was
	// refused, or lacks a scope it needs.
	ReasonCredentialRefused = "CredentialRefused"
)

// Reasons for a ProblemEvent's Ready condition, which is True once every
// action has settled.
const (
	// ReasonProgressing means an action is pending or running.
	ReasonProgressing = "Progressing"
	// ReasonSucceeded means every action succeeded.
	ReasonSucceeded = "Succeeded"
	// ReasonFailed means an action failed.
	ReasonFailed = "Failed"
	// ReasonSkipped means nothing ran for the event.
	ReasonSkipped = "Skipped"
)

// ConditionEnriched says whether a ProblemEvent's details were read from the
// Dynatrace API. Its failure is recorded and does not hold back the actions.
const ConditionEnriched = "Enriched"

// ConditionRegistered says whether a NotificationTarget's problem
// notification in Dynatrace is in step with it.
const ConditionRegistered = "Registered"

// Reasons for the Enriched condition.
const (
	// ReasonEnriched means status.details holds the problem as the API returned it.
	ReasonEnriched = "Enriched"
	// ReasonEnrichmentFailed means the API could not be read; the actions ran regardless.
	ReasonEnrichmentFailed = "EnrichmentFailed"
)

// Reasons of the Events the catch-up poller records on a NotificationTarget.
const (
	// ReasonPolled means a poll recorded problem states whose notifications had not arrived.
	ReasonPolled = "Polled"
	// ReasonPollFailed means a poll could not list the problems or record them.
	ReasonPollFailed = "PollFailed"
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

// Labels and annotations problemhook puts on the Jobs it creates.
const (
	// LabelEvent holds the name of the ProblemEvent a Job runs for.
	LabelEvent = "problemhook.io/event"
	// LabelRoute holds the name of the IntegrationRoute a Job belongs to.
	LabelRoute = "problemhook.io/route"
	// LabelAction holds the name of the route's action a Job runs.
	LabelAction = "problemhook.io/action"
	// AnnotationEntity holds the impacted entity a per-entity Job runs for.
	AnnotationEntity = "problemhook.io/entity"
)

// Annotations a person sets on a ProblemEvent to ask for something.
const (
	// AnnotationRerun names the action of the event whose settled runs
	// are to run again. Only a user the API server authorizes for the verb
	// rerun on problemevents may set it (an admission policy checks), and
	// the manager removes it once it has acted on it.
	AnnotationRerun = "problemhook.io/rerun"
	// AnnotationRerunBy names who asks, as the API server authenticated
	// them: the admission policy refuses any other name.
	AnnotationRerunBy = "problemhook.io/rerun-by"
	// AnnotationApprove names the action (or route/action) of the event
	// whose runs awaiting approval are approved. Only a user the API
	// server authorizes for the verb approve on problemevents may set it,
	// and the manager removes it once it has acted on it.
	AnnotationApprove = "problemhook.io/approve"
	// AnnotationApproveBy names who approves, as the API server
	// authenticated them: the admission policy refuses any other name.
	AnnotationApproveBy = "problemhook.io/approve-by"
	// AnnotationReject names the action (or route/action) of the event
	// whose runs awaiting approval are rejected; as AnnotationApprove, it
	// needs the verb approve.
	AnnotationReject = "problemhook.io/reject"
	// AnnotationRejectBy names who rejects, as AnnotationApproveBy.
	AnnotationRejectBy = "problemhook.io/reject-by"
)
