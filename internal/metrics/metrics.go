// Package metrics defines every problemhook_* metric the manager exports,
// with the values of their labels, and reads them back for the dashboard.
// They are registered with controller-runtime's registry, which the
// manager serves on its metrics endpoint.
package metrics

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Names of the metrics.
const (
	ReceiverNotificationsName = "problemhook_receiver_notifications_total"
	ReceiverStoreDurationName = "problemhook_receiver_store_duration_seconds"
	EventsName                = "problemhook_events_total"
	ActionsName               = "problemhook_actions_total"
	ApprovalsName             = "problemhook_approvals_total"
	MessageAttemptsName       = "problemhook_message_attempts_total"
	PollsName                 = "problemhook_polls_total"
	PollRecordedEventsName    = "problemhook_poll_recorded_events_total"
	PollLastSuccessName       = "problemhook_poll_last_success_timestamp_seconds"
	DynatraceRequestsName     = "problemhook_dynatrace_requests_total"
	ReadyName                 = "problemhook_ready"
)

// Values of ReceiverNotifications' result label.
const (
	// ResultCreated: the notification was stored as a new ProblemEvent.
	ResultCreated = "created"
	// ResultDuplicate: the ProblemEvent was stored already.
	ResultDuplicate = "duplicate"
	// ResultIgnored: a test notification the target does not record.
	ResultIgnored = "ignored"
	// ResultRejected: a 4xx, or 503 for a target that cannot take notifications.
	ResultRejected = "rejected"
	// ResultFailed: 503, the API server could not store the event.
	ResultFailed = "failed"
	// ResultThrottled: 429, past the target's spec.rateLimit.
	ResultThrottled = "throttled"
	// ResultShed: 503, this replica was at its bound of notifications
	// being read or stored, and answered at once instead of queueing.
	ResultShed = "shed"
)

// Values of Actions' result label: the lower-case state a run settled in.
const (
	ActionSucceeded = "succeeded"
	ActionFailed    = "failed"
	ActionStopped   = "stopped"
	ActionMuted     = "muted"
	ActionSkipped   = "skipped"
)

// Values of Approvals' decision label.
const (
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalTimedOut = "timed_out"
)

// Values of Events' origin label: who created the ProblemEvent.
const (
	OriginNotification = "notification"
	OriginPoll         = "poll"
)

// Values of MessageAttempts' result label.
const (
	MessageSent      = "sent"
	MessageRetryable = "retryable"
	MessageFailed    = "failed"
)

// Values of Polls' result label.
const (
	PollSucceeded = "succeeded"
	PollFailed    = "failed"
)

// Values of DynatraceRequests' code label besides HTTP status codes.
const (
	// DynatraceNoAnswer: the request got no answer (connection error, timeout).
	DynatraceNoAnswer = "error"
	// DynatraceNotAsked: the call was refused without a request while the
	// environment was not answering.
	DynatraceNotAsked = "not-asked"
)

var (
	// ReceiverNotifications counts the receiver's answers by target
	// (empty when the request named none that exists: an attacker's random
	// paths must not make series), format and result.
	ReceiverNotifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ReceiverNotificationsName,
		Help: "Notifications the receiver answered, by target (namespace, name; empty for an unknown target), format, and result: created (stored), duplicate (already stored), ignored (test notification not stored), rejected (4xx, or 503 for a target that cannot take them), throttled (429: past the target's rate limit), shed (503: the replica was at its bound of notifications being read or stored), failed (503: the API server could not store it).",
	}, []string{"namespace", "target", "format", "result"})

	// ReceiverStoreDuration is how long the API server took to store (or
	// refuse) a ProblemEvent: what a sender waits for before its answer.
	ReceiverStoreDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    ReceiverStoreDurationName,
		Help:    "Time the API server took to store (or refuse) a ProblemEvent, which a sender waits for before its acknowledgement.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})

	// Events counts the ProblemEvents created, by target, state and
	// origin: the receiver's counter counts answers, and a duplicate or a
	// polled event is not one new event there.
	Events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: EventsName,
		Help: "ProblemEvents created, by target (namespace, target), state (open, resolved) and origin (notification: the receiver stored it; poll: the catch-up poller did). Duplicates are not counted.",
	}, []string{"namespace", "target", "state", "origin"})

	// Actions counts the action runs that settled, by route (the event's
	// namespace and the IntegrationRoute's name: an alert must say which
	// route fails), type and result.
	Actions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ActionsName,
		Help: "Action runs that ended, by route (namespace, route), type (Job, Twilio, DingTalk, HTTP) and result (succeeded, failed, stopped, muted, skipped).",
	}, []string{"namespace", "route", "type", "result"})

	// Approvals counts the decisions on runs that waited for approval, by
	// route: a route whose approvals time out pages nobody who answers.
	Approvals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ApprovalsName,
		Help: "Decisions on action runs that waited for a person's approval, by route (namespace, route) and decision (approved, rejected, timed_out).",
	}, []string{"namespace", "route", "decision"})

	// MessageAttempts counts the sends of message actions, by type and result.
	MessageAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MessageAttemptsName,
		Help: "Sends of Twilio, DingTalk and HTTP actions, by type and result (sent, retryable: will be tried again, failed).",
	}, []string{"type", "result"})

	// Polls counts the catch-up polls, by result.
	Polls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: PollsName,
		Help: "Catch-up polls of the Dynatrace problem list, by result (succeeded, failed).",
	}, []string{"result"})

	// PollRecordedEvents counts the problem states the catch-up poller
	// recorded because their notification never arrived.
	PollRecordedEvents = prometheus.NewCounter(prometheus.CounterOpts{
		Name: PollRecordedEventsName,
		Help: "ProblemEvents the catch-up poller created: problem states whose notification had not arrived.",
	})

	// PollLastSuccess is when each target's last catch-up poll succeeded:
	// a poller that fails, or no longer runs, is seen by its age, which no
	// counter of polls shows per target.
	PollLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: PollLastSuccessName,
		Help: "Unix time of the last successful catch-up poll, by target (namespace, target). Targets that do not poll, or are suspended, have no series; only the leader's series are current.",
	}, []string{"namespace", "target"})

	// DynatraceRequests counts the Dynatrace API's answers by endpoint and
	// status code, one per attempt.
	DynatraceRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: DynatraceRequestsName,
		Help: "Requests to the Dynatrace API, one per attempt, by endpoint (e.g. GET /problems/{problemId}) and status code, or \"error\" when no answer came, or \"not-asked\" for a call refused without a request while the environment was not answering.",
	}, []string{"endpoint", "code"})

	// Ready is whether each NotificationTarget and IntegrationRoute is
	// Ready, as its reconciler last saw it: conditions are not metrics,
	// and a route that stopped being Ready runs nothing until a page
	// does not come. Only the leader runs the reconcilers, so only the
	// leader's series are current.
	Ready = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: ReadyName,
		Help: "1 when the object's Ready condition is True, 0 when it is not, by kind (NotificationTarget, IntegrationRoute), namespace and name. Suspended targets and deleted objects have no series; only the leader's series are current.",
	}, []string{"kind", "namespace", "name"})
)

// Collectors are every problemhook_* metric, as registered with
// controller-runtime's registry.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{ReceiverNotifications, ReceiverStoreDuration, Events, Actions, Approvals, MessageAttempts,
		Polls, PollRecordedEvents, PollLastSuccess, DynatraceRequests, Ready}
}

func init() {
	ctrlmetrics.Registry.MustRegister(Collectors()...)
}

// SetReady records whether the object of kind in namespace is Ready.
func SetReady(kind, namespace, name string, ready bool) {
	v := 0.0
	if ready {
		v = 1
	}
	Ready.WithLabelValues(kind, namespace, name).Set(v)
}

// ForgetReady drops the object's series: it was deleted, or is suspended
// on purpose, and an alert on it would be noise.
func ForgetReady(kind, namespace, name string) {
	Ready.DeleteLabelValues(kind, namespace, name)
}

// CountEvent counts a ProblemEvent created for the target namespace/target
// in state (OPEN or RESOLVED, counted in lower case as the event's label
// holds it) by origin (OriginNotification or OriginPoll).
func CountEvent(namespace, target, state, origin string) {
	Events.WithLabelValues(namespace, target, strings.ToLower(state), origin).Inc()
}

// SetPollSuccess records that the target's poll succeeded at t.
func SetPollSuccess(namespace, target string, t time.Time) {
	PollLastSuccess.WithLabelValues(namespace, target).Set(float64(t.Unix()))
}

// ForgetPoll drops the target's poll series: it was deleted, no longer
// polls, or is suspended on purpose, and an alert on its age would be noise.
func ForgetPoll(namespace, target string) {
	PollLastSuccess.DeleteLabelValues(namespace, target)
}
