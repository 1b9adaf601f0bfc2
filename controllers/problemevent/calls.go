package problemevent

// Outside calls (Dynatrace, and the services messages go to) run beside
// the reconcile that needs them, not in it: a reconcile waits for a call
// at most AwaitWindow, then lets its worker go to other events. The call
// goes on, bounded by its own timeout, and its answer wakes the event,
// whose next reconcile takes it. So one tenant's Dynatrace or endpoint
// that hangs holds none of the workers every tenant shares.

import (
	"context"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// AwaitWindow is how long a reconcile waits for an outside call before it
// lets its worker go: most answers come within it and are recorded in the
// same reconcile; a slower one costs a reconcile more when it comes, and a
// call that hangs costs the shared workers no more than this. It is real
// time, not the reconcilers' clock: it bounds how long a worker is held,
// which a fake clock cannot shorten.
const AwaitWindow = 250 * time.Millisecond

// calls are the outside calls under way, by key. The zero value is not
// ready: use newCalls.
type calls struct {
	mu      sync.Mutex
	pending map[string]*pendingCall
	// wake receives each event whose call ended while no reconcile waited.
	wake chan event.TypedGenericEvent[client.Object]
	wg   sync.WaitGroup
}

type pendingCall struct {
	done  chan struct{}
	value any
	err   error
	// waiting counts the reconciles waiting for the answer: when one is,
	// it takes the answer, and the event needs no waking.
	waiting int
	// obj names the event the call is for.
	obj client.Object
	// late records the answer when no reconcile will: the manager is
	// stopping. Nil for calls whose answer may be asked for again.
	late func(ctx context.Context, value any, err error)
}

func newCalls() *calls {
	return &calls{pending: map[string]*pendingCall{}, wake: make(chan event.TypedGenericEvent[client.Object], 1024)}
}

// callKey names a call of an event.
func callKey(ev *problemhookv1alpha1.ProblemEvent, what string) string {
	return string(ev.UID) + "/" + what
}

// await returns the answer of the call under key, starting fn when none is
// under way, once it ends or AwaitWindow passed: done is false while it
// runs on.
func (c *calls) await(ctx context.Context, key string, ev *problemhookv1alpha1.ProblemEvent, fn func(context.Context) (any, error),
	late func(context.Context, any, error)) (value any, err error, done bool) {
	c.begin(ctx, key, ev, fn, late)
	return c.result(ctx, key, time.Now().Add(AwaitWindow))
}

// begin starts fn under key unless a call is under way there. fn gets a
// context of its own, which the manager's stopping does not cancel: its
// own bounds end it.
func (c *calls) begin(ctx context.Context, key string, ev *problemhookv1alpha1.ProblemEvent, fn func(context.Context) (any, error),
	late func(context.Context, any, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pending[key]; !ok {
		obj := &problemhookv1alpha1.ProblemEvent{}
		obj.Namespace, obj.Name = ev.Namespace, ev.Name
		p := &pendingCall{done: make(chan struct{}), late: late, obj: obj}
		c.pending[key] = p
		c.wg.Go(func() {
			value, err := fn(context.WithoutCancel(ctx))
			c.mu.Lock()
			p.value, p.err = value, err
			close(p.done)
			wake := p.waiting == 0
			c.mu.Unlock()
			if wake {
				c.wakeUp(obj)
			}
		})
	}
}

// result waits until the call under key ends, or until until, and returns
// its answer: done is false while it runs on, or when there is none.
func (c *calls) result(ctx context.Context, key string, until time.Time) (value any, err error, done bool) {
	c.mu.Lock()
	p, ok := c.pending[key]
	if ok {
		p.waiting++
	}
	c.mu.Unlock()
	if !ok {
		return nil, nil, false
	}
	timer := time.NewTimer(max(time.Until(until), 0))
	defer timer.Stop()
	took := true
	select {
	case <-p.done:
	case <-timer.C:
		select {
		case <-p.done:
		default:
			took = false
		}
	case <-ctx.Done():
		took = false
	}
	c.mu.Lock()
	p.waiting--
	// An answer that came as this reconcile gave up waiting wakes the
	// event here: its call left the waking to this reconcile.
	missed := !took && p.waiting == 0 && closed(p.done)
	if took {
		delete(c.pending, key)
	}
	c.mu.Unlock()
	if missed {
		c.wakeUp(p.obj)
	}
	if !took {
		return nil, nil, false
	}
	return p.value, p.err, true
}

// closed reports whether ch is closed.
func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// wakeUp has the event reconciled again.
func (c *calls) wakeUp(obj client.Object) {
	select {
	case c.wake <- event.TypedGenericEvent[client.Object]{Object: obj}:
	default: // the event's RequeueAfter brings it back
	}
}

// running reports whether a call is under way, or ended unclaimed, under key.
func (c *calls) running(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[key]
	return ok
}

// NeedLeaderElection is true: the calls are the leader's reconcilers'.
func (c *calls) NeedLeaderElection() bool { return true }

// Start waits for the manager to stop, then for the calls under way, and
// records the answers of those no reconcile will take: a message sent is
// recorded as sent, not found in flight by the next leader.
func (c *calls) Start(ctx context.Context) error {
	<-ctx.Done()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	record, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusWriteTimeout)
	defer cancel()
	for key, p := range c.pending {
		if p.late != nil {
			p.late(record, p.value, p.err)
		}
		delete(c.pending, key)
	}
	return nil
}
