// Package coalesce keeps the latest of many updates per key and hands them
// on at most once an interval, so that a burst of events costs one status
// write per object, not one each.
package coalesce

import (
	"context"
	"sync"
	"time"
)

// flushTimeout bounds the last round, run after the context has ended.
const flushTimeout = 5 * time.Second

// Latest holds, per key, the value noted with the latest time. The zero
// value is ready to use.
type Latest[K comparable, V any] struct {
	mu      sync.Mutex
	pending map[K]noted[V]
}

type noted[V any] struct {
	at    time.Time
	value V
}

// Note records that k had value v at time at, unless a later one is held.
func (l *Latest[K, V]) Note(k K, at time.Time, v V) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.note(k, noted[V]{at: at, value: v})
}

func (l *Latest[K, V]) note(k K, n noted[V]) {
	if old, ok := l.pending[k]; ok && !n.at.After(old.at) {
		return
	}
	if l.pending == nil {
		l.pending = map[K]noted[V]{}
	}
	l.pending[k] = n
}

// Run calls write for every key noted since the round before, every
// interval until ctx ends and once more then. A write that fails is passed
// to failed, and its value is tried again next round unless a later one was
// noted meanwhile.
func (l *Latest[K, V]) Run(ctx context.Context, interval time.Duration, write func(ctx context.Context, k K, at time.Time, v V) error, failed func(K, error)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			l.flush(ctx, write, failed)
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			defer cancel()
			l.flush(flushCtx, write, failed)
			return
		}
	}
}

func (l *Latest[K, V]) flush(ctx context.Context, write func(context.Context, K, time.Time, V) error, failed func(K, error)) {
	l.mu.Lock()
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for k, n := range pending {
		if err := write(ctx, k, n.at, n.value); err != nil {
			failed(k, err)
			l.mu.Lock()
			l.note(k, n)
			l.mu.Unlock()
		}
	}
}
