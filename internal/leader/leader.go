// Package leader runs the reconcilers on the leader, a term at a time,
// while the receiver and the dashboard run on every replica for as long as
// it lives. Losing the lease (an API server too busy to renew it, in a
// storm of notifications) ends the term, not the process: the replica
// keeps receiving and stands for election again.
package leader

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Terms runs a manager for each term of leadership, with the reconcilers
// Setup adds to it, until its context ends. Every term shares the
// replica's cache: a new term starts with what the replica already knows,
// and no term starts or stops it. Add it to the replica's manager.
type Terms struct {
	// Options are the term managers' options; Terms sets their cache,
	// listeners and controller name checks.
	Options ctrl.Options
	Config  *rest.Config
	Cache   *SharedCache
	Setup   func(ctx context.Context, mgr ctrl.Manager) error
	// Pause is how long a replica waits after a lost term before it
	// stands again; a second when zero.
	Pause time.Duration
}

// errLeaderElectionLost is how controller-runtime's manager ends a term.
const errLeaderElectionLost = "leader election lost"

// NeedLeaderElection is false: the terms elect their own leaders.
func (t *Terms) NeedLeaderElection() bool { return false }

// Start runs terms until ctx ends.
func (t *Terms) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("leader")
	for term := 1; ; term++ {
		err := t.run(ctx)
		switch {
		case ctx.Err() != nil:
			return nil //nolint:nilerr // the replica is stopping: how the term ended does not matter
		case err == nil || err.Error() != errLeaderElectionLost:
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

// run runs one term: a manager that elects a leader and, once elected,
// runs the reconcilers until it loses the lease or ctx ends.
func (t *Terms) run(ctx context.Context) error {
	o := t.Options
	o.NewCache = func(*rest.Config, cache.Options) (cache.Cache, error) { return t.Cache, nil }
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

// SharedCache lends the replica's cache to each term's manager, which
// neither starts nor stops it, and registers each field index once: a
// term that registers the indexes of its controllers again finds them.
type SharedCache struct {
	cache.Cache
	mu      sync.Mutex
	indexed map[string]bool
}

// Start waits for ctx: the replica's manager runs the cache.
func (c *SharedCache) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// IndexField registers an index the first time it is asked for.
func (c *SharedCache) IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	key := fmt.Sprintf("%T/%s", obj, field)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.indexed[key] {
		return nil
	}
	if err := c.Cache.IndexField(ctx, obj, field, extract); err != nil {
		return err
	}
	if c.indexed == nil {
		c.indexed = map[string]bool{}
	}
	c.indexed[key] = true
	return nil
}
