package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// IntegrationRouteSpec says which ProblemEvents a route matches and what it runs for them.
type IntegrationRouteSpec struct {
	// targets names the NotificationTargets in this namespace whose events
	// the route sees. Empty means all of them.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	Targets []string `json:"targets,omitempty"`

	// match selects events; every criterion given must hold.
	// +optional
	Match RouteMatch `json:"match,omitempty"`

	// includeTestNotifications runs the route for test notifications of
	// targets whose testNotifications policy is Run.
	// +optional
	IncludeTestNotifications bool `json:"includeTestNotifications,omitempty"`

	// actions run in order for each matching event.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Actions []Action `json:"actions"`

	// comment posts the actions' results to the Dynatrace problem, when the
	// target has a Dynatrace connection.
	// +optional
	Comment *CommentSpec `json:"comment,omitempty"`

	// retry bounds how often a failed action is retried.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`

	// serviceAccountName names a ServiceAccount of the route's namespace
	// whose rights the operator uses for the route's Jobs: it impersonates
	// it to check, create and delete them, so a route can do no more than
	// that ServiceAccount. When empty, the manager's
	// --default-service-account applies; when that is unset too, Jobs are
	// created with the operator's own rights (a single-tenant cluster).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// muteTimeIntervals are the times the route runs nothing, in
	// Alertmanager's time_interval shape: an event it matches then records
	// its runs as Muted, and nothing is created or sent. A time is muted
	// when any interval holds it.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	MuteTimeIntervals []TimeInterval `json:"muteTimeIntervals,omitempty"`

	// suspend stops the route from matching new events, as during a
	// maintenance night; the events it already runs go on.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// TimeInterval is a set of times, as Alertmanager's time_interval: it holds
// a time when each of its lists given holds it; an empty list holds every
// time.
type TimeInterval struct {
	// times of the day, each from startTime up to (not including) endTime.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Times []TimeRange `json:"times,omitempty"`

	// weekdays, each a day or an inclusive range of days: monday,
	// saturday:sunday.
	// +optional
	// +kubebuilder:validation:MaxItems=7
	// +kubebuilder:validation:items:MaxLength=32
	Weekdays []string `json:"weekdays,omitempty"`

	// daysOfMonth, each a day or an inclusive range: 1, 1:5, and negative
	// days count from the month's end: -3:-1 is its last three days.
	// +optional
	// +kubebuilder:validation:MaxItems=31
	// +kubebuilder:validation:items:MaxLength=16
	DaysOfMonth []string `json:"daysOfMonth,omitempty"`

	// months, each a month's name or number, or an inclusive range:
	// december, 1:3.
	// +optional
	// +kubebuilder:validation:MaxItems=12
	// +kubebuilder:validation:items:MaxLength=32
	Months []string `json:"months,omitempty"`

	// years, each a year or an inclusive range: 2026, 2026:2027.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=16
	Years []string `json:"years,omitempty"`

	// location is the IANA time zone the times are in, such as
	// Europe/Berlin; UTC when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Location string `json:"location,omitempty"`
}

// TimeRange is a time of the day, from startTime up to (not including)
// endTime, each HH:MM; endTime may be 24:00.
type TimeRange struct {
	// +required
	// +kubebuilder:validation:Pattern=`^([01][0-9]|2[0-3]):[0-5][0-9]$`
	StartTime string `json:"startTime"`
	// +required
	// +kubebuilder:validation:Pattern=`^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`
	EndTime string `json:"endTime"`
}

// RouteMatch selects ProblemEvents. Each list matches when the event has
// one of its values; an empty list matches everything.
type RouteMatch struct {
	// states the event must be in.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=2
	States []ProblemState `json:"states,omitempty"`

	// severities, e.g. AVAILABILITY, ERROR, PERFORMANCE, RESOURCE_CONTENTION,
	// CUSTOM_ALERT, MONITORING_UNAVAILABLE for Dynatrace, or CRITICAL, ERROR,
	// WARNING, INFO, NODATA, OK for Guance.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=64
	Severities []string `json:"severities,omitempty"`

	// impacts, e.g. APPLICATION, SERVICE, INFRASTRUCTURE, ENVIRONMENT.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=64
	Impacts []string `json:"impacts,omitempty"`

	// tags that must all be present on the event, as key:value or key.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=256
	Tags []string `json:"tags,omitempty"`

	// entityTypes of which at least one impacted entity must be, e.g. HOST, SERVICE.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=128
	EntityTypes []string `json:"entityTypes,omitempty"`

	// entityNames of which at least one impacted entity must have.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	EntityNames []string `json:"entityNames,omitempty"`

	// managementZones of which the problem must be in at least one.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=256
	ManagementZones []string `json:"managementZones,omitempty"`

	// expression is a CEL expression over `problem` (the normalised problem,
	// with the fields of a ProblemEvent's spec) that must be true,
	// e.g. `problem.title.contains("CPU")`.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Expression string `json:"expression,omitempty"`
}

// Action is one thing a route does. Exactly one of job, twilio, dingtalk or http is set.
// +kubebuilder:validation:XValidation:rule="[has(self.job), has(self.twilio), has(self.dingtalk), has(self.http)].filter(x, x).size() == 1",message="exactly one of job, twilio, dingtalk or http must be set"
type Action struct {
	// name of the action, unique in the route; it appears in status and Job names.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// job runs a Kubernetes Job, once per problem or once per impacted entity.
	// +optional
	Job *JobAction `json:"job,omitempty"`

	// twilio sends an SMS through Twilio.
	// +optional
	Twilio *TwilioAction `json:"twilio,omitempty"`

	// dingtalk sends a message to a DingTalk custom robot.
	// +optional
	DingTalk *DingTalkAction `json:"dingtalk,omitempty"`

	// http calls an HTTP endpoint.
	// +optional
	HTTP *HTTPAction `json:"http,omitempty"`

	// delay holds the action back this long after the action before it in
	// the route settled, or after the event was stored for the route's
	// first action: a remediation ladder's "wait five minutes, then". The
	// wait is computed from the times the event's status records, so a
	// restart or a new leader keeps it.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('24h')",message="delay must be a duration from 0s to 24h, such as 5m"
	Delay *metav1.Duration `json:"delay,omitempty"`

	// onlyWhileOpen runs the action only while its problem is still open.
	// Just before the action starts, problemhook looks for a RESOLVED
	// notification of the problem and, when the target has a Dynatrace
	// API connection, reads the problem's status from the Problems API:
	// a closed problem ends the runs Skipped, and nothing is created or
	// sent. When Dynatrace cannot be asked, the action waits and asks
	// again within the route's retry policy; it never runs on a guess.
	// +optional
	OnlyWhileOpen bool `json:"onlyWhileOpen,omitempty"`

	// approval makes the action wait for a person to approve it.
	// +optional
	Approval *ApprovalPolicy `json:"approval,omitempty"`
}

// ApprovalPolicy makes an action wait for a person's decision before it
// starts.
type ApprovalPolicy struct {
	// required makes the action's runs wait, in the state
	// AwaitingApproval, until a person who holds the verb approve on
	// problemevents in the namespace approves them (the event's annotation
	// problemhook.io/approve) or rejects them (problemhook.io/reject).
	// +required
	Required bool `json:"required"`

	// timeout is how long the runs wait for a decision; past it they end
	// Skipped.
	// +optional
	// +kubebuilder:default="30m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('168h')",message="timeout must be a duration from 1s to 168h, such as 30m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// JobAction runs a Kubernetes Job. The problem reaches its containers as
// environment variables (PROBLEM_ID, PROBLEM_TITLE, ENTITY_ID, ...), never
// through a shell.
type JobAction struct {
	// perImpactedEntity runs one Job per impacted entity instead of one per problem.
	// +optional
	PerImpactedEntity bool `json:"perImpactedEntity,omitempty"`

	// parallelism bounds how many of the event's Jobs for this action run at once.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Parallelism *int32 `json:"parallelism,omitempty"`

	// stopOnResolve deletes the Jobs of this action that are still running
	// for a problem when its RESOLVED notification arrives, and does not
	// start the ones that have not started yet.
	// +optional
	// +kubebuilder:default=true
	StopOnResolve *bool `json:"stopOnResolve,omitempty"`

	// output says how much of the end of a finished Job's log is kept in
	// the run's status.actions[].output, quoted in the Dynatrace comment and
	// shown on the dashboard. Values of the Secrets the route and the Job
	// use are masked in it.
	// +optional
	// +kubebuilder:default={tailLines: 20, limitBytes: 2048}
	Output *JobOutput `json:"output,omitempty"`

	// template is the Job to create, a batch/v1 JobTemplateSpec. The
	// operator checks it strictly, unknown fields included, with a
	// server-side dry run (the schema would make this CRD too large for
	// `kubectl apply`) and reports problems in the route's Ready condition.
	// Unless the template says otherwise, the Job's backoffLimit is the
	// route's retry limit.
	// +required
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	Template runtime.RawExtension `json:"template"`
}

// JobOutput bounds the end of a Job's log that a run keeps.
type JobOutput struct {
	// tailLines is how many of the log's last lines are kept; 0 keeps none.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=200
	TailLines *int32 `json:"tailLines,omitempty"`

	// limitBytes bounds the lines kept: the earliest go first.
	// +optional
	// +kubebuilder:default=2048
	// +kubebuilder:validation:Minimum=64
	// +kubebuilder:validation:Maximum=8192
	LimitBytes *int32 `json:"limitBytes,omitempty"`
}

// TwilioAction sends an SMS to each recipient.
// +kubebuilder:validation:XValidation:rule="has(self.from) != has(self.messagingServiceSID)",message="exactly one of from or messagingServiceSID must be set"
type TwilioAction struct {
	// credentialsSecretRef names a Secret with the keys accountSID and authToken.
	// +required
	CredentialsSecretRef LocalObjectReference `json:"credentialsSecretRef"`

	// from is the sending number in E.164 form.
	// +optional
	// +kubebuilder:validation:Pattern=`^\+[1-9][0-9]{6,14}$`
	From string `json:"from,omitempty"`

	// messagingServiceSID sends through a Twilio Messaging Service instead of a number.
	// +optional
	// +kubebuilder:validation:Pattern=`^MG[0-9a-fA-F]{32}$`
	MessagingServiceSID string `json:"messagingServiceSID,omitempty"`

	// to lists the recipients in E.164 form.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:Pattern=`^\+[1-9][0-9]{6,14}$`
	To []string `json:"to"`

	// body is a text/template over the normalised problem.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1600
	Body string `json:"body"`

	// apiURL is Twilio's API base URL, for a regional edge or a proxy.
	// +optional
	// +kubebuilder:default="https://api.twilio.com"
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#]+(/[^\s?#]*)?$`
	APIURL string `json:"apiURL,omitempty"`

	// stopOnResolve: when the problem's RESOLVED notification arrives,
	// recipients not yet sent and retries still waiting are not sent, and
	// are recorded Stopped. A message already sent is not taken back.
	// +optional
	// +kubebuilder:default=true
	StopOnResolve *bool `json:"stopOnResolve,omitempty"`
}

// DingTalkMessageType is the message type of a DingTalk robot message.
// +kubebuilder:validation:Enum=markdown;text
type DingTalkMessageType string

// DingTalkAction sends a message to a DingTalk custom robot.
type DingTalkAction struct {
	// urlSecretRef names the Secret key (default `url`) holding the robot's
	// webhook URL with its access_token.
	// +required
	URLSecretRef SecretKeyReference `json:"urlSecretRef"`

	// signSecretRef names the Secret key (default `secret`) holding the
	// robot's signing secret, when it uses "additional signature" security.
	// +optional
	SignSecretRef *SecretKeyReference `json:"signSecretRef,omitempty"`

	// msgType is the message type.
	// +optional
	// +kubebuilder:default=markdown
	MsgType DingTalkMessageType `json:"msgType,omitempty"`

	// title is a text/template for the markdown title.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Title string `json:"title,omitempty"`

	// text is a text/template for the message.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20000
	Text string `json:"text"`

	// stopOnResolve: when the problem's RESOLVED notification arrives,
	// recipients not yet sent and retries still waiting are not sent, and
	// are recorded Stopped. A message already sent is not taken back.
	// +optional
	// +kubebuilder:default=true
	StopOnResolve *bool `json:"stopOnResolve,omitempty"`
}

// HTTPAction calls an HTTP endpoint.
// +kubebuilder:validation:XValidation:rule="has(self.url) != has(self.urlSecretRef)",message="exactly one of url or urlSecretRef must be set"
type HTTPAction struct {
	// url to call.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#]+(/[^\s]*)?$`
	URL string `json:"url,omitempty"`

	// urlSecretRef names the Secret key (default `url`) holding the URL, when it carries a credential.
	// +optional
	URLSecretRef *SecretKeyReference `json:"urlSecretRef,omitempty"`

	// method of the request.
	// +optional
	// +kubebuilder:default=POST
	// +kubebuilder:validation:Enum=GET;POST;PUT;PATCH;DELETE
	Method string `json:"method,omitempty"`

	// headersSecretRef names a Secret whose keys and values are sent as headers.
	// +optional
	HeadersSecretRef *LocalObjectReference `json:"headersSecretRef,omitempty"`

	// path is a text/template over the normalised problem appended to the
	// URL, for services that name what a call acts on in its path, e.g.
	// Opsgenie's `/v2/alerts/{{ .ProblemID | pathEscape }}/close?identifierType=alias`.
	// Escape what it inserts with pathEscape or urlquery; it may not change
	// the URL's scheme or host.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Path string `json:"path,omitempty"`

	// secretRef names a Secret whose keys the body reads with
	// `{{ secret "key" }}`, for services that take their key in the body,
	// e.g. PagerDuty's routing_key. Its values appear nowhere else.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// body is a text/template over the normalised problem.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	Body string `json:"body,omitempty"`

	// stopOnResolve: when the problem's RESOLVED notification arrives,
	// recipients not yet sent and retries still waiting are not sent, and
	// are recorded Stopped. A message already sent is not taken back.
	// +optional
	// +kubebuilder:default=true
	StopOnResolve *bool `json:"stopOnResolve,omitempty"`
}

// CommentSpec controls the comment posted back to the Dynatrace problem.
type CommentSpec struct {
	// enabled posts the comment.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
}

// RetryPolicy bounds the retries of a failed action.
type RetryPolicy struct {
	// limit is the number of retries after the first attempt.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=20
	Limit *int32 `json:"limit,omitempty"`

	// backoff is the wait before the first retry; it doubles with each further one.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('1h')",message="backoff must be a duration from 0s to 1h, such as 10s"
	Backoff metav1.Duration `json:"backoff,omitempty"`
}

// IntegrationRouteStatus is the observed state of an IntegrationRoute.
type IntegrationRouteStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastMatchTime is when the route last matched an event.
	// +optional
	LastMatchTime *metav1.Time `json:"lastMatchTime,omitempty"`

	// lastMatchedEvent is the name of the ProblemEvent the route last matched.
	// +optional
	LastMatchedEvent string `json:"lastMatchedEvent,omitempty"`

	// conditions describe the route's state; Ready says whether its templates
	// compile and its Secrets exist.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IntegrationRoute matches ProblemEvents and runs actions for them.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ir,categories=problemhook
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Last Match",type=date,JSONPath=`.status.lastMatchTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IntegrationRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the route.
	// +required
	Spec IntegrationRouteSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status IntegrationRouteStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// IntegrationRouteList is a list of IntegrationRoutes.
type IntegrationRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IntegrationRoute `json:"items"`
}
