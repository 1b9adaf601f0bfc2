package controllers

import (
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/jobs"
	"github.com/problemhook/problemhook/internal/notify"
)

// Deps is what every reconciler is given, built once per term of
// leadership in main.go, as cert-manager's controller context is: the
// clients, the Dynatrace connections, the senders, the Job policy and the
// clock. Each reconciler embeds it and adds the options of its own.
type Deps struct {
	// Client reads through the manager's cache and writes to the API
	// server.
	client.Client
	// APIReader reads from the API server what the cache does not hold:
	// the Pods of a finished Job, Jobs the cache has not seen yet.
	APIReader client.Reader
	// Recorder records Kubernetes Events.
	Recorder recorder.EventRecorder
	// Dynatrace opens the targets' Dynatrace API connections; the
	// reconcilers share its clients. An empty one when nil.
	Dynatrace *dtconn.Clients
	// Notifier sends the messages of Twilio, DingTalk and HTTP actions;
	// an unrestricted one when nil.
	Notifier *notify.Client
	// Jobs is what routes' Jobs may do, and whose rights create them.
	Jobs jobs.Policy
	// Clock tells the time of everything recorded and scheduled; the real
	// one when nil. Tests move a fake one instead of sleeping.
	Clock clock.PassiveClock
}

// Defaulted returns d with what it leaves out filled in. Reconcilers call
// it once, when they are set up.
func (d Deps) Defaulted() Deps {
	if d.Dynatrace == nil {
		d.Dynatrace = &dtconn.Clients{}
	}
	if d.Notifier == nil {
		d.Notifier = &notify.Client{}
	}
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	return d
}

// Now is the clock's time.
func (d *Deps) Now() time.Time {
	if d.Clock == nil {
		return time.Now()
	}
	return d.Clock.Now()
}
