package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PayloadFormat names the shape of the notifications a target receives.
// +kubebuilder:validation:Enum=Dynatrace;DynatraceWorkflow;Guance
type PayloadFormat string

const (
	// FormatDynatrace is the custom webhook payload of Dynatrace problem notifications.
	FormatDynatrace PayloadFormat = "Dynatrace"
	// FormatDynatraceWorkflow is a Dynatrace Workflows problem record, as an
	// HTTP Request action posts it with the payload {{ event() | to_json }}.
	FormatDynatraceWorkflow PayloadFormat = "DynatraceWorkflow"
	// FormatGuance is the event of a Guance/TrueWatch self-built notification target.
	FormatGuance PayloadFormat = "Guance"
)

// IsDynatrace reports whether the format is one of Dynatrace's, whose
// problems the Problems API knows: they are enriched and commented on.
func (f PayloadFormat) IsDynatrace() bool {
	return f == FormatDynatrace || f == FormatDynatraceWorkflow
}

// TestNotificationPolicy says what happens to the test notification a sender
// sends when its integration is saved.
// +kubebuilder:validation:Enum=Record;Ignore;Run
type TestNotificationPolicy string

const (
	// TestNotificationsRecord stores test notifications as ProblemEvents and runs no routes for them.
	TestNotificationsRecord TestNotificationPolicy = "Record"
	// TestNotificationsIgnore acknowledges test notifications without storing them.
	TestNotificationsIgnore TestNotificationPolicy = "Ignore"
	// TestNotificationsRun stores test notifications and runs the routes that include them.
	TestNotificationsRun TestNotificationPolicy = "Run"
)

// NotificationTargetSpec declares a receiver endpoint.
type NotificationTargetSpec struct {
	// format is the payload format senders post: Dynatrace (custom webhook
	// integration), DynatraceWorkflow (a Workflows HTTP Request action that
	// posts {{ event() | to_json }}) or Guance (self-built notification
	// target event).
	// +required
	Format PayloadFormat `json:"format"`

	// auth says how senders authenticate: exactly one of basic, bearer or none.
	// +required
	Auth WebhookAuth `json:"auth"`

	// dynatrace is an optional connection to the Dynatrace API, used to read
	// problem details and to post results back as comments.
	// +optional
	Dynatrace *DynatraceConnection `json:"dynatrace,omitempty"`

	// testNotifications says what to do with the test notification a sender
	// posts when its integration is saved: Record stores it and runs nothing,
	// Ignore acknowledges it without storing it, Run treats it like a problem.
	// +optional
	// +kubebuilder:default=Record
	TestNotifications TestNotificationPolicy `json:"testNotifications,omitempty"`

	// retention bounds how many ProblemEvents of this target are kept, how
	// many bytes they take, and for how long. By default a target keeps its
	// newest 10000 events, in at most 64Mi, so that a flood of
	// notifications cannot fill etcd.
	// +optional
	// +kubebuilder:default={maxEvents: 10000, maxBytes: "64Mi"}
	Retention *Retention `json:"retention,omitempty"`

	// rateLimit bounds how fast each replica stores this target's
	// notifications; past it the receiver answers 429 with Retry-After and
	// stores nothing. Only senders that pass the target's auth spend it.
	// +optional
	// +kubebuilder:default={perSecond: 50, burst: 500}
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// suspend stops the target from accepting notifications: senders get 503
	// and retry later.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// WebhookAuth holds exactly one authentication mode.
// +kubebuilder:validation:XValidation:rule="[has(self.basic), has(self.bearer), has(self.none)].filter(x, x).size() == 1",message="exactly one of basic, bearer or none must be set"
type WebhookAuth struct {
	// basic requires HTTP basic auth with the username and password held by a Secret.
	// +optional
	Basic *BasicAuth `json:"basic,omitempty"`

	// bearer requires an `Authorization: Bearer <token>` header with the token held by a Secret.
	// +optional
	Bearer *BearerAuth `json:"bearer,omitempty"`

	// none accepts unauthenticated notifications. Use it only on trusted networks.
	// +optional
	None *NoAuth `json:"none,omitempty"`
}

// BasicAuth references the Secret that holds basic-auth credentials.
type BasicAuth struct {
	// secretRef names a Secret in the target's namespace with the keys
	// `username` and `password`.
	// +required
	SecretRef LocalObjectReference `json:"secretRef"`
}

// BearerAuth references the Secret that holds a bearer token.
type BearerAuth struct {
	// secretRef names a Secret in the target's namespace and the key that
	// holds the token (default `token`).
	// +required
	SecretRef SecretKeyReference `json:"secretRef"`
}

// NoAuth is the explicit opt-out of authentication.
type NoAuth struct{}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// SecretKeyReference names a key of a Secret in the same namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key in the Secret's data. Each field that uses a SecretKeyReference
	// documents its default.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// DynatraceConnection is a connection to a Dynatrace environment's API.
// +kubebuilder:validation:XValidation:rule="has(self.tokenSecretRef) != has(self.oauth)",message="exactly one of tokenSecretRef or oauth must be set"
type DynatraceConnection struct {
	// url of the environment: https://<env-id>.live.dynatrace.com (SaaS),
	// https://<host>/e/<env-id> (Managed) or https://<activegate>:9999/e/<env-id>
	// (ActiveGate), where /api/v2 is appended; or, for a platform token,
	// https://<env-id>.apps.dynatrace.com, where the platform's classic
	// environment API (/platform/classic/environment-api/v2) is used.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#]+(/[^\s?#]*)?$`
	URL string `json:"url"`

	// tokenSecretRef names the Secret key (default `token`) holding a classic
	// API token (dt0c01.…, sent as Api-Token) with the problems.read and, for
	// comments, problems.write scopes; or a platform token (dt0s16.…, sent as
	// Bearer to the apps host, the .live. URL's counterpart) with
	// environment-api:problems:read and :write. The prefix tells them apart.
	// Exactly one of tokenSecretRef and oauth is set.
	// +optional
	TokenSecretRef *SecretKeyReference `json:"tokenSecretRef,omitempty"`

	// registration has problemhook keep a Dynatrace problem notification
	// (a builtin:problem.notifications webhook in Settings) in step with
	// this target: its URL, payload and credentials. It needs
	// settings.read and settings.write (settings:objects:read and :write on
	// the platform). Only a target of format Dynatrace can be registered.
	// +optional
	Registration *Registration `json:"registration,omitempty"`

	// oauth connects as an OAuth client: access tokens from Dynatrace SSO
	// (client credentials), kept until shortly before they expire and
	// shared by every call, sent as Bearer to the platform's classic
	// environment API (the URL is then https://<env-id>.apps.dynatrace.com,
	// or the .live. URL whose counterpart it is).
	// +optional
	OAuth *DynatraceOAuth `json:"oauth,omitempty"`

	// caBundle is a PEM bundle of the certificate authorities to trust for
	// the API, for Managed clusters and ActiveGates with a private CA.
	// +optional
	// +kubebuilder:validation:MaxLength=262144
	CABundle []byte `json:"caBundle,omitempty"`

	// comments posts the results of a problem's integrations back to it as a comment.
	// +optional
	// +kubebuilder:default=true
	Comments *bool `json:"comments,omitempty"`

	// poll lists recent problems periodically, to catch up on notifications
	// that never arrived. Absent means no polling.
	// +optional
	Poll *PollSpec `json:"poll,omitempty"`
}

// Registration is the problem notification problemhook keeps in
// Dynatrace for a target.
type Registration struct {
	// webhookURL is where Dynatrace posts: the receiver through an
	// ActiveGate in the cluster or an ingress, ending in the target's
	// status.webhookPath.
	// +required
	// +kubebuilder:validation:MaxLength=1000
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#]+(/[^\s]*)?$`
	WebhookURL string `json:"webhookURL"`

	// alertingProfile is the name of the alerting profile whose problems
	// are sent; Default when empty. A profile of that name must exist.
	// +optional
	// +kubebuilder:validation:MaxLength=100
	AlertingProfile string `json:"alertingProfile,omitempty"`

	// notifyClosedProblems sends a problem's RESOLVED too.
	// +optional
	// +kubebuilder:default=true
	NotifyClosedProblems *bool `json:"notifyClosedProblems,omitempty"`

	// acceptAnyCertificate lets Dynatrace post to a receiver whose
	// certificate it does not trust.
	// +optional
	AcceptAnyCertificate bool `json:"acceptAnyCertificate,omitempty"`
}

// RegistrationStatus is where the target's problem notification stands.
type RegistrationStatus struct {
	// objectID of the settings object in Dynatrace.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	ObjectID string `json:"objectID,omitempty"`

	// appliedHash identifies what was last applied: the target's
	// registration, format and credentials.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	AppliedHash string `json:"appliedHash,omitempty"`

	// lastAppliedTime is when it was last applied.
	// +optional
	LastAppliedTime *metav1.Time `json:"lastAppliedTime,omitempty"`

	// lastError is why the last attempt failed, when it did.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`
}

// DynatraceOAuth is an OAuth client of a Dynatrace account.
type DynatraceOAuth struct {
	// clientSecretRef names a Secret with the keys clientID (dt0s02.…) and
	// clientSecret.
	// +required
	ClientSecretRef LocalObjectReference `json:"clientSecretRef"`

	// accountURN is the account the client belongs to,
	// urn:dtaccount:<account UUID>, sent as the token request's resource.
	// +required
	// +kubebuilder:validation:Pattern=`^urn:dtaccount:[0-9a-fA-F-]{36}$`
	AccountURN string `json:"accountURN"`

	// scopes asked for; by default environment-api:problems:read and
	// environment-api:problems:write. A scope the client was not granted
	// makes the target's Ready condition False, naming it.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=128
	Scopes []string `json:"scopes,omitempty"`

	// tokenURL is the token endpoint; Dynatrace SSO's,
	// https://sso.dynatrace.com/sso/oauth2/token, by default.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#]+(/[^\s?#]*)?$`
	TokenURL string `json:"tokenURL,omitempty"`
}

// PollSpec sets how often, and how far back, problems are polled. Each poll
// covers the time since the last one ended, at most window, and stops two
// minutes before now: Dynatrace's most recent minutes are not yet complete.
// +kubebuilder:validation:XValidation:rule="duration(self.interval) >= duration('30s')",message="interval must be at least 30s: each poll is a call to the Dynatrace API, which is rate-limited"
// +kubebuilder:validation:XValidation:rule="duration(self.window) >= duration(self.interval)",message="window must be at least interval, or problems between two polls are missed"
type PollSpec struct {
	// interval between two polls.
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	Interval metav1.Duration `json:"interval,omitempty"`

	// window is how far back a poll looks at most: after an outage longer
	// than window, problems that opened and ended before it are not caught up.
	// +optional
	// +kubebuilder:default="2h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	Window metav1.Duration `json:"window,omitempty"`
}

// RateLimit is a token bucket: burst notifications at once, then
// perSecond a second. Each replica keeps its own.
type RateLimit struct {
	// perSecond is the sustained rate, in notifications a second.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	PerSecond int32 `json:"perSecond,omitempty"`

	// burst is how many notifications may come at once, above the rate.
	// +optional
	// +kubebuilder:default=500
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	Burst int32 `json:"burst,omitempty"`
}

// Defaults of RateLimit, as the CRD gives them.
const (
	DefaultRateLimitPerSecond = 50
	DefaultRateLimitBurst     = 500
)

// Retention bounds the ProblemEvents a target keeps.
type Retention struct {
	// maxAge deletes events older than this.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`

	// maxEvents keeps at most this many events, deleting the oldest first.
	// +optional
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxEvents *int32 `json:"maxEvents,omitempty"`

	// maxBytes keeps the events within this many bytes, as stored (their
	// JSON), deleting the oldest first. A maximal notification is stored in
	// some 350Ki, so 10000 of them would want 3.4Gi, past etcd's default
	// quota of 2Gi for the whole cluster.
	// +optional
	// +kubebuilder:default="64Mi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity('1Mi')) >= 0 && quantity(string(self)).compareTo(quantity('8Gi')) <= 0",message="maxBytes must be between 1Mi and 8Gi"
	MaxBytes *resource.Quantity `json:"maxBytes,omitempty"`
}

// Defaults of Retention, as the CRD gives them.
const (
	DefaultMaxEvents = 10000
	DefaultMaxBytes  = 64 << 20
)

// NotificationTargetStatus is the observed state of a NotificationTarget.
type NotificationTargetStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// webhookPath is the path senders post to on the receiver.
	// +optional
	WebhookPath string `json:"webhookPath,omitempty"`

	// webhookURL is the in-cluster URL senders post to.
	// +optional
	WebhookURL string `json:"webhookURL,omitempty"`

	// lastReceivedTime is when the last notification arrived. It is updated
	// at most every few seconds, not on every request.
	// +optional
	LastReceivedTime *metav1.Time `json:"lastReceivedTime,omitempty"`

	// poll reports the catch-up poller's last run, when spec.dynatrace.poll is set.
	// +optional
	Poll *PollStatus `json:"poll,omitempty"`

	// registration reports the problem notification problemhook keeps in
	// Dynatrace, when spec.dynatrace.registration is set.
	// +optional
	Registration *RegistrationStatus `json:"registration,omitempty"`

	// conditions describe the target's state; Ready says whether it accepts notifications.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PollStatus reports the catch-up poller's last run.
type PollStatus struct {
	// lastPollTime is when the last poll ran, whether or not it succeeded.
	// +optional
	LastPollTime *metav1.Time `json:"lastPollTime,omitempty"`

	// coveredUntil is the end of the time frame the polls have covered
	// without a gap; the next poll starts there.
	// +optional
	CoveredUntil *metav1.Time `json:"coveredUntil,omitempty"`

	// listed is how many problems the last poll's time frame held.
	// +optional
	Listed int32 `json:"listed,omitempty"`

	// recorded is how many ProblemEvents the last poll created: problem
	// states whose notification had not arrived.
	// +optional
	Recorded int32 `json:"recorded,omitempty"`

	// lastError says why the last poll failed; empty when it succeeded.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`
}

// NotificationTarget declares a receiver endpoint for problem notifications.
// The operator serves it at /hooks/<namespace>/<name> on every replica.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=nt,categories=problemhook
// +kubebuilder:printcolumn:name="Format",type=string,JSONPath=`.spec.format`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Registered",type=string,JSONPath=`.status.conditions[?(@.type=="Registered")].status`,priority=1
// +kubebuilder:printcolumn:name="Last Received",type=date,JSONPath=`.status.lastReceivedTime`
// +kubebuilder:printcolumn:name="Last Poll",type=date,JSONPath=`.status.poll.lastPollTime`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters: it is used in label values"
type NotificationTarget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the endpoint.
	// +required
	Spec NotificationTargetSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status NotificationTargetStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NotificationTargetList is a list of NotificationTargets.
type NotificationTargetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NotificationTarget `json:"items"`
}
