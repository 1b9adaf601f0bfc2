package webhookserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of a notification, the values of the result label.
const (
	resultCreated   = "created"
	resultDuplicate = "duplicate"
	resultIgnored   = "ignored"
	resultRejected  = "rejected"
	resultFailed    = "failed"
)

var notifications = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "problemhook_receiver_notifications_total",
	Help: "Notifications the receiver answered, by result: created (stored), duplicate (already stored), ignored (test notification not stored), rejected (4xx, or 503 for a target that cannot take them), failed (503: the API server could not store it).",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(notifications)
}
