// Package fairqueue shares a controller's workers fairly between tenants.
//
// controller-runtime's priority queue hands out items by priority, then in
// the order they were added. One tenant whose targets store a thousand
// events in a burst would have every other tenant's next event wait behind
// all thousand. A Queue gives each item a priority lowered by the number of
// its tenant's items already queued: the first item of every tenant comes
// before the second of any, so a tenant's lone event waits for about one
// item of each busy tenant, not for their backlogs.
package fairqueue

import (
	"sync"
	"time"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
)

// Queue is a priorityqueue.PriorityQueue that orders the items of each
// priority round-robin between tenants.
type Queue[T comparable] struct {
	priorityqueue.PriorityQueue[T]
	tenant func(T) string

	mu sync.Mutex
	// queued holds, per tenant, the items in the queue, waiting or ready,
	// with the priority they were added with.
	queued map[string]map[T]int
}

var _ priorityqueue.PriorityQueue[string] = &Queue[string]{}

// New wraps q; tenant says whose an item is.
func New[T comparable](q priorityqueue.PriorityQueue[T], tenant func(T) string) *Queue[T] {
	return &Queue[T]{PriorityQueue: q, tenant: tenant, queued: map[string]map[T]int{}}
}

// AddWithOpts adds items at their priority lowered by the number of their
// tenant's items ahead of them. An item already queued keeps the higher of
// its two priorities, as in the priority queue.
func (q *Queue[T]) AddWithOpts(o priorityqueue.AddOpts, items ...T) {
	base := ptr.Deref(o.Priority, 0)
	for _, item := range items {
		o.Priority = ptr.To(q.admit(item, base))
		q.PriorityQueue.AddWithOpts(o, item)
	}
}

// Add adds item now.
func (q *Queue[T]) Add(item T) { q.AddWithOpts(priorityqueue.AddOpts{}, item) }

// AddAfter adds item once d has passed.
func (q *Queue[T]) AddAfter(item T, d time.Duration) {
	q.AddWithOpts(priorityqueue.AddOpts{After: d}, item)
}

// AddRateLimited adds item once its rate limiter allows.
func (q *Queue[T]) AddRateLimited(item T) {
	q.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, item)
}

// GetWithPriority takes the next item, with the priority it was added with,
// which is what the controller adds it back with when it requeues it.
func (q *Queue[T]) GetWithPriority() (T, int, bool) {
	item, priority, shutdown := q.PriorityQueue.GetWithPriority()
	if shutdown {
		return item, priority, shutdown
	}
	return item, q.leave(item, priority), false
}

// Get takes the next item.
func (q *Queue[T]) Get() (T, bool) {
	item, _, shutdown := q.GetWithPriority()
	return item, shutdown
}

// admit records item as queued and returns its priority in the queue.
func (q *Queue[T]) admit(item T, base int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	tenant := q.tenant(item)
	items := q.queued[tenant]
	if items == nil {
		items = map[T]int{}
		q.queued[tenant] = items
	}
	ahead := len(items)
	if prev, queued := items[item]; queued {
		base = max(base, prev)
		ahead--
	}
	items[item] = base
	return base - ahead
}

// leave forgets item, taken from the queue with priority, and returns the
// priority it was added with.
func (q *Queue[T]) leave(item T, priority int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	tenant := q.tenant(item)
	items := q.queued[tenant]
	base, queued := items[item]
	if !queued {
		return priority
	}
	delete(items, item)
	if len(items) == 0 {
		delete(q.queued, tenant)
	}
	return base
}
