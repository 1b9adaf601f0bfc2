package controllers

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// actions counts the action runs that settled, by type and result.
var actions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "problemhook_actions_total",
	Help: "Action runs that ended, by type (Job, Twilio, DingTalk, HTTP) and result (succeeded, failed, stopped).",
}, []string{"type", "result"})

// messageAttempts counts the sends of message actions, by type and result
// (sent, retryable, failed).
var messageAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "problemhook_message_attempts_total",
	Help: "Sends of Twilio, DingTalk and HTTP actions, by type and result (sent, retryable: will be tried again, failed).",
}, []string{"type", "result"})

func init() {
	metrics.Registry.MustRegister(actions, messageAttempts)
}

// countSettled counts the runs that settled between base and ev, once
// their settling is stored.
func countSettled(base, ev *problemhookv1alpha1.ProblemEvent) {
	for i, a := range ev.Status.Actions {
		if !a.State.Settled() || (i < len(base.Status.Actions) && base.Status.Actions[i].State.Settled()) {
			continue
		}
		actions.WithLabelValues(a.Type, strings.ToLower(string(a.State))).Inc()
	}
}
