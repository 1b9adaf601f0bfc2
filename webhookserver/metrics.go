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

var (
	// notifications counts answers by target (empty when the request named
	// none that exists: an attacker's random paths must not make series)
	// and result.
	notifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "problemhook_receiver_notifications_total",
		Help: "Notifications the receiver answered, by target (namespace, name; empty for an unknown target), format, and result: created (stored), duplicate (already stored), ignored (test notification not stored), rejected (4xx, or 503 for a target that cannot take them), failed (503: the API server could not store it).",
	}, []string{"namespace", "target", "format", "result"})

	storeDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "problemhook_receiver_store_duration_seconds",
		Help:    "Time the API server took to store (or refuse) a ProblemEvent, which a sender waits for before its acknowledgement.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
)

func init() {
	metrics.Registry.MustRegister(notifications, storeDuration)
}
