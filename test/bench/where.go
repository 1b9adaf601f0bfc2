package bench

// Where the leader's time goes: from its own metrics, what an event waits
// in the queue, and what a reconcile takes.

// Where are the leader's mean times, in milliseconds, over one cell.
type Where struct {
	Reconciles int `json:"reconciles"`
	// QueueMs is how long an event waited in the workqueue before a
	// worker took it.
	QueueMs float64 `json:"queueMilliseconds"`
	// ReconcileMs is how long a reconcile took: for a new event, mostly
	// the API server answering its writes.
	ReconcileMs float64 `json:"reconcileMilliseconds"`
	// PipelinePatchMs is how long the API server took to answer the
	// pipeline's status patches, right before.
	PipelinePatchMs float64 `json:"pipelinePatchMilliseconds,omitempty"`
}

// managerTimes are the sums and counts of the manager's histograms that
// say where its time goes.
type managerTimes struct {
	queue, queueN, reconcile, reconcileN float64
}

func (b *bench) managerTimes() (managerTimes, error) {
	var t managerTimes
	for _, m := range []struct {
		into   *float64
		name   string
		labels string
	}{
		{&t.queue, "workqueue_queue_duration_seconds_sum", `name="problemevent"`},
		{&t.queueN, "workqueue_queue_duration_seconds_count", `name="problemevent"`},
		{&t.reconcile, "controller_runtime_reconcile_time_seconds_sum", `controller="problemevent"`},
		{&t.reconcileN, "controller_runtime_reconcile_time_seconds_count", `controller="problemevent"`},
	} {
		v, err := b.mgr.Metric(m.name, m.labels)
		if err != nil {
			return t, err
		}
		*m.into = v
	}
	return t, nil
}

// since is where the time went between t0 and t.
func (t managerTimes) since(t0 managerTimes) *Where {
	mean := func(sum, n float64) float64 {
		if n <= 0 {
			return 0
		}
		return 1000 * sum / n
	}
	return &Where{
		Reconciles:  int(t.reconcileN - t0.reconcileN),
		QueueMs:     mean(t.queue-t0.queue, t.queueN-t0.queueN),
		ReconcileMs: mean(t.reconcile-t0.reconcile, t.reconcileN-t0.reconcileN),
	}
}
