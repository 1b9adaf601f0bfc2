// Package leader runs the reconcilers on the leader, a term at a time,
// while the receiver and the dashboard run on every replica for as long as
// it lives. Losing the lease (an API server too busy to renew it, in a
// storm of notifications) ends the term, not the process: the replica
// keeps receiving and stands for election again.
//
// The election is client-go's, run here rather than inside each term's
// manager, so that a lost lease is known from the elector itself (its
// leading context ends) and not read from the text of an error.
package leader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	crleaderelection "sigs.k8s.io/controller-runtime/pkg/leaderelection"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// ErrLeaseLost ends a term whose replica lost the leader lease while its
// reconcilers ran.
var ErrLeaseLost = errors.New("lost the leader lease")

// The election's timings when Options leaves them unset: controller-runtime's.
const (
	defaultLeaseDuration = 15 * time.Second
	defaultRenewDeadline = 10 * time.Second
	defaultRetryPeriod   = 2 * time.Second
)

// Terms runs a manager for each term of leadership, with the reconcilers
// Setup adds to it, until its context ends. Every term shares the
// replica's cache: a new term starts with what the replica already knows,
// and no term starts or stops it. Add it to the replica's manager.
type Terms struct {
	// Options are the term managers' options. Its LeaderElection fields
	// say how the terms are elected (with LeaderElection false, one term
	// lasts as long as the replica); Terms sets the managers' cache,
	// listeners and controller name checks, and elects them itself.
	Options ctrl.Options
	Config  *rest.Config
	// Recorders records the election's Events (the replica's manager).
	Recorders recorder.Provider
	Cache     *SharedCache
	Setup     func(ctx context.Context, mgr ctrl.Manager) error
	// Pause is how long a replica waits after a lost term before it
	// stands again; a second when zero.
	Pause time.Duration
}

// NeedLeaderElection is false: the terms elect their own leaders.
func (t *Terms) NeedLeaderElection() bool { return false }

// Start runs terms until ctx ends.
func (t *Terms) Start(ctx context.Context) error {
	if !t.Options.LeaderElection {
		return t.lead(ctx)
	}
	// NewResourceLock sets the user agent and timeout of the config it is
	// given: a copy, so the terms' own clients keep theirs.
	cfg := t.Config
	if t.Options.LeaderElectionConfig != nil {
		cfg = t.Options.LeaderElectionConfig
	}
	lock, err := crleaderelection.NewResourceLock(rest.CopyConfig(cfg), t.Recorders, crleaderelection.Options{
		LeaderElection:             true,
		LeaderElectionResourceLock: t.Options.LeaderElectionResourceLock,
		LeaderElectionID:           t.Options.LeaderElectionID,
		LeaderElectionNamespace:    t.Options.LeaderElectionNamespace,
		RenewDeadline:              t.renewDeadline(),
		LeaderLabels:               t.Options.LeaderElectionLabels,
	})
	if err != nil {
		return fmt.Errorf("creating the leader election's lock: %w", err)
	}
	log := ctrl.LoggerFrom(ctx).WithName("leader")
	for term := 1; ; term++ {
		err := t.term(ctx, lock)
		switch {
		case ctx.Err() != nil:
			return nil //nolint:nilerr // the replica is stopping: how the term ended does not matter
		case !errors.Is(err, ErrLeaseLost):
			return err
		}
		log.Info("Lost the leader lease: the reconcilers stopped, the receiver goes on; standing for election again", "term", term)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(max(t.Pause, time.Second)):
		}
	}
}

// term stands for election and, once elected, runs the reconcilers until
// the lease is lost (ErrLeaseLost), they fail (their error) or ctx ends.
// It returns once the term's manager has stopped, so that two terms'
// reconcilers never run side by side in one replica.
func (t *Terms) term(ctx context.Context, lock resourcelock.Interface) error {
	electing, stopElecting := context.WithCancel(ctx)
	defer stopElecting()
	elected := make(chan context.Context, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: durationOr(t.Options.LeaseDuration, defaultLeaseDuration),
		RenewDeadline: t.renewDeadline(),
		RetryPeriod:   durationOr(t.Options.RetryPeriod, defaultRetryPeriod),
		// Leading ends when this context ends: the elector cancels it
		// when it cannot renew the lease.
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leading context.Context) { elected <- leading },
			OnStoppedLeading: func() {},
		},
		ReleaseOnCancel: true,
		Name:            t.Options.LeaderElectionID,
	})
	if err != nil {
		return fmt.Errorf("creating the leader elector: %w", err)
	}
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		le.Run(electing)
	}()
	var leading context.Context
	select {
	case leading = <-elected:
	case <-electorDone:
		// The elector stops before it leads only when ctx ends; with ctx
		// alive, it led and lost the lease before this term's manager
		// started (its late OnStartedLeading finds room in elected).
		if err := ctx.Err(); err != nil {
			return err
		}
		return ErrLeaseLost
	}
	err = t.lead(leading)
	stopElecting() // reconcilers that stopped give the lease up at once
	<-electorDone
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case leading.Err() != nil:
		return ErrLeaseLost
	case err == nil:
		return errors.New("the leader's reconcilers stopped while it held the lease")
	}
	return err
}

// lead runs one term's manager, with the reconcilers, until ctx ends. The
// informer event handlers its controllers add are removed with it.
func (t *Terms) lead(ctx context.Context) error {
	c := t.Cache.term()
	defer c.release(ctx)
	o := t.Options
	o.LeaderElection = false
	o.NewCache = func(*rest.Config, cache.Options) (cache.Cache, error) { return c, nil }
	o.Metrics = metricsserver.Options{BindAddress: "0"}
	o.HealthProbeBindAddress, o.PprofBindAddress = "0", "0"
	// Each term registers the same controllers again, under their names.
	o.Controller.SkipNameValidation = new(true)
	mgr, err := ctrl.NewManager(t.Config, o)
	if err != nil {
		return fmt.Errorf("creating the leader's manager: %w", err)
	}
	if err := t.Setup(ctx, mgr); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

func (t *Terms) renewDeadline() time.Duration {
	return durationOr(t.Options.RenewDeadline, defaultRenewDeadline)
}

func durationOr(d *time.Duration, def time.Duration) time.Duration {
	if d != nil {
		return *d
	}
	return def
}
