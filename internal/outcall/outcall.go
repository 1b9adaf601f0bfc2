// Package outcall runs outside calls (a tenant's Dynatrace, the services
// messages go to) beside the reconcile that needs them, not in it: a
// reconcile waits for a call at most AwaitWindow, then lets its worker go
// to other objects. The call goes on, bounded by its own timeout, and its
// answer wakes the object, whose next reconcile takes it. So one tenant's
// service that hangs holds none of the workers every tenant shares.
//
// A call is named by a Key, which carries the type of its answer: what a
// reconcile gets back is typed, not an interface to assert.
package outcall

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// AwaitWindow is how long a reconcile waits for an outside call before it
// lets its worker go: most answers come within it and are recorded in the
// same reconcile; a slower one costs a reconcile more when it comes, and a
// call that hangs costs the shared workers no more than this. It is real
// time, not the reconcilers' clock: it bounds how long a worker is held,
// which a fake clock cannot shorten.
const AwaitWindow = 250 * time.Millisecond

// LateTimeout bounds recording the answers that come while the manager
// stops.
const LateTimeout = 30 * time.Second

// Key names one call of one object, and the type of its answer.
type Key[T any] struct{ name string }

// NewKey names the call what of the object uid.
func NewKey[T any](uid types.UID, what string) Key[T] {
	return Key[T]{name: string(uid) + "/" + what}
}

// Set holds the outside calls under way, by key. Add it to the manager,
// and watch Wake. The zero value is not ready: use New.
type Set struct {
	mu      sync.Mutex
	pending map[string]*pending
	wake    chan event.TypedGenericEvent[client.Object]
	wg      sync.WaitGroup
}

type pending struct {
	done  chan struct{}
	value any
	err   error
	// waiting counts the reconciles waiting for the answer: when one is,
	// it takes the answer, and the object needs no waking.
	waiting int
	// obj names the object the call is for.
	obj client.Object
	// late records the answer when no reconcile will: the manager is
	// stopping. Nil for calls whose answer may be asked for again.
	late func(ctx context.Context)
}

// New returns an empty set of calls.
func New() *Set {
	return &Set{pending: map[string]*pending{}, wake: make(chan event.TypedGenericEvent[client.Object], 1024)}
}

// Wake receives each object whose call ended while no reconcile waited for
// it: a controller watches it with source.Channel.
func (s *Set) Wake() <-chan event.TypedGenericEvent[client.Object] { return s.wake }

// Await returns the answer of the call under key, starting fn for the
// object named obj when none is under way, once it ends or AwaitWindow
// passed: done is false while it runs on.
func Await[T any](ctx context.Context, s *Set, key Key[T], obj types.NamespacedName, fn func(context.Context) (T, error)) (value T, err error, done bool) {
	Begin(ctx, s, key, obj, fn, nil)
	return Result(ctx, s, key, time.Now().Add(AwaitWindow))
}

// Begin starts fn under key for the object named obj, unless a call is
// under way there. fn gets a context of its own, which the manager's
// stopping does not cancel: its own bounds end it. late, when not nil,
// records an answer that comes while the manager stops, when no reconcile
// will.
func Begin[T any](ctx context.Context, s *Set, key Key[T], obj types.NamespacedName, fn func(context.Context) (T, error), late func(context.Context, T, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[key.name]; ok {
		return
	}
	p := &pending{done: make(chan struct{}), obj: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: obj.Namespace, Name: obj.Name}}}
	if late != nil {
		p.late = func(ctx context.Context) {
			v, _ := p.value.(T)
			late(ctx, v, p.err)
		}
	}
	s.pending[key.name] = p
	s.wg.Go(func() {
		value, err := fn(context.WithoutCancel(ctx))
		s.mu.Lock()
		p.value, p.err = value, err
		close(p.done)
		wake := p.waiting == 0
		s.mu.Unlock()
		if wake {
			s.wakeUp(p.obj)
		}
	})
}

// Result waits until the call under key ends, or until until, and returns
// its answer: done is false while it runs on, or when there is none.
func Result[T any](ctx context.Context, s *Set, key Key[T], until time.Time) (value T, err error, done bool) {
	v, err, done := s.result(ctx, key.name, until)
	value, _ = v.(T)
	return value, err, done
}

func (s *Set) result(ctx context.Context, key string, until time.Time) (value any, err error, done bool) {
	s.mu.Lock()
	p, ok := s.pending[key]
	if ok {
		p.waiting++
	}
	s.mu.Unlock()
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
	s.mu.Lock()
	p.waiting--
	// An answer that came as this reconcile gave up waiting wakes the
	// object here: its call left the waking to this reconcile.
	missed := !took && p.waiting == 0 && closed(p.done)
	if took {
		delete(s.pending, key)
	}
	s.mu.Unlock()
	if missed {
		s.wakeUp(p.obj)
	}
	if !took {
		return nil, nil, false
	}
	return p.value, p.err, true
}

// Running reports whether a call is under way, or ended unclaimed, under
// key.
func Running[T any](s *Set, key Key[T]) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[key.name]
	return ok
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

// wakeUp has the object reconciled again.
func (s *Set) wakeUp(obj client.Object) {
	select {
	case s.wake <- event.TypedGenericEvent[client.Object]{Object: obj}:
	default: // the object's RequeueAfter brings it back
	}
}

// NeedLeaderElection is true: the calls are the leader's reconcilers'.
func (s *Set) NeedLeaderElection() bool { return true }

// Start waits for the manager to stop, then for the calls under way, and
// records the answers of those no reconcile will take: a message sent is
// recorded as sent, not found in flight by the next leader.
func (s *Set) Start(ctx context.Context) error {
	<-ctx.Done()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	record, cancel := context.WithTimeout(context.WithoutCancel(ctx), LateTimeout)
	defer cancel()
	for key, p := range s.pending {
		if p.late != nil {
			p.late(record)
		}
		delete(s.pending, key)
	}
	return nil
}
