package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// firstSeen records when a watch first saw each object of a namespace in
// a state that counts, and the event it is for.
type firstSeen struct {
	mu   sync.Mutex
	at   map[string]time.Time // object name → when the watch first saw it count
	of   map[string]string    // object name → its event's name
	stop context.CancelFunc
}

// watchFirst starts watching the objects of list's kind in ns. counts says
// whether an object's state counts, and names the event it is for. The API
// server ends a watch after a while; it is started again from where it
// ended.
func (b *bench) watchFirst(ctx context.Context, ns string, list client.ObjectList, counts func(client.Object) (event string, ok bool)) (*firstSeen, error) {
	wc, err := client.NewWithWatch(b.cfg, client.Options{Scheme: b.k8s.Scheme()})
	if err != nil {
		return nil, err
	}
	if err := wc.List(ctx, list, client.InNamespace(ns), client.Limit(1)); err != nil {
		return nil, err
	}
	rv := list.GetResourceVersion()
	watchCtx, stop := context.WithCancel(ctx)
	fs := &firstSeen{at: map[string]time.Time{}, of: map[string]string{}, stop: stop}
	from := func(rv string) (watch.Interface, error) {
		return wc.Watch(watchCtx, list, client.InNamespace(ns),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
	}
	w, err := from(rv)
	if err != nil {
		stop()
		return nil, err
	}
	go func() {
		for {
			for e := range w.ResultChan() {
				o, ok := e.Object.(client.Object)
				if !ok {
					continue
				}
				rv = o.GetResourceVersion()
				if e.Type != watch.Added && e.Type != watch.Modified {
					continue
				}
				event, ok := counts(o)
				if !ok {
					continue
				}
				fs.mu.Lock()
				if _, dup := fs.at[o.GetName()]; !dup {
					fs.at[o.GetName()], fs.of[o.GetName()] = time.Now(), event
				}
				fs.mu.Unlock()
			}
			for watchCtx.Err() == nil {
				if w, err = from(rv); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if watchCtx.Err() != nil {
				return
			}
		}
	}()
	return fs, nil
}

// postTimes are when the notifications of one run were sent, by event.
type postTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

// add records that the notification of problem id is being sent now.
func (p *postTimes) add(id int) {
	pid := fmt.Sprintf("-%d_1669823466223V2", id)
	p.mu.Lock()
	p.at[problemhookv1alpha1.EventName("dynatrace", pid, problemhookv1alpha1.StateOpen)] = time.Now()
	p.mu.Unlock()
}

// latencies waits until the watch has seen perEvent objects count for
// every event of posted, and returns the latencies from each send to each
// of them, and how many a second were seen, from the first send to the
// last seen.
func (fs *firstSeen) latencies(ctx context.Context, name string, posted *postTimes, perEvent int) (Latency, error) {
	posted.mu.Lock()
	defer posted.mu.Unlock()
	want := len(posted.at) * perEvent
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var lat []time.Duration
		var first, last time.Time
		fs.mu.Lock()
		for name, at := range fs.at {
			sent, ok := posted.at[fs.of[name]]
			if !ok {
				continue
			}
			lat = append(lat, at.Sub(sent))
			if at.After(last) {
				last = at
			}
		}
		fs.mu.Unlock()
		if len(lat) >= want {
			for _, t := range posted.at {
				if first.IsZero() || t.Before(first) {
					first = t
				}
			}
			return latencies(name, lat, last.Sub(first), 0), nil
		}
		if time.Now().After(deadline) {
			return Latency{}, fmt.Errorf("%s: %d of %d seen after 5 minutes", name, len(lat), want)
		}
		select {
		case <-ctx.Done():
			return Latency{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// done waits until the watch has seen n objects count, and returns when
// it saw the last.
func (fs *firstSeen) done(ctx context.Context, n int) (time.Time, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		fs.mu.Lock()
		var last time.Time
		for _, at := range fs.at {
			if at.After(last) {
				last = at
			}
		}
		seen := len(fs.at)
		fs.mu.Unlock()
		if seen >= n {
			return last, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d of %d seen after 5 minutes", seen, n)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
