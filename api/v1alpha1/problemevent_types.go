package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProblemState is the state a notification reports.
// +kubebuilder:validation:Enum=OPEN;RESOLVED
type ProblemState string

const (
	// StateOpen is a problem that is open (or was merged with another).
	StateOpen ProblemState = "OPEN"
	// StateResolved is a problem that has ended.
	StateResolved ProblemState = "RESOLVED"
)

// Bounds of a ProblemEvent's spec. The receiver truncates to them, so that
// a large notification is stored (flagged as truncated) instead of refused.
const (
	MaxPayloadBytes     = 64 << 10
	MaxTitleLength      = 1024
	MaxMessageLength    = 8192
	MaxTagCount         = 256
	MaxEntityCount      = 256
	MaxZoneCount        = 64
	MaxShortFieldLength = 256
	MaxURLLength        = 4096
	// MaxActionStatuses bounds status.actions: the runs of one event.
	MaxActionStatuses = 1024
)

// SeverityInfo is the severity of an event that says nothing is abnormal
// (a Guance df_status info): it is stored, and runs only the routes that
// name INFO in match.severities.
const SeverityInfo = "INFO"

// EventOrigin says how problemhook learned of a problem state.
// +kubebuilder:validation:Enum=Notification;Poll
type EventOrigin string

const (
	// OriginNotification is a notification the sender posted to the receiver.
	OriginNotification EventOrigin = "Notification"
	// OriginPoll is a problem state the catch-up poller found in the
	// Dynatrace API because its notification never arrived.
	OriginPoll EventOrigin = "Poll"
)

// ProblemEventSpec is the normalised problem a notification carried.
type ProblemEventSpec struct {
	// target is the name of the NotificationTarget that received the event.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Target string `json:"target"`

	// source is the sender's payload format.
	// +required
	Source PayloadFormat `json:"source"`

	// problemID is the sender's id of the problem: the PID of a Dynatrace
	// problem (use it with the API), the df_event_id of a Guance event.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ProblemID string `json:"problemID"`

	// displayID is the id people see, e.g. 1234 for Dynatrace's P-1234.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	DisplayID string `json:"displayID,omitempty"`

	// state of the problem.
	// +required
	State ProblemState `json:"state"`

	// title of the problem.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Title string `json:"title,omitempty"`

	// message is the problem's text, when the sender gives one.
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	Message string `json:"message,omitempty"`

	// severity, e.g. AVAILABILITY or ERROR (Dynatrace), CRITICAL or WARNING (Guance).
	// A Guance event with df_status info (nothing abnormal) has severity INFO:
	// only routes that name INFO in match.severities run for it.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Severity string `json:"severity,omitempty"`

	// stateDetail says how the sender came to its state, where it says so:
	// for a Guance recovery, df_sub_status (ok, nodata_ok, nodata_as_ok or
	// manual_ok).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	StateDetail string `json:"stateDetail,omitempty"`

	// impact level, e.g. APPLICATION, SERVICE, INFRASTRUCTURE, ENVIRONMENT.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Impact string `json:"impact,omitempty"`

	// url links to the problem in the sender's UI.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	URL string `json:"url,omitempty"`

	// tags of the affected entities, as key:value or key.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=256
	Tags []string `json:"tags,omitempty"`

	// impactedEntities are the entities the problem impacts.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	ImpactedEntities []ImpactedEntity `json:"impactedEntities,omitempty"`

	// managementZones the problem is in.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	ManagementZones []string `json:"managementZones,omitempty"`

	// receivedAt is when the receiver accepted the notification.
	// +required
	ReceivedAt metav1.Time `json:"receivedAt"`

	// test is true for a sender's test notification.
	// +optional
	Test bool `json:"test,omitempty"`

	// reopenedAt is when a Dynatrace Workflows problem last reopened
	// (dt.davis.last_reopen_timestamp), as the record gave it: a reopened
	// problem is a new OPEN event, and its RESOLVED pairs with it.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ReopenedAt string `json:"reopenedAt,omitempty"`

	// duplicate is true for a problem Dynatrace merged into another
	// (dt.davis.is_duplicate).
	// +optional
	Duplicate bool `json:"duplicate,omitempty"`

	// underMaintenance is true for a problem on entities under maintenance
	// (maintenance.is_under_maintenance).
	// +optional
	UnderMaintenance bool `json:"underMaintenance,omitempty"`

	// origin says how problemhook learned of the problem state: Notification
	// (the default) when the sender posted it, Poll when the catch-up poller
	// found it in the Dynatrace API. receivedAt is then when it was found,
	// and payload is the problem as the API listed it.
	// +optional
	Origin EventOrigin `json:"origin,omitempty"`

	// payload is the raw notification body, cut at 64 KiB.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	Payload string `json:"payload,omitempty"`

	// truncated is true when the payload or a field was cut to fit its bound.
	// +optional
	Truncated bool `json:"truncated,omitempty"`

	// impactedEntityCount is how many distinct impacted entities the
	// notification named, when that is more than impactedEntities holds.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ImpactedEntityCount int32 `json:"impactedEntityCount,omitempty"`
}

// ImpactedEntity is an entity a problem impacts.
type ImpactedEntity struct {
	// id of the entity, e.g. HOST-0123456789ABCDEF.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ID string `json:"id,omitempty"`

	// name of the entity.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name,omitempty"`

	// type of the entity, e.g. HOST or SERVICE.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Type string `json:"type,omitempty"`
}

// EventPhase is where a ProblemEvent is in its processing.
// +kubebuilder:validation:Enum=Pending;Waiting;AwaitingApproval;Running;Succeeded;Failed;Skipped
type EventPhase string

const (
	// PhasePending means an action is due to start.
	PhasePending EventPhase = "Pending"
	// PhaseWaiting means the actions that have not settled wait for a
	// time: a delay, a retry, their turn.
	PhaseWaiting EventPhase = "Waiting"
	// PhaseAwaitingApproval means an action waits for a person to approve
	// it, and none runs.
	PhaseAwaitingApproval EventPhase = "AwaitingApproval"
	// PhaseRunning means at least one action has not settled.
	PhaseRunning EventPhase = "Running"
	// PhaseSucceeded means every action succeeded.
	PhaseSucceeded EventPhase = "Succeeded"
	// PhaseFailed means every action settled and at least one failed.
	PhaseFailed EventPhase = "Failed"
	// PhaseSkipped means nothing ran: no route matched, or a test notification was only recorded.
	PhaseSkipped EventPhase = "Skipped"
)

// Done reports whether the event's actions have all settled: its phase
// will not change again unless a person asks for a rerun.
func (p EventPhase) Done() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseSkipped
}

// ActionState is where one action is.
// +kubebuilder:validation:Enum=Pending;AwaitingApproval;Running;Succeeded;Failed;Stopped;Muted;Skipped
type ActionState string

const (
	// ActionPending has not started: an earlier action of its route, or
	// the route's parallelism bound, holds it back; or a message run waits
	// for its next attempt.
	ActionPending ActionState = "Pending"
	// ActionRunning has started and not ended. A message action is Running
	// only while its send is in flight: it is recorded as Running before the
	// request leaves, so a run found Running after a restart is never sent again.
	ActionRunning ActionState = "Running"
	// ActionSucceeded ended well.
	ActionSucceeded ActionState = "Succeeded"
	// ActionFailed ended badly, after its retries.
	ActionFailed ActionState = "Failed"
	// ActionStopped was stopped, or never started, because the problem resolved.
	ActionStopped ActionState = "Stopped"
	// ActionMuted never ran: its route matched during one of its
	// muteTimeIntervals.
	ActionMuted ActionState = "Muted"
	// ActionAwaitingApproval waits for a person to approve or reject it.
	ActionAwaitingApproval ActionState = "AwaitingApproval"
	// ActionSkipped never ran: its problem closed before it was due, or
	// its approval was rejected or timed out. Its message says which.
	ActionSkipped ActionState = "Skipped"
)

// Settled reports whether the action has ended and will not change again.
func (s ActionState) Settled() bool {
	return s == ActionSucceeded || s == ActionFailed || s == ActionStopped || s == ActionMuted || s == ActionSkipped
}

// Action types, as recorded in ActionStatus.Type.
const (
	ActionTypeJob      = "Job"
	ActionTypeTwilio   = "Twilio"
	ActionTypeDingTalk = "DingTalk"
	ActionTypeHTTP     = "HTTP"
)

// ActionStatus records one action run for an event (one per entity with fan-out).
type ActionStatus struct {
	// route is the IntegrationRoute the action belongs to.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Route string `json:"route"`

	// action is the action's name in the route.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Action string `json:"action"`

	// type of the action: Job, Twilio, DingTalk or HTTP.
	// +required
	// +kubebuilder:validation:Enum=Job;Twilio;DingTalk;HTTP
	Type string `json:"type"`

	// entity is the impacted entity this run is for, with per-entity fan-out.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Entity string `json:"entity,omitempty"`

	// state of the run.
	// +required
	State ActionState `json:"state"`

	// recipient is who a message run is for: the masked phone number of a
	// Twilio run, e.g. +49*****1234.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Recipient string `json:"recipient,omitempty"`

	// job is the name of the Job, for Job actions.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Job string `json:"job,omitempty"`

	// exitCode of the Job's container, when it ended.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`

	// attempts made so far.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// message says what happened, in a line.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// output is the end of a finished Job's log, within the action's
	// output bounds, with the values of the Secrets the route and the Job
	// use masked.
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	Output string `json:"output,omitempty"`

	// nextAttemptTime is when a pending run is next due: at the end of
	// its action's delay, or when a message that failed with a retryable
	// error, a message waiting its turn, or a check of its problem that
	// could not be made is tried again.
	// +optional
	NextAttemptTime *metav1.Time `json:"nextAttemptTime,omitempty"`

	// clearedTime is when the run of an action that waits (a delay, an
	// approval, onlyWhileOpen) was cleared to start: it waits before that
	// time, never after it.
	// +optional
	ClearedTime *metav1.Time `json:"clearedTime,omitempty"`

	// failedChecks counts the times problemhook could not learn from
	// Dynatrace whether the problem was still open before this run of an
	// onlyWhileOpen action.
	// +optional
	FailedChecks int32 `json:"failedChecks,omitempty"`

	// approval records the decision on a run whose action needs one.
	// +optional
	Approval *ApprovalStatus `json:"approval,omitempty"`

	// startTime of the first attempt.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the run settled.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// reruns counts the times a person asked for this run again; each
	// rerun of a Job action creates a Job of its own.
	// +optional
	Reruns int32 `json:"reruns,omitempty"`
}

// ApprovalDecision is what became of a run's wait for approval.
// +kubebuilder:validation:Enum=Approved;Rejected;TimedOut
type ApprovalDecision string

const (
	// ApprovalApproved means a person approved the run, which then started.
	ApprovalApproved ApprovalDecision = "Approved"
	// ApprovalRejected means a person rejected the run, which ended Skipped.
	ApprovalRejected ApprovalDecision = "Rejected"
	// ApprovalTimedOut means nobody decided within the action's approval
	// timeout, and the run ended Skipped.
	ApprovalTimedOut ApprovalDecision = "TimedOut"
)

// ApprovalStatus records a run's wait for a person's decision.
type ApprovalStatus struct {
	// requestedTime is when the run began to wait.
	// +required
	RequestedTime metav1.Time `json:"requestedTime"`

	// decision is how the wait ended; empty while it goes on.
	// +optional
	Decision ApprovalDecision `json:"decision,omitempty"`

	// by is who approved or rejected the run, as the API server
	// authenticated them.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	By string `json:"by,omitempty"`

	// time of the decision.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// Rerun records a person's request to run an action of the event again.
type Rerun struct {
	// action whose settled runs ran again.
	// +kubebuilder:validation:MaxLength=63
	Action string `json:"action"`

	// by is who asked, as the API server authenticated them.
	// +kubebuilder:validation:MaxLength=253
	By string `json:"by"`

	// time the manager acted on the request.
	Time metav1.Time `json:"time"`

	// requested is when the request was made, as the API server recorded
	// it: a request already acted on is not acted on again.
	// +optional
	Requested *metav1.Time `json:"requested,omitempty"`

	// runs is how many runs ran again; 0 when the action had no settled run.
	Runs int32 `json:"runs"`
}

// OmittedRuns counts the runs of one action an event does not hold.
type OmittedRuns struct {
	// route is the IntegrationRoute of the action.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Route string `json:"route"`

	// action is the action's name in the route.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Action string `json:"action"`

	// asked is how many runs the action asked for: one per impacted entity
	// (as many as the notification named) or per recipient.
	// +required
	Asked int32 `json:"asked"`

	// omitted is how many of them the event does not hold.
	// +required
	Omitted int32 `json:"omitted"`

	// reason says which bound left them out.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Reason string `json:"reason,omitempty"`
}

// CommentStatus records the comment posted back to the Dynatrace problem.
type CommentStatus struct {
	// posted is true once the comment is stored by Dynatrace.
	// +optional
	Posted bool `json:"posted,omitempty"`

	// time it was posted.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`

	// message posted, or why posting failed.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`
}

// ProblemDetails is a bounded summary of the problem read from the Dynatrace API.
type ProblemDetails struct {
	// displayID is the problem's display id, e.g. P-221194163.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	DisplayID string `json:"displayID,omitempty"`

	// status is the problem's status in the API: OPEN or CLOSED.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Status string `json:"status,omitempty"`

	// title of the problem.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Title string `json:"title,omitempty"`

	// severity is the problem's severityLevel.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Severity string `json:"severity,omitempty"`

	// impact is the problem's impactLevel.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Impact string `json:"impact,omitempty"`

	// impactedEntities are the entities the problem impacts. A notification
	// that carried none (the minimal payload) is routed and fanned out
	// over these.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	ImpactedEntities []ImpactedEntity `json:"impactedEntities,omitempty"`

	// managementZones the problem is in.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	ManagementZones []string `json:"managementZones,omitempty"`

	// tags of the affected entities, as key:value or key.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=256
	Tags []string `json:"tags,omitempty"`

	// rootCause names the root-cause entity, when Dynatrace found one.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	RootCause string `json:"rootCause,omitempty"`

	// evidence lists the first pieces of evidence, one line each.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=512
	Evidence []string `json:"evidence,omitempty"`

	// fetchedAt is when the details were read.
	// +optional
	FetchedAt *metav1.Time `json:"fetchedAt,omitempty"`
}

// ProblemEventStatus is the progress of a ProblemEvent's integrations.
type ProblemEventStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase summarises the actions.
	// +optional
	Phase EventPhase `json:"phase,omitempty"`

	// details summarises the problem as read from the Dynatrace API.
	// +optional
	Details *ProblemDetails `json:"details,omitempty"`

	// actions records each action run.
	// +optional
	// +kubebuilder:validation:MaxItems=1024
	Actions []ActionStatus `json:"actions,omitempty"`

	// omitted counts, per action, the runs the matching routes asked for
	// that the event does not hold, and so never ran: an event keeps its
	// size whatever the number of impacted entities.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	Omitted []OmittedRuns `json:"omitted,omitempty"`

	// summary counts the runs by state, and those omitted, in a line.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Summary string `json:"summary,omitempty"`

	// comment records the comment posted to the Dynatrace problem.
	// +optional
	Comment *CommentStatus `json:"comment,omitempty"`

	// reruns records the requests to run an action again, oldest first,
	// the last 16 kept.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Reruns []Rerun `json:"reruns,omitempty"`

	// conditions describe the event's processing; Ready is True once every action has settled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ProblemEvent is one notification, stored before it was acknowledged.
// The receiver creates it; users read it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pe,categories=problemhook
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.spec.state`
// +kubebuilder:printcolumn:name="Problem",type=string,JSONPath=`.spec.displayID`
// +kubebuilder:printcolumn:name="Title",type=string,JSONPath=`.spec.title`
// +kubebuilder:printcolumn:name="Severity",type=string,JSONPath=`.spec.severity`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Runs",type=string,JSONPath=`.status.summary`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.target`,priority=1
// +kubebuilder:printcolumn:name="Test",type=boolean,JSONPath=`.spec.test`,priority=1
// +kubebuilder:printcolumn:name="Origin",type=string,JSONPath=`.spec.origin`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.spec == oldSelf.spec",message="spec is immutable: it records a notification as received"
type ProblemEvent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the notification as received and normalised.
	// +required
	Spec ProblemEventSpec `json:"spec"`

	// status is the progress of its integrations.
	// +optional
	Status ProblemEventStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ProblemEventList is a list of ProblemEvents.
type ProblemEventList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProblemEvent `json:"items"`
}
